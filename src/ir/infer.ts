/**
 * Shape and type inference for the ops that matter to attention, with symbolic dims, plus the values
 * of small integer "shape tensors" (Shape → Gather → Concat → Reshape chains), so passes can read head
 * counts and head dims off a graph whatever exporter wrote it.
 *
 * Types already known (from value_info) are kept; inference fills in what is missing and never
 * overwrites a known dim with an unknown one.
 */
import { DataType } from '../onnx/codec.js';
import { tensorDims, tensorNumel, tensorToBigInt64, tensorToFloat64 } from '../onnx/tensor.js';
import { isFloatType } from '../onnx/dtype.js';
import type { Dim, Graph, Node, TensorType, Value } from './graph.js';
import type { Model } from './model.js';

/** Values of small constant tensors and of shape computations: a number per element, a symbol, or unknown. */
const shapeValues = new WeakMap<Value, Dim[]>();
/** Float values of small constant tensors (scales, masks' fill values). */
const floatValues = new WeakMap<Value, number[]>();

const SMALL = 4096;
/** ranks beyond this are not believed (a damaged shape tensor), only left unknown */
const MAX_RANK = 64;

/** The element values of a small integer tensor (constant or computed from shapes), if known. */
export function shapeValueOf(v: Value | undefined): Dim[] | undefined {
  if (!v) return undefined;
  const known = shapeValues.get(v);
  if (known) return known;
  const t = v.initializer ?? (v.producer?.opType === 'Constant' ? v.producer.attrTensor('value') : undefined);
  if (t && tensorNumel(t) <= SMALL && isIntType(t.dataType ?? 0)) {
    const vals = [...tensorToBigInt64(t)].map((b) => Number(b));
    shapeValues.set(v, vals);
    return vals;
  }
  const c = v.producer?.opType === 'Constant' ? constantAttrInts(v.producer) : undefined;
  if (c) shapeValues.set(v, c);
  return c;
}

/** The values of a small constant float (or int) tensor: initializer, Constant node, or a Cast of one. */
export function constantFloats(v: Value | undefined): number[] | undefined {
  if (!v) return undefined;
  const known = floatValues.get(v);
  if (known) return known;
  let out: number[] | undefined;
  const p = v.producer;
  const t = v.initializer ?? (p?.opType === 'Constant' ? p.attrTensor('value') : undefined);
  if (t && tensorNumel(t) <= SMALL && (t.dataType ?? 0) !== DataType.STRING) out = [...tensorToFloat64(t)];
  else if (p?.opType === 'Constant') {
    const f = p.attrFloat('value_float');
    const fs = p.attributes.get('value_floats')?.floats;
    const ints = constantAttrInts(p);
    out = f !== undefined ? [f] : fs ? [...fs] : ints?.every((d) => typeof d === 'number') ? (ints as number[]) : undefined;
  } else if (p && (p.opType === 'Cast' || p.opType === 'Identity' || p.opType === 'CastLike')) {
    out = constantFloats(p.inputs[0]);
  } else if (p && ['Sqrt', 'Reciprocal', 'Neg'].includes(p.opType)) {
    const x = constantFloats(p.inputs[0]);
    const fn = p.opType === 'Sqrt' ? Math.sqrt : p.opType === 'Reciprocal' ? (a: number) => 1 / a : (a: number) => -a;
    out = x?.map(fn);
  } else if (p && ['Mul', 'Div', 'Add', 'Sub', 'Pow'].includes(p.opType)) {
    const a = constantFloats(p.inputs[0]);
    const b = constantFloats(p.inputs[1]);
    if (a && b && (a.length === 1 || b.length === 1 || a.length === b.length)) {
      const n = Math.max(a.length, b.length);
      const op = { Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => x / y, Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Pow: Math.pow }[p.opType as 'Mul']!;
      out = Array.from({ length: n }, (_, i) => op(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!));
    }
  }
  if (out) floatValues.set(v, out);
  return out;
}

/** The single value of a scalar-like constant, if it is one. */
export function constantScalar(v: Value | undefined): number | undefined {
  const vals = constantFloats(v);
  if (!vals || vals.length === 0) return undefined;
  return vals.every((x) => Object.is(x, vals[0]) || x === vals[0]) ? vals[0] : undefined;
}

function constantAttrInts(n: Node): Dim[] | undefined {
  const i = n.attrInt('value_int');
  if (i !== undefined) return [i];
  return n.attrInts('value_ints');
}

function isIntType(code: number): boolean {
  return code === DataType.INT64 || code === DataType.INT32 || code === DataType.INT16 || code === DataType.INT8 || code === DataType.UINT8 || code === DataType.BOOL;
}

/** Runs inference over the main graph, its subgraphs and function bodies. */
export function inferModel(model: Model): void {
  inferGraph(model.graph);
  for (const f of model.functions) inferGraph(f.body);
}

export function inferGraph(graph: Graph): void {
  for (const node of graph.nodes) {
    try {
      inferNode(node);
    } catch {
      // inference is best effort: a node it cannot understand keeps whatever types it had
    }
    for (const subs of node.subgraphs.values()) subs.forEach(inferGraph);
  }
}

function setType(v: Value | undefined, t: TensorType | undefined): void {
  if (!v || !t) return;
  if (!v.type) {
    v.type = t;
    return;
  }
  const elemType = v.type.elemType || t.elemType;
  let shape = v.type.shape;
  if (!shape) shape = t.shape;
  else if (t.shape && t.shape.length === shape.length) shape = shape.map((d, i) => (d === undefined || (typeof d === 'string' && typeof t.shape![i] === 'number') ? t.shape![i] : d));
  v.type = { elemType, shape };
}

function setValues(v: Value | undefined, vals: Dim[] | undefined): void {
  if (v && vals && vals.length <= SMALL) shapeValues.set(v, vals);
}

const same = (v: Value | undefined): TensorType | undefined => v?.type;
const elem = (v: Value | undefined): number => v?.type?.elemType ?? 0;
const shapeOf = (v: Value | undefined): Dim[] | undefined => v?.type?.shape;

/** The non-negative form of `axis`; one outside [-rank, rank) throws (the node is then left uninferred). */
function normAxis(axis: number, rank: number): number {
  // an unchecked axis of 2^31 made `shape[axis] = d` a 2^31-long sparse array, which hung inference
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new RangeError(`axis ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** A slice bound (start or end) of `rank` dims, clamped to [0, rank]. */
function sliceBound(bound: number, rank: number): number {
  const b = Math.max(-rank, Math.min(rank, bound));
  return b < 0 ? b + rank : b;
}

/** Numpy broadcasting of shapes; unknown where it cannot tell. */
export function broadcastShapes(...shapes: Array<Dim[] | undefined>): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const dims = shapes.map((s) => s![s!.length - rank + i]).filter((d) => d !== undefined || true);
    const present = dims.filter((d, j) => shapes[j]!.length - rank + i >= 0) as Dim[];
    const nonOne = present.filter((d) => d !== 1);
    if (nonOne.length === 0) out.push(1);
    else if (nonOne.some((d) => d === undefined)) out.push(nonOne.find((d) => typeof d === 'number') ?? undefined);
    else out.push(nonOne.find((d) => typeof d === 'number') ?? nonOne[0]);
  }
  return out;
}

function mulDim(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === undefined || b === undefined) return undefined;
  return `${a}*${b}`;
}

function arith(op: string, a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case 'Add': return a + b;
      case 'Sub': return a - b;
      case 'Mul': return a * b;
      case 'Div': return Math.trunc(a / b);
      case 'Mod': return a % b;
      case 'Max': return Math.max(a, b);
      case 'Min': return Math.min(a, b);
    }
    return undefined;
  }
  if (op === 'Mul') return mulDim(a, b);
  if (op === 'Div' && b === 1) return a;
  if ((op === 'Add' || op === 'Sub') && b === 0) return a;
  if (op === 'Add' && a === 0) return b;
  if (a === undefined || b === undefined) return undefined;
  return `${a}${{ Add: '+', Sub: '-', Div: '/', Mod: '%' }[op as 'Add'] ?? `~${op}~`}${b}`;
}

/** Resolves a Reshape target (0 copies, -1 infers) against the input shape, symbolically where it can. */
export function reshapeTarget(input: Dim[] | undefined, target: Dim[], allowZero = false): Dim[] {
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? input?.[i] : d));
  const minus = out.indexOf(-1);
  if (minus < 0 || !input) return out.map((d) => (d === -1 ? undefined : d));
  // cancel symbols and multiply numbers on both sides
  const num = (dims: Dim[]) => dims.reduce<number>((p, d) => (typeof d === 'number' ? p * d : p), 1);
  const syms = (dims: Dim[]) => dims.filter((d): d is string => typeof d === 'string').sort();
  const rest = out.filter((_, i) => i !== minus);
  if (input.some((d) => d === undefined) || rest.some((d) => d === undefined)) {
    out[minus] = undefined;
    return out;
  }
  const left = syms(input);
  const right = syms(rest);
  const remaining = [...left];
  for (const s of right) {
    const k = remaining.indexOf(s);
    if (k < 0) {
      out[minus] = undefined;
      return out;
    }
    remaining.splice(k, 1);
  }
  const n = num(input) / num(rest);
  if (remaining.length === 0) out[minus] = Number.isInteger(n) ? n : undefined;
  else out[minus] = n === 1 && remaining.length === 1 ? remaining[0] : undefined;
  return out;
}

const isCount = (d: Dim): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0;

/**
 * Output 0 of a fused attention op: [B, S, heads × V head size] for 3-D inputs (the com.microsoft ops and
 * ONNX Attention), [B, heads, S, V head size] for ONNX Attention's 4-D form; undefined where unsure.
 */
function fusedAttentionShape(n: Node): Dim[] | undefined {
  const [q, k, v] = [0, 1, 2].map((i) => shapeOf(n.inputs[i]));
  if (!q) return undefined;
  if (n.domain === '') {
    if (q.length === 4 && v?.length === 4) return [q[0], q[1], q[2], v[3]];
    const heads = n.attrInt('q_num_heads');
    const kvHeads = n.attrInt('kv_num_heads');
    if (q.length !== 3 || v?.length !== 3 || !isCount(heads) || !isCount(kvHeads) || !isCount(v[2]) || v[2] % kvHeads !== 0) return undefined;
    return [q[0], q[1], heads * (v[2] / kvHeads)];
  }
  if (q.length !== 3) return undefined;
  switch (n.opType) {
    case 'GroupQueryAttention': {
      if (k) return q;
      // packed QKV: [B, S, (heads + 2 × kv heads) × head size]
      const heads = n.attrInt('num_heads', 0);
      const packed = heads + 2 * n.attrInt('kv_num_heads', 0);
      return isCount(q[2]) && isCount(heads) && q[2] % packed === 0 ? [q[0], q[1], (q[2] / packed) * heads] : undefined;
    }
    case 'MultiHeadAttention':
      if (v?.length === 3) return [q[0], q[1], v[2]];
      if (v?.length === 4) return [q[0], q[1], mulDim(v[1], v[3])];
      return undefined;
    default: {
      const sizes = n.attrInts('qkv_hidden_sizes');
      if (sizes?.length === 3) return [q[0], q[1], sizes[2]];
      return k?.length === 2 && isCount(k[1]) && k[1] % 3 === 0 ? [q[0], q[1], k[1] / 3] : undefined;
    }
  }
}

function inferNode(n: Node): void {
  const x = n.inputs[0];
  const out = n.outputs[0];
  switch (n.opType) {
    case 'Constant': {
      const t = n.attrTensor('value');
      if (t) setType(out, { elemType: t.dataType ?? 0, shape: tensorDims(t) });
      else if (n.attrFloat('value_float') !== undefined) setType(out, { elemType: DataType.FLOAT, shape: [] });
      else if (n.attrInt('value_int') !== undefined) setType(out, { elemType: DataType.INT64, shape: [] });
      else if (n.attrInts('value_ints')) setType(out, { elemType: DataType.INT64, shape: [n.attrInts('value_ints')!.length] });
      else if (n.attributes.get('value_floats')) setType(out, { elemType: DataType.FLOAT, shape: [n.attributes.get('value_floats')!.floats!.length] });
      shapeValueOf(out);
      return;
    }
    case 'Shape': {
      const s = shapeOf(x);
      const rank = s?.length;
      if (rank === undefined) return setType(out, { elemType: DataType.INT64, shape: [undefined] });
      const start = sliceBound(n.attrInt('start', 0), rank);
      const endAttr = n.attrInt('end');
      const end = endAttr === undefined ? rank : sliceBound(endAttr, rank);
      const vals = s!.slice(start, Math.max(start, end));
      setType(out, { elemType: DataType.INT64, shape: [vals.length] });
      setValues(out, vals);
      return;
    }
    case 'Size': {
      setType(out, { elemType: DataType.INT64, shape: [] });
      const s = shapeOf(x);
      if (s) setValues(out, [s.reduce<Dim>((a, d) => mulDim(a, d), 1)]);
      return;
    }
    case 'Identity':
    case 'Dropout':
    case 'Neg':
    case 'Sqrt':
    case 'Reciprocal':
    case 'Exp':
    case 'Log':
    case 'Tanh':
    case 'Erf':
    case 'Relu':
    case 'Sigmoid':
    case 'Gelu':
    case 'FastGelu':
    case 'BiasGelu':
    case 'QuickGelu':
    case 'Softmax':
    case 'LogSoftmax':
    case 'Abs':
    case 'Sin':
    case 'Cos':
    case 'Floor':
    case 'Ceil':
    case 'Round':
    case 'LayerNormalization':
    case 'SimplifiedLayerNormalization':
    case 'SkipLayerNormalization':
    case 'SkipSimplifiedLayerNormalization':
    case 'RMSNormalization':
    case 'Trilu':
    case 'RotaryEmbedding':
    case 'CumSum':
      setType(out, same(x));
      if (n.opType === 'Identity') setValues(out, shapeValueOf(x));
      if (n.opType === 'Neg') setValues(out, shapeValueOf(x)?.map((d) => (typeof d === 'number' ? -d : undefined)));
      return;
    case 'IsNaN':
    case 'IsInf':
    case 'Not':
      setType(out, { elemType: DataType.BOOL, shape: shapeOf(x) });
      return;
    case 'Cast': {
      const to = n.attrInt('to', 0);
      setType(out, { elemType: to, shape: shapeOf(x) });
      if (!isFloatType(to)) setValues(out, shapeValueOf(x));
      return;
    }
    case 'CastLike':
      setType(out, { elemType: elem(n.inputs[1]), shape: shapeOf(x) });
      setValues(out, shapeValueOf(x));
      return;
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Pow':
    case 'Mod':
    case 'Max':
    case 'Min': {
      const ins = n.inputs.filter((v): v is Value => !!v);
      setType(out, { elemType: elem(ins[0]) || elem(ins[1]), shape: broadcastShapes(...ins.map(shapeOf)) });
      const a = shapeValueOf(ins[0]);
      const b = shapeValueOf(ins[1]);
      if (a && b && ins.length === 2 && n.opType !== 'Pow' && (a.length === b.length || a.length === 1 || b.length === 1)) {
        const len = Math.max(a.length, b.length);
        setValues(out, Array.from({ length: len }, (_, i) => arith(n.opType, a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i])));
      }
      return;
    }
    case 'Equal':
    case 'Less':
    case 'LessOrEqual':
    case 'Greater':
    case 'GreaterOrEqual':
    case 'And':
    case 'Or':
    case 'Xor': {
      setType(out, { elemType: DataType.BOOL, shape: broadcastShapes(shapeOf(x), shapeOf(n.inputs[1])) });
      const a = shapeValueOf(x);
      const b = shapeValueOf(n.inputs[1]);
      if (n.opType === 'Equal' && a && b && a.length === b.length && [...a, ...b].every((d) => typeof d === 'number')) {
        setValues(out, a.map((d, i) => (d === b[i] ? 1 : 0)));
      }
      return;
    }
    case 'Where': {
      const [c, a, b] = n.inputs;
      setType(out, { elemType: elem(a) || elem(b), shape: broadcastShapes(shapeOf(c), shapeOf(a), shapeOf(b)) });
      const cv = shapeValueOf(c);
      const av = shapeValueOf(a);
      const bv = shapeValueOf(b);
      if (cv && av && bv && cv.every((d) => typeof d === 'number')) {
        const len = Math.max(cv.length, av.length, bv.length);
        setValues(out, Array.from({ length: len }, (_, i) => (cv[cv.length === 1 ? 0 : i] ? av[av.length === 1 ? 0 : i] : bv[bv.length === 1 ? 0 : i])));
      }
      return;
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const s = shapeOf(x);
      const axesVals = n.inputs[1] ? shapeValueOf(n.inputs[1]) : n.attrInts('axes')?.map((a) => a as Dim);
      setValues(out, shapeValueOf(x));
      if (!s) return setType(out, { elemType: elem(x), shape: undefined });
      if (n.opType === 'Unsqueeze') {
        if (!axesVals || axesVals.some((a) => typeof a !== 'number')) return setType(out, { elemType: elem(x), shape: undefined });
        const rank = s.length + axesVals.length;
        const axes = new Set((axesVals as number[]).map((a) => normAxis(a, rank)));
        const res: Dim[] = [];
        let k = 0;
        for (let i = 0; i < rank; i++) res.push(axes.has(i) ? 1 : s[k++]);
        return setType(out, { elemType: elem(x), shape: res });
      }
      if (!axesVals) {
        if (s.every((d) => d !== undefined)) return setType(out, { elemType: elem(x), shape: s.filter((d) => d !== 1) });
        return setType(out, { elemType: elem(x), shape: undefined });
      }
      const axes = new Set((axesVals as number[]).map((a) => normAxis(a, s.length)));
      return setType(out, { elemType: elem(x), shape: s.filter((_, i) => !axes.has(i)) });
    }
    case 'Concat': {
      const ins = n.inputs.filter((v): v is Value => !!v);
      const shapes = ins.map(shapeOf);
      const vals = ins.map(shapeValueOf);
      if (vals.every((v) => v !== undefined) && shapes.every((s) => s?.length === 1)) setValues(out, vals.flatMap((v) => v!));
      if (shapes.some((s) => !s)) return setType(out, { elemType: elem(ins[0]), shape: undefined });
      const rank = shapes[0]!.length;
      const axis = normAxis(n.attrInt('axis', 0), rank);
      const res = [...shapes[0]!];
      res[axis] = shapes.reduce<Dim>((acc, s) => arith('Add', acc, s![axis]), 0);
      for (let i = 0; i < rank; i++) if (i !== axis && res[i] === undefined) res[i] = shapes.map((s) => s![i]).find((d) => d !== undefined);
      return setType(out, { elemType: elem(ins[0]), shape: res });
    }
    case 'Gather': {
      const data = shapeOf(x);
      const idx = n.inputs[1];
      const axis = n.attrInt('axis', 0);
      const iv = shapeValueOf(idx);
      const dv = shapeValueOf(x);
      if (dv && iv && axis === 0 && iv.every((i) => typeof i === 'number')) {
        setValues(out, (iv as number[]).map((i) => dv[i < 0 ? i + dv.length : i]));
      }
      if (!data || !shapeOf(idx)) return setType(out, { elemType: elem(x), shape: undefined });
      const a = normAxis(axis, data.length);
      return setType(out, { elemType: elem(x), shape: [...data.slice(0, a), ...shapeOf(idx)!, ...data.slice(a + 1)] });
    }
    case 'Slice': {
      const s = shapeOf(x);
      const starts = n.inputs[1] ? shapeValueOf(n.inputs[1]) : n.attrInts('starts');
      const ends = n.inputs[2] ? shapeValueOf(n.inputs[2]) : n.attrInts('ends');
      const axesIn = n.inputs[3] ? shapeValueOf(n.inputs[3]) : n.attrInts('axes');
      const steps = n.inputs[4] ? shapeValueOf(n.inputs[4]) : undefined;
      if (!s || !starts || !ends) return setType(out, { elemType: elem(x), shape: s ? s.map(() => undefined) : undefined });
      const axes = axesIn ?? starts.map((_, i) => i);
      const res = [...s];
      const xv = shapeValueOf(x);
      axes.forEach((ax, k) => {
        if (typeof ax !== 'number') return;
        const a = normAxis(ax, s.length);
        const dim = s[a];
        const st = starts[k];
        const en = ends[k];
        const step = (steps?.[k] as number | undefined) ?? 1;
        if (typeof dim === 'number' && typeof st === 'number' && typeof en === 'number') {
          const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
          const b = step > 0 ? clamp(st < 0 ? st + dim : st, 0, dim) : clamp(st < 0 ? st + dim : st, -1, dim - 1);
          const e = step > 0 ? clamp(en < 0 ? en + dim : en, 0, dim) : clamp(en < 0 ? en + dim : en, -1, dim - 1);
          res[a] = Math.max(0, Math.ceil((e - b) / step));
          if (xv && s.length === 1 && step === 1) setValues(out, xv.slice(b, e));
        } else if (st === 0 && typeof en === 'number' && en >= 2 ** 31 - 1 && step === 1) {
          res[a] = dim;
          if (xv && s.length === 1) setValues(out, xv);
        } else {
          res[a] = undefined;
        }
      });
      return setType(out, { elemType: elem(x), shape: res });
    }
    case 'Reshape': {
      const target = shapeValueOf(n.inputs[1]);
      setValues(out, shapeValueOf(x));
      if (!target) {
        const len = shapeOf(n.inputs[1])?.[0];
        return setType(out, { elemType: elem(x), shape: typeof len === 'number' && len >= 0 && len <= MAX_RANK ? Array.from({ length: len }, () => undefined) : undefined });
      }
      return setType(out, { elemType: elem(x), shape: reshapeTarget(shapeOf(x), target, n.attrInt('allowzero', 0) === 1) });
    }
    case 'Transpose': {
      const s = shapeOf(x);
      if (!s) return setType(out, { elemType: elem(x), shape: undefined });
      const perm = n.attrInts('perm') ?? s.map((_, i) => s.length - 1 - i);
      return setType(out, { elemType: elem(x), shape: perm.map((p) => s[p]) });
    }
    case 'MatMul':
    case 'FusedMatMul': {
      const a = shapeOf(x);
      const b = shapeOf(n.inputs[1]);
      if (!a || !b) return setType(out, { elemType: elem(x), shape: undefined });
      const a2 = a.length === 1 ? [1, a[0]] : a;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2)) ?? [];
      const res = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
      if (a.length === 1) res.splice(res.length - 2, 1);
      if (b.length === 1) res.splice(res.length - 1, 1);
      return setType(out, { elemType: elem(x), shape: res });
    }
    case 'Gemm': {
      const a = shapeOf(x);
      const b = shapeOf(n.inputs[1]);
      if (!a || !b) return setType(out, { elemType: elem(x), shape: undefined });
      const m = n.attrInt('transA', 0) ? a[1] : a[0];
      const k = n.attrInt('transB', 0) ? b[0] : b[1];
      return setType(out, { elemType: elem(x), shape: [m, k] });
    }
    case 'Expand': {
      const target = shapeValueOf(n.inputs[1]);
      if (!target) return setType(out, { elemType: elem(x), shape: undefined });
      return setType(out, { elemType: elem(x), shape: broadcastShapes(shapeOf(x), target.map((d) => (d === undefined ? undefined : d))) });
    }
    case 'ConstantOfShape': {
      const target = shapeValueOf(x);
      const t = n.attrTensor('value');
      setType(out, { elemType: t?.dataType ?? DataType.FLOAT, shape: target ?? undefined });
      if (target && target.length === 1 && typeof target[0] === 'number' && target[0] >= 0 && target[0] <= SMALL && t && isIntType(t.dataType ?? 0)) {
        const fill = Number(tensorToBigInt64(t)[0] ?? 0n);
        setValues(out, Array.from({ length: target[0] }, () => fill));
      }
      return;
    }
    case 'Range': {
      const [s0, l, d] = n.inputs.map((v) => shapeValueOf(v)?.[0]);
      if (typeof s0 === 'number' && typeof l === 'number' && typeof d === 'number' && d !== 0) {
        const len = Math.max(0, Math.ceil((l - s0) / d));
        setType(out, { elemType: elem(x), shape: [len] });
        if (len <= SMALL) setValues(out, Array.from({ length: len }, (_, i) => s0 + i * d));
      } else if (s0 === 0 && d === 1) {
        setType(out, { elemType: elem(x), shape: [l] });
      } else {
        setType(out, { elemType: elem(x), shape: [undefined] });
      }
      return;
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin': {
      const s = shapeOf(x);
      const axesV = n.inputs[1] ? shapeValueOf(n.inputs[1]) : n.attrInts('axes');
      const keep = n.attrInt('keepdims', 1) === 1;
      if (!s || !axesV || axesV.some((a) => typeof a !== 'number')) return setType(out, { elemType: elem(x), shape: undefined });
      const axes = new Set((axesV as number[]).map((a) => normAxis(a, s.length)));
      return setType(out, { elemType: elem(x), shape: keep ? s.map((d, i) => (axes.has(i) ? 1 : d)) : s.filter((_, i) => !axes.has(i)) });
    }
    case 'Attention':
    case 'MultiHeadAttention':
    case 'GroupQueryAttention':
      // fused attention (ONNX and com.microsoft): without types here, a contradiction after the op would
      // only surface once a rewrite replaces the op with a typed one, and convert would blame the rewrite
      if (n.domain !== '' && n.domain !== 'com.microsoft') return;
      for (const o of n.outputs) setType(o, { elemType: elem(x), shape: undefined });
      setType(out, { elemType: elem(x), shape: fusedAttentionShape(n) });
      return;
    case 'Split': {
      const s = shapeOf(x);
      if (!s) return;
      const axis = normAxis(n.attrInt('axis', 0), s.length);
      const sizes = n.inputs[1] ? shapeValueOf(n.inputs[1]) : n.attrInts('split');
      n.outputs.forEach((o, i) => {
        const whole = s[axis];
        const even = typeof whole === 'number' && whole % n.outputs.length === 0 ? whole / n.outputs.length : undefined;
        const dim = sizes ? sizes[i] : even;
        const res = [...s];
        res[axis] = dim;
        setType(o, { elemType: elem(x), shape: res });
      });
      return;
    }
    default:
      return;
  }
}
