/**
 * The ai.attnpass operators a rewritten model holds, by attention site: each node's metadata
 * 'attnpass.site' names the site it replaced; its attributes and constant extra inputs (SpanAttention's
 * spans, TiledAttention's learned scorer) say what it computes.
 */
import type { FloatTensor, IntTensor } from '../../kernels/reference/common.js';
import { ATTNPASS_DOMAIN, operatorSpec } from '../../kernels/registry.js';
import type { Node, Value } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import { loadModel } from '../onnx/load.js';
import { tensorDims, tensorToBigInt64, tensorToFloat64 } from '../onnx/tensor.js';
import type { ExternalDataFiles } from '../onnx/external.js';
import type { CostSettings } from './cost.js';

export interface EmittedOperator {
  site: string;
  node: string;
  op: string;
  /** every attribute, defaults filled in (as the operator computes with them) */
  attributes: Record<string, number>;
  /** the attributes the node sets, read the way `convert`'s cost report reads them */
  cost: CostSettings;
  /** SpanAttention: the spans read when nothing is fed (the input's constant or default), if known */
  spans?: { tensor: IntTensor; source: string };
  /** TiledAttention with scorer 2: the constant scorer weights, if constant */
  scorer?: FloatTensor;
}

const SPANS_INPUT = 4;
const SCORER_INPUT = 4;

export function emittedOperators(rewrittenPath: string): Map<string, EmittedOperator> {
  const loaded = loadModel(rewrittenPath);
  try {
    const model = Model.lift(loaded);
    const out = new Map<string, EmittedOperator>();
    for (const node of model.graph.nodes) {
      if (node.domain !== ATTNPASS_DOMAIN) continue;
      const site = node.proto.metadataProps?.find((m) => m.key === 'attnpass.site')?.value;
      if (!site) continue;
      out.set(site, describe(node, site, loaded.external));
    }
    return out;
  } finally {
    loaded.external.close();
  }
}

function describe(node: Node, site: string, external: ExternalDataFiles): EmittedOperator {
  const attributes = operatorSpec(node.opType).resolveAttributes(node.attributes) as Record<string, number>;
  const raw: Record<string, number> = {};
  // the same reading as convert's report, so that the costs shown are its numbers
  for (const name of node.attributes.keys()) raw[name] = node.attrFloat(name) ?? node.attrInt(name) ?? 0;
  const emitted: EmittedOperator = { site, node: node.name, op: node.opType, attributes, cost: { op: node.opType, attributes: raw } };
  const extra = node.inputs[node.opType === 'SpanAttention' ? SPANS_INPUT : SCORER_INPUT];
  const constant = extra?.initializer;
  if (node.opType === 'SpanAttention' && extra && constant) {
    emitted.spans = { tensor: { data: tensorToBigInt64(constant, external), dims: tensorDims(constant) }, source: spansSource(extra) };
  }
  if (node.opType === 'TiledAttention' && attributes.scorer === 2 && constant) {
    emitted.scorer = { data: tensorToFloat64(constant, external), dims: tensorDims(constant) };
  }
  return emitted;
}

function spansSource(v: Value): string {
  return v.isGraphInput ? `the default of input '${v.name}' (a caller may feed other spans)` : `the constant '${v.name}'`;
}
