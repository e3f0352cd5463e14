/**
 * Structural validation of a model in IR form. Each problem names the graph, the node (op and name)
 * and the value involved, and says what to do.
 */
import { AttnpassError } from '../errors.js';
import type { Graph, Node } from '../ir/graph.js';
import { topologicalOrder } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { isKnownElementType } from '../onnx/dtype.js';
import { ONNX_OPS } from './onnx-ops.js';

export interface Diagnostic {
  rule: string;
  message: string;
  graph: string;
  node?: string;
  value?: string;
}

/** Domains whose ops ONNX Runtime implements without a model-local function. */
const RUNTIME_DOMAINS = new Set(['', 'ai.onnx.ml', 'com.microsoft', 'com.microsoft.nchwc', 'ai.onnx.training', 'ai.onnx.preview.training', 'com.ms.internal.nhwc', 'org.pytorch.aten', 'pkg.onnxscript.torch_lib.common']);

/** Ops that a registered custom-op library may provide (ours), looked up lazily to keep layers apart. */
export type CustomOpCheck = (domain: string, opType: string) => boolean;

export function validateModel(model: Model, options: { customOps?: CustomOpCheck } = {}): Diagnostic[] {
  const out: Diagnostic[] = model.issues.map((i) => ({ rule: 'structure', message: i.message, graph: i.graph, node: i.node, value: i.value }));
  if (!model.opsets.has('')) {
    out.push({ rule: 'opset', message: `the model imports no version of the default ONNX domain (opset_import has no entry for ""). Add one, e.g. opset 17.`, graph: model.graph.name });
  }
  const functionKeys = new Set(model.functions.map((f) => `${f.domain}::${f.name}`));
  checkGraph(model.graph, model.opsets, functionKeys, options.customOps, out, model);
  for (const f of model.functions) {
    const label = `function ${f.domain}.${f.name}`;
    if (!f.opsets.has('') && f.body.nodes.some((n) => n.domain === '')) {
      out.push({ rule: 'opset', message: `${label} uses default-domain ops but its opset_import has no entry for "" (ONNX Runtime requires each function to import the domains it uses).`, graph: label });
    }
    checkGraph(f.body, f.opsets, functionKeys, options.customOps, out, model, label);
    for (const n of f.body.allNodes()) {
      if (n.domain === f.domain && n.opType === f.name) {
        out.push({ rule: 'recursion', message: `${label} calls itself (node ${n.describe()}); ONNX functions cannot be recursive.`, graph: label, node: n.describe() });
      }
    }
  }
  return out;
}

/** Throws one AttnpassError listing every problem, or returns quietly. */
export function assertValid(model: Model, options: { customOps?: CustomOpCheck; context?: string } = {}): void {
  const problems = validateModel(model, options);
  if (problems.length === 0) return;
  const head = options.context ? `${options.context}: ` : '';
  const shown = problems.slice(0, 12).map((p) => `- ${p.message}`);
  if (problems.length > 12) shown.push(`- … and ${problems.length - 12} more`);
  throw new AttnpassError('invalid-model', `${head}the model is not valid (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${shown.join('\n')}`);
}

function checkGraph(
  g: Graph,
  opsets: Map<string, number>,
  functions: Set<string>,
  customOps: CustomOpCheck | undefined,
  out: Diagnostic[],
  model: Model,
  label = g.parent ? `subgraph '${g.name}'` : `graph '${g.name}'`,
): void {
  // order: every input is defined before it is used
  const defined = new Set(g.values().filter((v) => v.isGraphInput || v.initializer));
  const order = topologicalOrder(g);
  if (!order.ok) {
    out.push({ rule: 'acyclic', message: `${label} has a cycle: ${order.cycle.map((n) => n.describe()).join(' → ')} → back. A graph must be acyclic.`, graph: g.name, node: order.cycle[0]?.describe() });
  } else {
    for (const n of g.nodes) {
      for (const v of n.inputs) {
        if (v && v.graph === g && v.producer && !defined.has(v)) {
          out.push({ rule: 'order', message: `${label}: ${n.describe()} reads '${v.name}' before ${v.producer.describe()} makes it; nodes must be in topological order (attnpass can re-sort: this is a damaged export).`, graph: g.name, node: n.describe(), value: v.name });
        }
      }
      for (const o of n.outputs) if (o) defined.add(o);
    }
  }
  const seenNames = new Set<string>();
  for (const n of g.nodes) {
    if (n.name) {
      if (seenNames.has(n.name)) out.push({ rule: 'names', message: `${label}: two nodes are named '${n.name}'; node names must be unique.`, graph: g.name, node: n.describe() });
      seenNames.add(n.name);
    }
    checkNode(n, g, opsets, functions, customOps, out, label, model);
    for (const subs of n.subgraphs.values()) for (const sg of subs) checkGraph(sg, opsets, functions, customOps, out, model);
  }
  for (const v of g.outputs) {
    if (!v.producer && !v.initializer && !v.isGraphInput && v.graph === g) {
      // already reported by lift when it came from a file; report graphs built in memory too
      if (!model.issues.some((i) => i.value === v.name)) out.push({ rule: 'outputs', message: `${label}: output '${v.name}' is not produced by any node.`, graph: g.name, value: v.name });
    }
  }
}

function checkNode(
  n: Node,
  g: Graph,
  opsets: Map<string, number>,
  functions: Set<string>,
  customOps: CustomOpCheck | undefined,
  out: Diagnostic[],
  label: string,
  model: Model,
): void {
  const where = `${label}: ${n.describe()}`;
  const isFunctionCall = functions.has(`${n.domain}::${n.opType}`);
  if (!opsets.has(n.domain)) {
    out.push({ rule: 'opset', message: `${where} uses domain '${n.domain || 'ai.onnx'}', which the ${label.startsWith('function') ? 'function' : 'model'} does not import. Add an opset_import entry for it.`, graph: g.name, node: n.describe() });
  }
  if (n.domain === '' && !isFunctionCall && !ONNX_OPS.has(n.opType)) {
    out.push({ rule: 'unknown-op', message: `${where}: '${n.opType}' is not an operator of the default ONNX domain. Check the op name or give the node its custom domain.`, graph: g.name, node: n.describe() });
  }
  if (n.domain !== '' && !RUNTIME_DOMAINS.has(n.domain) && !isFunctionCall && !(customOps?.(n.domain, n.opType) ?? false)) {
    out.push({ rule: 'unknown-op', message: `${where}: no model-local function defines ${n.domain}.${n.opType}, and no runtime implements that domain, so the model cannot run. Attach its function or register the op's library.`, graph: g.name, node: n.describe() });
  }
  if (n.domain === 'ai.attnpass' && !isFunctionCall) {
    out.push({ rule: 'function', message: `${where}: every ai.attnpass op must carry its model-local function (so stock ONNX Runtime can run it); this one has none.`, graph: g.name, node: n.describe() });
  }
  for (const [name, a] of n.attributes) {
    if (a.refAttrName && !label.startsWith('function')) {
      out.push({ rule: 'attribute', message: `${where}: attribute '${name}' refers to a function attribute ('${a.refAttrName}') outside a function body.`, graph: g.name, node: n.describe() });
    }
  }
  // element types that must agree
  const SAME_TYPE = new Set(['MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'Gemm']);
  if (n.domain === '' && SAME_TYPE.has(n.opType)) {
    const types = n.inputs.filter((v) => v?.type?.elemType).map((v) => v!.type!.elemType);
    if (types.some((t) => t !== types[0])) {
      out.push({ rule: 'types', message: `${where}: inputs have different element types (${n.inputs.map((v) => `${v?.name}: ${v?.type?.elemType}`).join(', ')}); ${n.opType} needs them equal. Insert a Cast.`, graph: g.name, node: n.describe() });
    }
  }
  if (n.opType === 'Softmax' && n.domain === '') {
    const t = n.inputs[0]?.type?.elemType;
    const o = n.outputs[0]?.type?.elemType;
    if (t && o && t !== o) out.push({ rule: 'types', message: `${where}: input type ${t} and output type ${o} disagree.`, graph: g.name, node: n.describe() });
  }
  for (const v of n.outputs) {
    if (v?.type && v.type.elemType && !isKnownElementType(v.type.elemType)) {
      out.push({ rule: 'types', message: `${where}: output '${v.name}' has unknown element type ${v.type.elemType}.`, graph: g.name, node: n.describe(), value: v.name });
    }
    for (const d of v?.type?.shape ?? []) {
      if (typeof d === 'number' && (d < 0 || d > 2 ** 40)) {
        out.push({ rule: 'shapes', message: `${where}: output '${v!.name}' has an impossible dimension ${d}.`, graph: g.name, node: n.describe(), value: v!.name });
        break;
      }
    }
  }
  void model;
}
