/**
 * The shared part of every rewrite pass: take the sites `detect-attention` proved, splice one
 * `ai.attnpass` node in for each chosen site, attach the operator's model-local function and import
 * its domain. A pass supplies only the op name, its attributes and any extra inputs.
 */
import type { AttentionSite, UnprovenSite } from '../../src/attention/site.js';
import { fail } from '../../src/errors.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { DataType, Long, type AttributeProto } from '../../src/onnx/codec.js';
import { numberToFloat16 } from '../../src/onnx/dtype.js';
import type { PassContext, PassResult } from '../../src/pipeline/pass.js';
import { ATTNPASS_DOMAIN, functionFor, operatorSpec } from '../../kernels/registry.js';
import { elementType } from '../../src/onnx/dtype.js';
import { parseLayers } from './layers.js';
import { parseLayerOptions } from './options.js';

export interface DetectionResult {
  sites: AttentionSite[];
  unproven: UnprovenSite[];
}

export function detectionOf(ctx: PassContext): DetectionResult {
  const found = ctx.results.get('detect-attention')?.data as DetectionResult | undefined;
  if (!found) fail('pass-failed', `the rewrite needs the attention sites from 'detect-attention', which did not run.`);
  return found;
}

export interface SpliceRequest {
  op: string;
  attributes: AttributeProto[];
  /** inputs after Q, K, V, mask (e.g. spans) */
  extraInputs?: Value[];
}

/** The function bodies need IR 8+ (model-local functions) and opset 18+ ops. */
const MIN_IR_FOR_FUNCTIONS = 8;

/**
 * `request` builds each site's node from `options`: the pass's options with that layer's
 * `layer-options` overrides applied.
 */
export function rewriteSites(
  ctx: PassContext,
  passName: string,
  request: (site: AttentionSite, options: Readonly<Record<string, unknown>>) => SpliceRequest,
): PassResult {
  const { sites, unproven } = detectionOf(ctx);
  const model = ctx.model;
  const wanted = parseLayers(ctx.options.layers);
  const layerOptions = parseLayerOptions(ctx.options);
  const chosen = sites.filter((s) => wanted(s.layer));
  const zeroMasks = new Map<number, Value>();
  const ops = new Map<string, number>();
  const rewritten: AttentionSite[] = [];
  const skipped: string[] = [];
  let done = 0;
  for (const site of chosen) {
    const overrides = layerOptions.get(site.layer);
    const req = request(site, overrides ? { ...ctx.options, ...overrides } : ctx.options);
    const elemType = site.q.type?.elemType || DataType.FLOAT;
    const spec = operatorSpec(req.op);
    if (!spec.inputs[0]!.types.includes(elemType)) {
      skipped.push(`${site.id}: ${req.op} takes ${spec.inputs[0]!.types.map((t) => elementType(t).name).join('/')} inputs, this site computes in ${elementType(elemType).name}`);
      continue;
    }
    const { q, k, v, mask } = site.materializeInputs();
    const node = model.graph.addNode({
      opType: req.op,
      domain: ATTNPASS_DOMAIN,
      name: `${site.id}.${req.op}`,
      inputs: [q, k, v, mask ?? zeroMask(model.graph, elemType, zeroMasks), ...(req.extraInputs ?? [])],
      attributes: req.attributes,
      metadata: { 'attnpass.rule': `${passName}/${site.rule}`, 'attnpass.site': site.id },
      // where the site's own nodes were, so that replacing its output needs no re-sort of the graph
      before: insertionPoint(model.graph, site),
    });
    // list every output slot of the operator (ONNX Runtime refuses a call with fewer outputs than its function)
    for (let i = 1; i < spec.outputs.length; i++) node._setOutput(i, undefined);
    const out = node.output(0);
    const qShape = q.type?.shape;
    const vShape = v.type?.shape;
    out.type = { elemType, shape: qShape && vShape ? [qShape[0], qShape[1], qShape[2], vShape[3]] : undefined };
    site.replaceOutput(out);
    if (!ops.has(req.op)) ops.set(req.op, elemType);
    rewritten.push(site);
    const shown = overrides ? `  (${Object.entries(overrides).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
    ctx.report(`layer ${String(site.layer).padStart(3)}  ${site.kind.padEnd(5)} ${site.rule.padEnd(24)} → ${req.op}${shown}`);
    ctx.progress(++done, chosen.length, passName);
  }
  for (const s of unproven) ctx.report(`left dense: ${s.anchor}: ${s.reason}`);
  for (const s of skipped) ctx.report(`left dense: ${s}`);
  if (rewritten.length > 0) {
    attachOperators(model, ops);
    model.graph.sortIfOutOfOrder();
  }
  return {
    modified: rewritten.length > 0,
    counts: { sitesFound: sites.length, sitesRewritten: rewritten.length, sitesUnproven: unproven.length, sitesSkipped: skipped.length },
    data: { rewritten: rewritten.map((s) => s.id) },
  };
}

/**
 * Imports the ai.attnpass domain and attaches each used operator's model-local function, written for the
 * model's own default opset (ONNX Runtime inlines function bodies with the model's opset).
 */
export function attachOperators(model: Model, ops: ReadonlyMap<string, number>): void {
  model.ensureOpset(ATTNPASS_DOMAIN, 1);
  const opset = model.opsetVersion('') ?? fail('invalid-model', 'the model imports no default-domain opset.');
  for (const [op, elemType] of ops) model.setFunction(functionFor(op, opset, elemType));
  if (model.irVersion < MIN_IR_FOR_FUNCTIONS) model.proto.irVersion = Long.fromNumber(MIN_IR_FOR_FUNCTIONS);
}

function insertionPoint(graph: Graph, site: AttentionSite): Node | undefined {
  const before = site.insertBefore;
  return before && before.graph === graph && graph.nodes.includes(before) ? before : undefined;
}

function zeroMask(graph: Graph, elemType: number, cache: Map<number, Value>): Value {
  const known = cache.get(elemType);
  if (known) return known;
  const tensor =
    elemType === DataType.FLOAT
      ? makeTensor('attnpass_no_mask', [], Float32Array.of(0))
      : makeTensor('attnpass_no_mask', [], Uint16Array.of(elemType === DataType.FLOAT16 ? numberToFloat16(0) : 0) as unknown as Uint8Array, elemType);
  const v = graph.addInitializer(tensor, 'attnpass_no_mask');
  cache.set(elemType, v);
  return v;
}

export type { Node };
