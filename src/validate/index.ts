/**
 * Structural validation of a model in IR form. Each problem names the graph, the node (op and name),
 * the value or field involved, and says what to do. Type and shape checks use the types the IR holds:
 * declared ones (value_info, inputs, outputs, initializers) and, after `inferModel`, inferred ones.
 *
 * Rules (the `rule` of each Diagnostic):
 *   structure   what lifting found: dangling inputs, two producers, undefined outputs, duplicates
 *   acyclic     a cycle through nodes
 *   order       nodes not in topological order
 *   names       two nodes with one name
 *   outputs     a graph without outputs, an output listed twice or never produced
 *   opset       missing or impossible opset imports, ops newer than the imported opset
 *   unknown-op  an op no domain defines, a custom op with neither function nor runtime
 *   function    ai.attnpass ops without their function, function import problems
 *   recursion   functions that call themselves, directly or through others
 *   attribute   attribute references outside function bodies
 *   arity       wrong number of inputs or outputs for a well-known op
 *   types       element types that disagree
 *   shapes      impossible dims, shapes that contradict each other (MatMul, broadcasting, Reshape, perm)
 *   tensor      initializer data that does not match its dims and type, broken external data
 */
import { AttnpassError } from '../errors.js';
import type { Dim, Graph, Node, Value } from '../ir/graph.js';
import { isInTopologicalOrder, topologicalOrder } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { inferModel, shapeValueOf } from '../ir/infer.js';
import { DataType, onnx, toBigInt, type TensorProto } from '../onnx/codec.js';
import { elementType, isKnownElementType } from '../onnx/dtype.js';
import { isExternal } from '../onnx/external.js';
import { MAX_DEFAULT_OPSET } from '../onnx/load.js';
import { rawDataLength } from '../onnx/payload.js';
import { ARITY, ONNX_ML_OPS, ONNX_OPS, ORT_DEFAULT_DOMAIN_OPS, SINCE_VERSION } from './onnx-ops.js';

export interface Diagnostic {
  rule: string;
  message: string;
  graph: string;
  node?: string;
  value?: string;
}

/** Domains whose ops ONNX Runtime implements without a model-local function. */
const RUNTIME_DOMAINS = new Set(['', 'ai.onnx.ml', 'com.microsoft', 'com.microsoft.nchwc', 'ai.onnx.training', 'ai.onnx.preview.training', 'com.ms.internal.nhwc', 'org.pytorch.aten', 'pkg.onnxscript.torch_lib.common']);

/** The largest dimension attnpass believes (2^40); anything larger is a damaged file, not a model. */
export const MAX_DIM = 2 ** 40;

/** Ops that a registered custom-op library may provide (ours), looked up lazily to keep layers apart. */
export type CustomOpCheck = (domain: string, opType: string) => boolean;

export interface ValidateOptions {
  customOps?: CustomOpCheck;
  /**
   * Run shape/type inference first (default true), so type and shape contradictions are found whether or
   * not the caller inferred. Inference only fills in what is unknown; it never changes a declared type.
   */
  infer?: boolean;
}

export function validateModel(model: Model, options: ValidateOptions = {}): Diagnostic[] {
  if (options.infer !== false) inferModel(model);
  const out: Diagnostic[] = model.issues.map((i) => ({ rule: 'structure', message: i.message, graph: i.graph, node: i.node, value: i.value }));
  const main = model.graph.name;
  const defaultOpset = model.opsets.get('');
  if (defaultOpset === undefined) {
    out.push({ rule: 'opset', message: `the model imports no version of the default ONNX domain (opset_import has no entry for ""). Add one, e.g. opset 17.`, graph: main });
  } else if (defaultOpset > MAX_DEFAULT_OPSET && defaultOpset <= 10_000) {
    out.push({ rule: 'opset', message: `the model imports the default ONNX domain at opset ${defaultOpset}; the newest opset attnpass knows is ${MAX_DEFAULT_OPSET}. Export with an opset ≤ ${MAX_DEFAULT_OPSET}.`, graph: main });
  }
  const functionKeys = new Set(model.functions.map((f) => `${f.domain}::${f.name}`));
  const ctx: Ctx = { model, functions: functionKeys, customOps: options.customOps, out };
  checkGraph(ctx, model.graph, model.opsets, `graph '${main}'`, false);
  for (const f of model.functions) {
    const label = `function ${f.domain}.${f.name}`;
    if (!f.opsets.has('') && f.body.nodes.some((n) => n.domain === '')) {
      out.push({ rule: 'function', message: `${label} uses default-domain ops but its opset_import has no entry for "" (ONNX Runtime requires each function to import the domains it uses). Add opset_import { domain: "", version: ${defaultOpset ?? 17} } to the function.`, graph: label });
    }
    checkGraph(ctx, f.body, f.opsets, label, true);
  }
  checkRecursion(model, out);
  return out;
}

/** Throws one AttnpassError listing every problem, or returns quietly. */
export function assertValid(model: Model, options: ValidateOptions & { context?: string } = {}): void {
  const problems = validateModel(model, options);
  if (problems.length === 0) return;
  const head = options.context ? `${options.context}: ` : '';
  const shown = problems.slice(0, 12).map((p) => `- ${p.message}`);
  if (problems.length > 12) shown.push(`- … and ${problems.length - 12} more`);
  throw new AttnpassError('invalid-model', `${head}the model is not valid (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${shown.join('\n')}`);
}

interface Ctx {
  model: Model;
  functions: Set<string>;
  customOps: CustomOpCheck | undefined;
  out: Diagnostic[];
}

function checkGraph(ctx: Ctx, g: Graph, opsets: Map<string, number>, label: string, inFunction: boolean): void {
  const { out } = ctx;
  // order: every input is defined before it is used
  const defined = new Set<Value>(g.values().filter((v) => v.isGraphInput || v.initializer || v.sparseInitializer));
  // a graph in order has no cycle; only one out of order needs the (slower) sort to tell
  const order = isInTopologicalOrder(g) ? undefined : topologicalOrder(g);
  if (order && !order.ok) {
    out.push({ rule: 'acyclic', message: `${label} has a cycle: ${order.cycle.map((n) => n.describe()).join(' → ')} → back to the first. A graph must be acyclic; the export is damaged.`, graph: g.name, node: order.cycle[0]?.describe() });
  } else {
    let reported = 0;
    for (const n of g.nodes) {
      for (const v of n.inputs) {
        if (v && v.graph === g && v.producer && !defined.has(v) && reported < 5) {
          reported++;
          out.push({ rule: 'order', message: `${label}: ${n.describe()} reads '${v.name}' before ${v.producer.describe()} makes it; nodes must be in topological order (a damaged export; Graph.topologicalSort() can re-sort it).`, graph: g.name, node: n.describe(), value: v.name });
        }
      }
      for (const o of n.outputs) if (o) defined.add(o);
    }
  }
  if (!inFunction && g.outputs.length === 0) {
    out.push({ rule: 'outputs', message: `${label} has no outputs; a graph must have at least one. Add the values the model computes to its outputs.`, graph: g.name });
  }
  const seenOutputs = new Set<Value>();
  for (const v of g.outputs) {
    if (seenOutputs.has(v)) out.push({ rule: 'outputs', message: `${label}: output '${v.name}' is listed twice; list each output once.`, graph: g.name, value: v.name });
    seenOutputs.add(v);
    if (!v.isDefined && v.graph === g && v.useCount === 0) {
      // already reported by lift when it came from a file; report graphs built in memory too
      if (!ctx.model.issues.some((i) => i.value === v.name)) out.push({ rule: 'outputs', message: `${label}: output '${v.name}' is not produced by any node. Remove it or add the node that makes it.`, graph: g.name, value: v.name });
    }
  }
  for (const v of g.initializers) {
    checkTensor(ctx, v.initializer!, () => `${label}: initializer '${v.name}'`, g);
    checkInitializerDeclaration(ctx, v, label, g);
  }
  for (const v of [...g.inputs, ...g.outputs]) if (v.graph === g || g.outputs.includes(v)) checkDeclaredShape(ctx, v, label, g);
  // node outputs get this check with their node; graph inputs have no node
  for (const v of g.inputs) {
    if (v.type?.elemType && !isKnownElementType(v.type.elemType)) out.push({ rule: 'types', message: `${label}: graph input '${v.name}' is declared with element type ${v.type.elemType}, which ONNX does not define. Fix its declared type.`, graph: g.name, value: v.name });
  }
  for (const e of g._valueInfo) if (e.value && e.value.graph === g) checkDeclaredShape(ctx, e.value, label, g);
  const seenNames = new Set<string>();
  for (const n of g.nodes) {
    if (n.name) {
      if (seenNames.has(n.name)) out.push({ rule: 'names', message: `${label}: two nodes are named '${n.name}'; node names must be unique. Rename one.`, graph: g.name, node: n.describe() });
      seenNames.add(n.name);
    }
    checkNode(ctx, n, g, opsets, label, inFunction);
    for (const subs of n.subgraphs.values()) for (const sg of subs) checkGraph(ctx, sg, opsets, `${label} › subgraph '${sg.name}' of ${n.describe()}`, inFunction);
  }
}

const reportedShapes = new WeakSet<Value>();
function checkDeclaredShape(ctx: Ctx, v: Value, label: string, g: Graph): void {
  if (reportedShapes.has(v)) return;
  const bad = v.type?.shape?.find((d) => typeof d === 'number' && (d < 0 || d > MAX_DIM || !Number.isInteger(d)));
  if (bad === undefined) return;
  reportedShapes.add(v);
  ctx.out.push({ rule: 'shapes', message: `${label}: '${v.name}' is declared with dimension ${dimText(bad)} (shape [${v.type!.shape!.map(dimText).join(', ')}]); a dimension must be between 0 and 2^40. Use dim_param for a dynamic dimension, or fix the export.`, graph: g.name, value: v.name });
}

/**
 * A declaration of an initializer (graph input, graph output or value_info) replaces its type when lifted,
 * so one that contradicts the tensor's own element type, rank or dims would make shapes lie downstream.
 */
function checkInitializerDeclaration(ctx: Ctx, v: Value, label: string, g: Graph): void {
  const t = v.initializer!;
  const declared = v.type;
  if (!declared || !isKnownElementType(t.dataType ?? 0)) return;
  const dims = (t.dims ?? []).map((d) => Number(toBigInt(d)));
  const elemClash = declared.elemType !== 0 && declared.elemType !== t.dataType;
  const shapeClash = declared.shape !== undefined && (declared.shape.length !== dims.length || declared.shape.some((d, i) => typeof d === 'number' && d !== dims[i]));
  if (!elemClash && !shapeClash) return;
  const shape = declared.shape ? `[${declared.shape.map(dimText).join(', ')}]` : '[?]';
  ctx.out.push({ rule: 'types', message: `${label}: initializer '${v.name}' holds [${dims.join(', ')}] of ${typeName(t.dataType ?? 0)}, but it is declared (graph input, output or value_info) as ${shape} of ${typeName(declared.elemType)}. Fix the declaration or the initializer.`, graph: g.name, value: v.name });
}

/** Ops whose `axis` attribute names one axis of input 0, with its default. */
const AXIS_DEFAULTS = new Map([['Softmax', -1], ['LogSoftmax', -1], ['Concat', 0], ['Gather', 0], ['Split', 0]]);

function dimText(d: Dim): string {
  if (typeof d === 'number' && Math.abs(d) >= 2 ** 53) return `≈${d.toExponential(3)} (2^${Math.log2(Math.abs(d)).toFixed(0)})`;
  return d === undefined ? '?' : String(d);
}

/** `where` names the tensor in a message; a function, as building it for every tensor of a large model would cost more than the check. */
function checkTensor(ctx: Ctx, t: TensorProto, where: () => string, g: Graph): void {
  const push = (message: string): void => {
    ctx.out.push({ rule: 'tensor', message: `${where()}: ${message}`, graph: g.name, value: t.name ?? undefined });
  };
  const code = t.dataType ?? 0;
  if (code === 0 || !isKnownElementType(code)) {
    push(`data_type ${code} is not an ONNX element type. The model is damaged or needs a newer ONNX; re-export it.`);
    return;
  }
  const dims = (t.dims ?? []).map((d) => toBigInt(d));
  const badDim = dims.findIndex((d) => d < 0n || d > BigInt(MAX_DIM));
  if (badDim >= 0) {
    push(`dims[${badDim}] is ${dims[badDim]}; a tensor dimension must be between 0 and 2^40. The model is damaged; re-export it.`);
    return;
  }
  const numel = dims.reduce((a, b) => a * b, 1n);
  const bits = BigInt(elementType(code).bits);
  const need = (numel * bits + 7n) / 8n;
  const shape = (): string => `[${dims.join(', ')}] of ${elementType(code).name}`;
  if (isExternal(t)) {
    try {
      const have = ctx.model.external.regionLength(t);
      if (BigInt(have) !== need) push(`external data holds ${have} bytes but dims ${shape()} need ${need}. Fix the external_data 'length' entry or re-save the model.`);
    } catch (err) {
      if (!(err instanceof AttnpassError)) throw err;
      ctx.out.push({ rule: 'tensor', message: err.message, graph: g.name, value: t.name ?? undefined });
    }
    return;
  }
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    push(`data_location is EXTERNAL but external_data is empty. Re-save the model with its external data, or set data_location to DEFAULT.`);
    return;
  }
  const rawLength = rawDataLength(t);
  if (rawLength > 0) {
    if (BigInt(rawLength) !== need) push(`raw_data has ${rawLength} bytes but dims ${shape()} need ${need}. The file is damaged or was written by a faulty tool; re-export it.`);
    return;
  }
  if (code === DataType.STRING) {
    if (BigInt(t.stringData?.length ?? 0) !== numel) push(`string_data has ${t.stringData?.length ?? 0} values but dims ${shape()} need ${numel}.`);
    return;
  }
  const [field, count] =
    code === DataType.FLOAT ? ['float_data', t.floatData?.length ?? 0]
    : code === DataType.DOUBLE ? ['double_data', t.doubleData?.length ?? 0]
    : code === DataType.INT64 ? ['int64_data', t.int64Data?.length ?? 0]
    : code === DataType.UINT32 || code === DataType.UINT64 ? ['uint64_data', t.uint64Data?.length ?? 0]
    : ['int32_data', t.int32Data?.length ?? 0];
  const expected = bits === 4n ? (numel + 1n) / 2n : bits === 2n ? (numel + 3n) / 4n : numel;
  if (BigInt(count) !== expected && !(count === 0 && numel === 0n)) {
    push(`holds ${count} value(s) in ${field} (and no raw_data) but dims ${shape()} need ${expected}. The file is damaged; re-export it.`);
  }
}

function checkNode(ctx: Ctx, n: Node, g: Graph, opsets: Map<string, number>, label: string, inFunction: boolean): void {
  const { out } = ctx;
  const where = (): string => `${label}: ${n.describe()}`;
  const push = (rule: string, message: string, value?: string): void => {
    out.push({ rule, message: `${where()}${message}`, graph: g.name, node: n.describe(), value });
  };
  if (!n.opType) {
    push('unknown-op', ` has no op_type. Every node names its operator; the file is damaged.`);
    return;
  }
  const isFunctionCall = ctx.functions.has(`${n.domain}::${n.opType}`);
  const version = opsets.get(n.domain);
  if (version === undefined) {
    push('opset', ` uses domain '${n.domain || 'ai.onnx'}', which the ${inFunction ? 'function' : 'model'} does not import. Add an opset_import entry for it.`);
  }
  if (n.domain === '' && !isFunctionCall && !ONNX_OPS.has(n.opType) && !ORT_DEFAULT_DOMAIN_OPS.has(n.opType)) {
    push('unknown-op', `: '${n.opType}' is not an operator of the default ONNX domain. Check the op name or give the node its custom domain (and a model-local function).`);
  }
  if (n.domain === 'ai.onnx.ml' && !isFunctionCall && !ONNX_ML_OPS.has(n.opType)) {
    push('unknown-op', `: '${n.opType}' is not an operator of the ai.onnx.ml domain. Check the op name or its domain.`);
  }
  if (n.domain === '' && version !== undefined && !isFunctionCall) {
    const since = SINCE_VERSION.get(n.opType);
    if (since !== undefined && version < since) {
      push('opset', `: ${n.opType} exists from opset ${since}, but the ${inFunction ? 'function' : 'model'} imports opset ${version}. Export with opset ≥ ${since}, or use the ops ${n.opType} decomposes into.`);
    }
  }
  if (n.domain !== '' && !RUNTIME_DOMAINS.has(n.domain) && !isFunctionCall && !(ctx.customOps?.(n.domain, n.opType) ?? false)) {
    push('unknown-op', `: no model-local function defines ${n.domain}.${n.opType}, and no runtime implements that domain, so the model cannot run. Attach its function or register the op's library.`);
  }
  if (n.domain === 'ai.attnpass' && !isFunctionCall) {
    push('function', `: every ai.attnpass op must carry its model-local function (so stock ONNX Runtime can run it); this one has none.`);
  }
  for (const [name, a] of n.attributes) {
    if (a.refAttrName && !inFunction) {
      push('attribute', `: attribute '${name}' refers to a function attribute ('${a.refAttrName}') outside a function body. Give the attribute its value.`);
    }
  }
  if (n.domain === '' && !isFunctionCall) {
    checkArity(n, push);
    checkTypes(n, push);
    checkShapes(n, push);
  }
  for (const a of n.attributes.values()) {
    if (a.t) checkTensor(ctx, a.t, () => `${where()}: attribute '${a.name}'`, g);
    for (const t of a.tensors ?? []) checkTensor(ctx, t, () => `${where()}: attribute '${a.name}'`, g);
  }
  for (const v of n.outputs) {
    if (v?.type && v.type.elemType && !isKnownElementType(v.type.elemType)) {
      push('types', `: output '${v.name}' has element type ${v.type.elemType}, which ONNX does not define. Fix its declared type.`, v.name);
    }
    if (v) checkDeclaredShape(ctx, v, label, g);
  }
}

type Push = (rule: string, message: string, value?: string) => void;

function checkArity(n: Node, push: Push): void {
  const arity = ARITY.get(n.opType);
  if (!arity) return;
  const [minIn, maxIn, minOut, maxOut] = arity;
  const ins = n.inputs.length;
  const outs = n.outputs.length;
  const missing = n.inputs.slice(0, minIn).findIndex((v) => v === undefined);
  if (ins < minIn || ins > maxIn || missing >= 0) {
    const want = minIn === maxIn ? `${minIn}` : maxIn === Infinity ? `at least ${minIn}` : `${minIn} to ${maxIn}`;
    push('arity', ` has ${ins} input(s)${missing >= 0 ? ` (input ${missing} is empty)` : ''}; ${n.opType} takes ${want}. Fix the node's inputs.`);
  }
  if (outs < minOut || outs > maxOut) {
    const want = minOut === maxOut ? `${minOut}` : maxOut === Infinity ? `at least ${minOut}` : `${minOut} to ${maxOut}`;
    push('arity', ` has ${outs} output(s); ${n.opType} makes ${want}. Fix the node's outputs.`);
  }
}

/** Ops whose listed inputs must share one element type, and whose output has that type. */
const SAME_TYPE: ReadonlyMap<string, number[]> = new Map([
  ['MatMul', [0, 1]], ['Add', [0, 1]], ['Sub', [0, 1]], ['Mul', [0, 1]], ['Div', [0, 1]], ['Gemm', [0, 1]], ['Where', [1, 2]],
]);
const PRESERVES_TYPE = new Set(['MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Softmax', 'LogSoftmax', 'Transpose', 'Reshape', 'Relu', 'Tanh', 'Sqrt', 'Exp', 'Neg', 'Gelu', 'Erf', 'Sigmoid', 'Where', 'Expand', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Gemm']);
const typeName = (code: number | undefined): string => (code ? elementType(code).name : 'unknown');

function checkTypes(n: Node, push: Push): void {
  const same = SAME_TYPE.get(n.opType) ?? (n.opType === 'Concat' ? n.inputs.map((_, i) => i) : undefined);
  let inputType: number | undefined;
  if (same) {
    const typed = same.map((i) => n.inputs[i]).filter((v): v is Value => !!v?.type?.elemType);
    if (typed.some((v) => v.type!.elemType !== typed[0]!.type!.elemType)) {
      push('types', `: inputs have different element types (${typed.map((v) => `'${v.name}': ${typeName(v.type!.elemType)}`).join(', ')}); ${n.opType} needs them equal. Insert a Cast.`);
      return;
    }
    inputType = typed[0]?.type?.elemType;
  } else if (PRESERVES_TYPE.has(n.opType)) {
    inputType = n.inputs[0]?.type?.elemType || undefined;
  }
  const o = n.outputs[0];
  if (PRESERVES_TYPE.has(n.opType) && inputType && o?.type?.elemType && o.type.elemType !== inputType) {
    push('types', `: output '${o.name}' is declared ${typeName(o.type.elemType)}, but ${n.opType} of ${typeName(inputType)} makes ${typeName(inputType)}. Fix the declared type (value_info / graph output) or insert a Cast.`, o.name);
  }
}

const num = (d: Dim): d is number => typeof d === 'number';
const shapeText = (s: Dim[]): string => `[${s.map(dimText).join(', ')}]`;

function broadcastConflict(shapes: Dim[][]): number | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  for (let i = 1; i <= rank; i++) {
    const dims = shapes.map((s) => s[s.length - i]).filter((d): d is number => num(d) && d !== 1);
    if (new Set(dims).size > 1) return rank - i;
  }
  return undefined;
}

const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Mod']);

function checkShapes(n: Node, push: Push): void {
  const shape = (i: number): Dim[] | undefined => n.inputs[i]?.type?.shape;
  if (BROADCASTING.has(n.opType)) {
    const shapes = n.inputs.map((v) => v?.type?.shape).filter((s): s is Dim[] => !!s);
    if (shapes.length === n.inputs.length && shapes.length >= 2) {
      const axis = broadcastConflict(shapes);
      if (axis !== undefined) {
        push('shapes', `: input shapes ${n.inputs.map((v) => `'${v!.name}' ${shapeText(v!.type!.shape!)}`).join(' and ')} cannot be broadcast together (they disagree at axis ${axis}). Fix the shapes that feed it.`);
      }
    }
  }
  if (n.opType === 'MatMul') {
    const a = shape(0);
    const b = shape(1);
    if (a && b && a.length >= 1 && b.length >= 1) {
      const ka = a[a.length - 1];
      const kb = b.length === 1 ? b[0] : b[b.length - 2];
      if (num(ka) && num(kb) && ka !== kb) {
        push('shapes', `: '${n.inputs[0]!.name}' ${shapeText(a)} times '${n.inputs[1]!.name}' ${shapeText(b)}: the inner dimensions ${ka} and ${kb} differ. Fix the shapes that feed it (for attention: Q and K head dims, or a wrong transpose).`);
      } else if (a.length > 2 && b.length > 2) {
        const axis = broadcastConflict([a.slice(0, -2), b.slice(0, -2)]);
        if (axis !== undefined) push('shapes', `: batch dimensions of ${shapeText(a)} and ${shapeText(b)} cannot be broadcast (axis ${axis}). Fix the shapes that feed it.`);
      }
    }
  }
  const axisDefault = AXIS_DEFAULTS.get(n.opType);
  if (axisDefault !== undefined) {
    const s = shape(0);
    const axis = n.attrInt('axis', axisDefault);
    if (s && (axis < -s.length || axis >= s.length)) push('shapes', `: axis ${axis} is out of range for its rank-${s.length} input. Use an axis in [${-s.length}, ${s.length - 1}].`);
  }
  if (n.opType === 'Transpose') {
    const s = shape(0);
    const perm = n.attrInts('perm');
    if (s && perm) {
      const sorted = [...perm].sort((x, y) => x - y);
      if (perm.length !== s.length || sorted.some((p, i) => p !== i)) {
        push('shapes', `: perm [${perm.join(', ')}] is not a permutation of the ${s.length} axes of its input ${shapeText(s)}. Fix the perm attribute.`);
      }
    }
  }
  if (n.opType === 'Reshape' && n.inputs[1]) {
    const s = shape(0);
    const target = shapeValueOf(n.inputs[1]);
    const allowZero = n.attrInt('allowzero', 0) === 1;
    if (target && target.every(num)) {
      const t = target as number[];
      if (t.filter((d) => d === -1).length > 1 || t.some((d) => d < -1)) {
        push('shapes', `: target shape [${t.join(', ')}] is invalid (at most one -1, no other negative dims). Fix the shape constant.`);
      } else if (s && s.every(num)) {
        const resolved = t.map((d, i) => (d === 0 && !allowZero ? (s[i] as number | undefined) : d));
        const total = (s as number[]).reduce((a, b) => a * b, 1);
        const known = resolved.filter((d) => d !== -1);
        if (known.some((d) => d === undefined)) {
          push('shapes', `: target shape [${t.join(', ')}] copies a dimension (0) that its rank-${s.length} input does not have.`);
        } else {
          const prod = (known as number[]).reduce((a, b) => a * b, 1);
          const ok = resolved.includes(-1) ? (prod === 0 ? total === 0 : total % prod === 0) : prod === total;
          if (!ok) push('shapes', `: cannot reshape ${shapeText(s)} (${total} elements) to [${t.join(', ')}]. Fix the shape constant (for attention: heads × head_dim must equal the hidden size).`);
        }
      }
    }
  }
}

/** Functions that call themselves, directly or through other functions. */
function checkRecursion(model: Model, out: Diagnostic[]): void {
  const key = (domain: string, name: string): string => `${domain}::${name}`;
  const defs = new Map(model.functions.map((f) => [key(f.domain, f.name), f] as const));
  const calls = new Map<string, Array<{ callee: string; node: Node }>>();
  for (const f of model.functions) {
    const list: Array<{ callee: string; node: Node }> = [];
    for (const n of f.body.allNodes()) {
      const k = key(n.domain, n.opType);
      if (defs.has(k)) list.push({ callee: k, node: n });
    }
    calls.set(key(f.domain, f.name), list);
  }
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (k: string): void => {
    state.set(k, 'active');
    stack.push(k);
    for (const { callee, node } of calls.get(k) ?? []) {
      if (state.get(callee) === 'active') {
        const cycle = [...stack.slice(stack.indexOf(callee)), callee].map((c) => c.replace('::', '.'));
        const label = `function ${k.replace('::', '.')}`;
        if (!reported.has(callee)) {
          reported.add(callee);
          const how = cycle.length === 2 ? 'calls itself' : `is recursive: ${cycle.join(' → ')}`;
          out.push({ rule: 'recursion', message: `${label} ${how} (node ${node.describe()}); ONNX functions cannot be recursive. Inline or restructure the function.`, graph: label, node: node.describe() });
        }
      } else if (!state.has(callee)) {
        visit(callee);
      }
    }
    stack.pop();
    state.set(k, 'done');
  };
  for (const k of calls.keys()) if (!state.has(k)) visit(k);
}
