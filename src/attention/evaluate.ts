/**
 * A small tensor interpreter over the IR, for the parts of a graph that recognition has to *prove*
 * rather than read: mask subgraphs (is it a causal triangle? a sliding window? which input pads it?)
 * and scales that an exporter computed from shapes instead of folding (`1/sqrt(Shape(q)[-1])`).
 *
 * It evaluates a value for one concrete configuration: numbers for the graph's symbolic dims and
 * values for the graph inputs it reads. Shapes of big activations are taken from shape inference
 * (with the symbols substituted) instead of computing the activations. Everything is float64 under
 * the hood; element types are tracked so Cast, integer Div and comparisons behave like ONNX.
 */
import { DataType } from '../onnx/codec.js';
import { isFloatType } from '../onnx/dtype.js';
import type { Dim, Node, Value } from '../ir/graph.js';
import { constantFloats, shapeValueOf } from '../ir/infer.js';
import { tensorDims, tensorNumel, tensorToFloat64 } from '../onnx/tensor.js';

export interface Tensor {
  shape: number[];
  data: Float64Array;
  /** ONNX element type code */
  elemType: number;
}

export class EvalError extends Error {
  constructor(
    message: string,
    readonly node: Node | undefined,
  ) {
    super(message);
  }
}

export interface EvalConfig {
  /** concrete values of symbolic dims, by symbol */
  dims: ReadonlyMap<string, number>;
  /** values of graph inputs read by value */
  inputs: ReadonlyMap<Value, Tensor>;
  /** values of further graph inputs, made when first read */
  inputFor?: (v: Value) => Tensor | undefined;
  /** refuse to build tensors larger than this (default 4M elements) */
  maxElements?: number;
  /** a value for every symbolic or unknown dim not in `dims` (used to show a result does not depend on them) */
  defaultDim?: number;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function tensor(shape: number[], data: ArrayLike<number>, elemType: number = DataType.FLOAT): Tensor {
  return { shape, data: Float64Array.from(data), elemType };
}

/** Evaluates a left-to-right symbolic dim expression as shape inference writes them ("past+seq", "batch*12"). */
export function evalDimExpr(d: Dim, dims: ReadonlyMap<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  if (d === undefined) return undefined;
  if (dims.has(d)) return dims.get(d);
  const tokens = d.split(/([+\-*/%])/).map((t) => t.trim()).filter((t) => t !== '');
  if (tokens.length < 3) return undefined;
  const atom = (t: string): number | undefined => (/^-?\d+$/.test(t) ? Number(t) : dims.get(t));
  let acc = atom(tokens[0]!);
  for (let i = 1; i + 1 < tokens.length && acc !== undefined; i += 2) {
    const rhs = atom(tokens[i + 1]!);
    if (rhs === undefined) return undefined;
    switch (tokens[i]) {
      case '+': acc += rhs; break;
      case '-': acc -= rhs; break;
      case '*': acc *= rhs; break;
      case '/': acc = Math.trunc(acc / rhs); break;
      case '%': acc %= rhs; break;
      default: return undefined;
    }
  }
  return acc;
}

const isIntLike = (t: number): boolean => !isFloatType(t) && t !== DataType.BOOL;

function castValue(x: number, to: number): number {
  if (to === DataType.BOOL) return x !== 0 && !Number.isNaN(x) ? 1 : 0;
  if (isFloatType(to)) return to === DataType.FLOAT ? Math.fround(x) : x;
  if (!Number.isFinite(x)) return x > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
  return Math.trunc(x);
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function broadcastShape(shapes: ReadonlyArray<readonly number[]>, node: Node | undefined): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const x = k >= 0 ? s[k]! : 1;
      if (x === 1) continue;
      if (d !== 1 && d !== x) throw new EvalError(`shapes [${shapes.map((q) => q.join(',')).join('] and [')}] do not broadcast`, node);
      d = x;
    }
    out.push(d);
  }
  return out;
}

/** Index maps from an output of shape `out` into each input (broadcast). */
function broadcastIndex(out: readonly number[], inp: readonly number[]): Int32Array {
  const n = numel(out);
  const idx = new Int32Array(n);
  const rank = out.length;
  const inStr = strides(inp);
  const eff = out.map((_, i) => {
    const k = inp.length - rank + i;
    return k >= 0 && inp[k]! !== 1 ? inStr[k]! : 0;
  });
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]!++;
      off += eff[a]!;
      if (counter[a]! < out[a]!) break;
      off -= eff[a]! * counter[a]!;
      counter[a] = 0;
    }
  }
  return idx;
}

function elementwise(ins: Tensor[], fn: (xs: number[]) => number, elemType: number, node: Node | undefined, limit: number): Tensor {
  const shape = broadcastShape(ins.map((t) => t.shape), node);
  const n = numel(shape);
  if (n > limit) throw new EvalError(`tensor of ${n} elements is too large to evaluate`, node);
  const maps = ins.map((t) => (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]) ? undefined : broadcastIndex(shape, t.shape)));
  const out = new Float64Array(n);
  const xs = new Array<number>(ins.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < ins.length; k++) xs[k] = ins[k]!.data[maps[k] ? maps[k]![i]! : i]!;
    out[i] = fn(xs);
  }
  return { shape, data: out, elemType };
}

export function transposeTensor(t: Tensor, perm: number[]): Tensor {
  const shape = perm.map((p) => t.shape[p]!);
  const inStr = strides(t.shape);
  const n = numel(shape);
  const out = new Float64Array(n);
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  const eff = perm.map((p) => inStr[p]!);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = t.data[off]!;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]!++;
      off += eff[a]!;
      if (counter[a]! < shape[a]!) break;
      off -= eff[a]! * counter[a]!;
      counter[a] = 0;
    }
  }
  return { shape, data: out, elemType: t.elemType };
}

/** The non-negative form of axis `a`; out of [-rank, rank) it throws (a huge axis would make a huge sparse shape array). */
function normAxis(a: number, rank: number): number {
  if (!Number.isInteger(a) || a < -rank || a >= rank) throw new EvalError(`axis ${a} is out of range for rank ${rank}`, undefined);
  return a < 0 ? a + rank : a;
}

/** Flatten's axis may also be `rank` (everything in the first dimension). */
const flattenAxis = (a: number, rank: number): number => (a === rank ? rank : normAxis(a, rank));

export class Evaluator {
  private readonly memo = new Map<Value, Tensor>();
  private readonly limit: number;
  /** nodes evaluated (work done), for budgets */
  steps = 0;

  constructor(readonly config: EvalConfig) {
    this.limit = config.maxElements ?? 4_000_000;
  }

  private readonly shapeMemo = new Map<Value, number[] | null>();

  /**
   * The concrete shape of `v` under this configuration: shape rules per op (so activations are never
   * computed), falling back to inference's shape with the symbols substituted, and to evaluating the
   * value only when it is small integer data (shape computations). Throws when it cannot tell.
   */
  shapeOf(v: Value): number[] {
    const s = this.tryShape(v);
    if (!s) throw new EvalError(`the shape of ${v} is not known`, v.producer);
    return s;
  }

  tryShape(v: Value): number[] | undefined {
    const known = this.memo.get(v);
    if (known) return known.shape;
    const input = this.config.inputs.get(v);
    if (input) return input.shape;
    const cached = this.shapeMemo.get(v);
    if (cached !== undefined) return cached ?? undefined;
    this.shapeMemo.set(v, null); // cycle guard
    let out: number[] | undefined;
    try {
      out = this.computeShape(v);
    } catch {
      out = undefined;
    }
    this.shapeMemo.set(v, out ?? null);
    return out;
  }

  private computeShape(v: Value): number[] | undefined {
    if (v.initializer) return tensorDims(v.initializer);
    const typed = (): number[] | undefined => {
      const s = v.type?.shape;
      if (!s) return undefined;
      const dflt = this.config.defaultDim;
      const dims = s.map((d) => evalDimExpr(d, this.config.dims) ?? dflt);
      return dims.every((d): d is number => d !== undefined) ? dims : undefined;
    };
    if (v.isGraphInput || !v.producer) return typed();
    const derived = shapeRule(this, v);
    if (derived) return derived;
    const t = typed();
    if (t) return t;
    const et = v.type?.elemType ?? 0;
    if (!isFloatType(et) || v.isConstant) return this.eval(v).shape;
    return undefined;
  }

  eval(v: Value): Tensor {
    const known = this.memo.get(v);
    if (known) return known;
    const input = this.config.inputs.get(v) ?? (v.isGraphInput ? this.config.inputFor?.(v) : undefined);
    if (input) {
      this.memo.set(v, input);
      return input;
    }
    let t: Tensor;
    if (v.initializer) {
      const init = v.initializer;
      if (tensorNumel(init) > this.limit) throw new EvalError(`initializer ${v} is too large to evaluate`, undefined);
      t = { shape: tensorDims(init), data: tensorToFloat64(init), elemType: init.dataType ?? DataType.FLOAT };
    } else if (v.isGraphInput) {
      throw new EvalError(`graph input ${v} has no value in this configuration`, undefined);
    } else {
      const n = v.producer;
      if (!n) throw new EvalError(`${v} has no producer`, undefined);
      this.steps++;
      const outs = this.evalNode(n);
      n.outputs.forEach((o, i) => {
        if (o && outs[i]) this.memo.set(o, outs[i]!);
      });
      const mine = outs[v.producerIndex];
      if (!mine) throw new EvalError(`${n.describe()} output ${v.producerIndex} is not computed`, n);
      t = mine;
    }
    if (numel(t.shape) > this.limit) throw new EvalError(`${v} is too large to evaluate`, v.producer);
    this.memo.set(v, t);
    return t;
  }

  ints(v: Value | undefined, n: Node): number[] {
    if (!v) throw new EvalError(`${n.describe()} misses an input`, n);
    return [...this.eval(v).data];
  }

  private evalNode(n: Node): Tensor[] {
    if (n.domain !== '') throw new EvalError(`cannot evaluate ${n.describe()}`, n);
    const lim = this.limit;
    const x = (i: number): Tensor => {
      const iv = n.inputs[i];
      if (!iv) throw new EvalError(`${n.describe()} misses input ${i}`, n);
      return this.eval(iv);
    };
    const f = (fn: (a: number) => number) => [elementwise([x(0)], (xs) => fn(xs[0]!), x(0).elemType, n, lim)];
    const cmp = (fn: (a: number, b: number) => boolean) => [elementwise([x(0), x(1)], (xs) => (fn(xs[0]!, xs[1]!) ? 1 : 0), DataType.BOOL, n, lim)];
    switch (n.opType) {
      case 'Constant': {
        const tp = n.attrTensor('value');
        if (tp) return [{ shape: tensorDims(tp), data: tensorToFloat64(tp), elemType: tp.dataType ?? DataType.FLOAT }];
        const vals = constantFloats(n.outputs[0]);
        if (!vals) throw new EvalError(`cannot read ${n.describe()}`, n);
        const isInt = n.attrInt('value_int') !== undefined || n.attrInts('value_ints') !== undefined;
        const scalarAttr = n.attrInt('value_int') !== undefined || n.attrFloat('value_float') !== undefined;
        return [{ shape: scalarAttr ? [] : [vals.length], data: Float64Array.from(vals), elemType: isInt ? DataType.INT64 : DataType.FLOAT }];
      }
      case 'Identity':
      case 'Dropout':
        return [x(0), ...(n.outputs.length > 1 ? [{ shape: x(0).shape, data: new Float64Array(numel(x(0).shape)).fill(1), elemType: DataType.BOOL }] : [])];
      case 'Cast': {
        const to = n.attrInt('to', DataType.FLOAT);
        return [elementwise([x(0)], (xs) => castValue(xs[0]!, to), to, n, lim)];
      }
      case 'CastLike': {
        const to = this.eval(n.input(1)).elemType;
        return [elementwise([x(0)], (xs) => castValue(xs[0]!, to), to, n, lim)];
      }
      case 'Shape': {
        const s = this.shapeOf(n.input(0));
        const r = s.length;
        const clamp = (a: number) => Math.max(0, Math.min(r, a < 0 ? a + r : a));
        const start = clamp(n.attrInt('start', 0));
        const end = clamp(n.attrInt('end', r));
        const vals = s.slice(start, Math.max(start, end));
        return [{ shape: [vals.length], data: Float64Array.from(vals), elemType: DataType.INT64 }];
      }
      case 'Size':
        return [{ shape: [], data: Float64Array.of(numel(this.shapeOf(n.input(0)))), elemType: DataType.INT64 }];
      case 'Gather': {
        const data = x(0);
        const idx = x(1);
        const axis = normAxis(n.attrInt('axis', 0), data.shape.length);
        const outer = numel(data.shape.slice(0, axis));
        const dim = data.shape[axis]!;
        const inner = numel(data.shape.slice(axis + 1));
        const shape = [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
        if (numel(shape) > lim) throw new EvalError('gather result too large', n);
        const out = new Float64Array(numel(shape));
        const ni = idx.data.length;
        let o = 0;
        for (let a = 0; a < outer; a++) {
          for (let k = 0; k < ni; k++) {
            let j = idx.data[k]!;
            if (j < 0) j += dim;
            if (j < 0 || j >= dim) throw new EvalError(`gather index ${idx.data[k]} out of range [0, ${dim})`, n);
            const base = (a * dim + j) * inner;
            for (let c = 0; c < inner; c++) out[o++] = data.data[base + c]!;
          }
        }
        return [{ shape, data: out, elemType: data.elemType }];
      }
      case 'GatherND': {
        const data = x(0);
        const idx = x(1);
        const bd = n.attrInt('batch_dims', 0);
        const last = idx.shape[idx.shape.length - 1]!;
        const batchShape = data.shape.slice(0, bd);
        const nBatch = numel(batchShape);
        const sliceShape = data.shape.slice(bd + last);
        const sliceN = numel(sliceShape);
        const outShape = [...idx.shape.slice(0, -1), ...sliceShape];
        if (numel(outShape) > lim) throw new EvalError('gathernd result too large', n);
        const out = new Float64Array(numel(outShape));
        const tuplesPerBatch = numel(idx.shape.slice(bd, -1));
        const dStr = strides(data.shape);
        const perBatchData = numel(data.shape.slice(bd));
        let o = 0;
        for (let b0 = 0; b0 < nBatch; b0++) {
          for (let t = 0; t < tuplesPerBatch; t++) {
            let off = b0 * perBatchData;
            for (let k = 0; k < last; k++) {
              let j = idx.data[(b0 * tuplesPerBatch + t) * last + k]!;
              const dim = data.shape[bd + k]!;
              if (j < 0) j += dim;
              if (j < 0 || j >= dim) throw new EvalError('gathernd index out of range', n);
              off += j * dStr[bd + k]!;
            }
            for (let c = 0; c < sliceN; c++) out[o++] = data.data[off + c]!;
          }
        }
        return [{ shape: outShape, data: out, elemType: data.elemType }];
      }
      case 'Unsqueeze': {
        const t = x(0);
        const axes = n.inputs[1] ? this.ints(n.inputs[1], n) : (n.attrInts('axes') ?? []);
        const rank = t.shape.length + axes.length;
        const set = new Set(axes.map((a) => normAxis(a, rank)));
        const shape: number[] = [];
        let k = 0;
        for (let i = 0; i < rank; i++) shape.push(set.has(i) ? 1 : t.shape[k++]!);
        return [{ ...t, shape }];
      }
      case 'Squeeze': {
        const t = x(0);
        const axes = n.inputs[1] ? this.ints(n.inputs[1], n) : n.attrInts('axes');
        const set = new Set((axes ?? t.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, t.shape.length)));
        return [{ ...t, shape: t.shape.filter((_, i) => !set.has(i)) }];
      }
      case 'Flatten': {
        const t = x(0);
        const a = flattenAxis(n.attrInt('axis', 1), t.shape.length);
        return [{ ...t, shape: [numel(t.shape.slice(0, a)), numel(t.shape.slice(a))] }];
      }
      case 'Reshape': {
        const t = x(0);
        const target = this.ints(n.inputs[1], n);
        const allowZero = n.attrInt('allowzero', 0) === 1;
        const shape = target.map((d, i) => (d === 0 && !allowZero ? t.shape[i]! : d));
        const minus = shape.indexOf(-1);
        if (minus >= 0) {
          const rest = numel(shape.filter((_, i) => i !== minus));
          shape[minus] = rest === 0 ? 0 : numel(t.shape) / rest;
        }
        if (numel(shape) !== numel(t.shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw new EvalError(`cannot reshape [${t.shape}] to [${target}]`, n);
        return [{ ...t, shape }];
      }
      case 'Expand': {
        const t = x(0);
        const target = this.ints(n.inputs[1], n);
        const shape = broadcastShape([t.shape, target], n);
        return [expandTo(t, shape, n, lim)];
      }
      case 'Tile': {
        const t = x(0);
        const reps = this.ints(n.inputs[1], n);
        let cur = t;
        for (let a = 0; a < reps.length; a++) if (reps[a]! !== 1) cur = concat(Array.from({ length: reps[a]! }, () => cur), a, n, lim);
        return [cur];
      }
      case 'Concat': {
        const ins = n.inputs.filter((v): v is Value => !!v).map((v) => this.eval(v));
        const rank = Math.max(...ins.map((t) => t.shape.length));
        return [concat(ins, normAxis(n.attrInt('axis', 0), rank), n, lim)];
      }
      case 'Split': {
        const t = x(0);
        const axis = normAxis(n.attrInt('axis', 0), t.shape.length);
        const count = n.outputs.length;
        const sizes = n.inputs[1] ? this.ints(n.inputs[1], n) : (n.attrInts('split') ?? Array.from({ length: count }, () => Math.ceil(t.shape[axis]! / count)));
        let start = 0;
        return sizes.map((sz) => {
          const r = slice(t, [start], [start + sz], [axis], [1], n);
          start += sz;
          return r;
        });
      }
      case 'Slice': {
        const t = x(0);
        const starts = n.inputs[1] ? this.ints(n.inputs[1], n) : (n.attrInts('starts') ?? []);
        const ends = n.inputs[2] ? this.ints(n.inputs[2], n) : (n.attrInts('ends') ?? []);
        const axes = n.inputs[3] ? this.ints(n.inputs[3], n) : (n.attrInts('axes') ?? starts.map((_, i) => i));
        const steps = n.inputs[4] ? this.ints(n.inputs[4], n) : starts.map(() => 1);
        return [slice(t, starts, ends, axes.map((a) => normAxis(a, t.shape.length)), steps, n)];
      }
      case 'Transpose': {
        const t = x(0);
        return [transposeTensor(t, n.attrInts('perm') ?? t.shape.map((_, i) => t.shape.length - 1 - i))];
      }
      case 'Range': {
        const [s, l, d] = [x(0).data[0]!, x(1).data[0]!, x(2).data[0]!];
        const len = Math.max(0, Math.ceil((l - s) / d));
        if (len > lim) throw new EvalError('range too long', n);
        return [{ shape: [len], data: Float64Array.from({ length: len }, (_, i) => s + i * d), elemType: x(0).elemType }];
      }
      case 'ConstantOfShape': {
        const shape = this.ints(n.inputs[0], n);
        const tp = n.attrTensor('value');
        const fill = tp ? tensorToFloat64(tp)[0]! : 0;
        if (numel(shape) > lim) throw new EvalError('constant too large', n);
        return [{ shape, data: new Float64Array(numel(shape)).fill(fill), elemType: tp?.dataType ?? DataType.FLOAT }];
      }
      case 'Trilu': {
        const t = x(0);
        const k = n.inputs[1] ? this.ints(n.inputs[1], n)[0]! : 0;
        const upper = n.attrInt('upper', 1) === 1;
        const [r, c] = t.shape.slice(-2) as [number, number];
        const out = Float64Array.from(t.data);
        for (let base = 0; base < out.length; base += r * c) {
          for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) {
            const keep = upper ? j - i >= k : j - i <= k;
            if (!keep) out[base + i * c + j] = 0;
          }
        }
        return [{ ...t, data: out }];
      }
      case 'CumSum': {
        const t = x(0);
        const axis = normAxis(this.ints(n.inputs[1], n)[0]!, t.shape.length);
        const exclusive = n.attrInt('exclusive', 0) === 1;
        const reverse = n.attrInt('reverse', 0) === 1;
        const st = strides(t.shape);
        const out = new Float64Array(t.data.length);
        const len = t.shape[axis]!;
        for (let i = 0; i < t.data.length; i++) {
          const pos = Math.floor(i / st[axis]!) % len;
          if (pos !== 0) continue;
          let acc = 0;
          for (let k = 0; k < len; k++) {
            const kk = reverse ? len - 1 - k : k;
            const at = i + kk * st[axis]!;
            if (exclusive) {
              out[at] = acc;
              acc += t.data[at]!;
            } else {
              acc += t.data[at]!;
              out[at] = acc;
            }
          }
        }
        return [{ ...t, data: out }];
      }
      case 'Where': {
        const c = x(0);
        const a = x(1);
        const b = x(2);
        return [elementwise([c, a, b], (xs) => (xs[0] ? xs[1]! : xs[2]!), a.elemType, n, lim)];
      }
      case 'Not':
        return [elementwise([x(0)], (xs) => (xs[0] ? 0 : 1), DataType.BOOL, n, lim)];
      case 'And': return cmp((a, b) => !!a && !!b);
      case 'Or': return cmp((a, b) => !!a || !!b);
      case 'Xor': return cmp((a, b) => !!a !== !!b);
      case 'Equal': return cmp((a, b) => a === b);
      case 'Less': return cmp((a, b) => a < b);
      case 'LessOrEqual': return cmp((a, b) => a <= b);
      case 'Greater': return cmp((a, b) => a > b);
      case 'GreaterOrEqual': return cmp((a, b) => a >= b);
      case 'IsNaN': return [elementwise([x(0)], (xs) => (Number.isNaN(xs[0]) ? 1 : 0), DataType.BOOL, n, lim)];
      case 'IsInf': {
        const pos = n.attrInt('detect_positive', 1) === 1;
        const neg = n.attrInt('detect_negative', 1) === 1;
        return [elementwise([x(0)], (xs) => ((pos && xs[0] === Infinity) || (neg && xs[0] === -Infinity) ? 1 : 0), DataType.BOOL, n, lim)];
      }
      case 'BitwiseAnd': return [elementwise([x(0), x(1)], (xs) => xs[0]! & xs[1]!, x(0).elemType, n, lim)];
      case 'BitwiseOr': return [elementwise([x(0), x(1)], (xs) => xs[0]! | xs[1]!, x(0).elemType, n, lim)];
      case 'BitwiseNot': return f((a) => ~a);
      case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Mod': case 'Pow': {
        const a = x(0);
        const b = x(1);
        const et = a.elemType;
        const intOp = isIntLike(et);
        const f32 = et === DataType.FLOAT;
        const fn = {
          Add: (p: number, q: number) => p + q,
          Sub: (p: number, q: number) => p - q,
          Mul: (p: number, q: number) => p * q,
          Div: (p: number, q: number) => (intOp ? Math.trunc(p / q) : p / q),
          Mod: (p: number, q: number) => (n.attrInt('fmod', 0) ? p % q : p - Math.floor(p / q) * q),
          Pow: Math.pow,
        }[n.opType as 'Add'];
        return [elementwise([a, b], (xs) => (f32 ? Math.fround(fn(xs[0]!, xs[1]!)) : fn(xs[0]!, xs[1]!)), et, n, lim)];
      }
      case 'Sum': case 'Max': case 'Min': case 'Mean': {
        const ins = n.inputs.filter((v): v is Value => !!v).map((v) => this.eval(v));
        const fn = {
          Sum: (xs: number[]) => xs.reduce((p, q) => p + q, 0),
          Max: (xs: number[]) => Math.max(...xs),
          Min: (xs: number[]) => Math.min(...xs),
          Mean: (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length,
        }[n.opType as 'Sum'];
        return [elementwise(ins, fn, ins[0]!.elemType, n, lim)];
      }
      case 'Clip': {
        const lo = n.inputs[1] ? x(1).data[0]! : (n.attrFloat('min') ?? -Infinity);
        const hi = n.inputs[2] ? x(2).data[0]! : (n.attrFloat('max') ?? Infinity);
        return f((a) => Math.min(hi, Math.max(lo, a)));
      }
      case 'Neg': return f((a) => -a);
      case 'Abs': return f(Math.abs);
      case 'Sign': return f(Math.sign);
      case 'Sqrt': return f(Math.sqrt);
      case 'Reciprocal': return f((a) => 1 / a);
      case 'Exp': return f(Math.exp);
      case 'Log': return f(Math.log);
      case 'Floor': return f(Math.floor);
      case 'Ceil': return f(Math.ceil);
      case 'Round': return f((a) => {
        const r = Math.round(a);
        return Math.abs(a % 1) === 0.5 ? 2 * Math.round(a / 2) : r;
      });
      case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'ReduceMean': case 'ReduceProd': {
        const t = x(0);
        const axesIn = n.inputs[1] ? this.ints(n.inputs[1], n) : n.attrInts('axes');
        const noop = n.attrInt('noop_with_empty_axes', 0) === 1;
        if ((!axesIn || axesIn.length === 0) && noop) return [t];
        const axes = new Set((axesIn && axesIn.length ? axesIn : t.shape.map((_, i) => i)).map((a) => normAxis(a, t.shape.length)));
        const keep = n.attrInt('keepdims', 1) === 1;
        return [reduce(t, axes, keep, n.opType)];
      }
      case 'MatMul': {
        const a = x(0);
        const b = x(1);
        return [matmul(a, b, n, lim)];
      }
      default:
        throw new EvalError(`cannot evaluate ${n.describe()}`, n);
    }
  }
}

function expandTo(t: Tensor, shape: number[], n: Node, lim: number): Tensor {
  if (numel(shape) > lim) throw new EvalError('expand result too large', n);
  const idx = broadcastIndex(shape, t.shape);
  const out = new Float64Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = t.data[idx[i]!]!;
  return { shape, data: out, elemType: t.elemType };
}

function concat(ins: Tensor[], axis: number, n: Node, lim: number): Tensor {
  const base = ins[0]!.shape;
  const shape = [...base];
  shape[axis] = ins.reduce((acc, t) => acc + (t.shape[axis] ?? 0), 0);
  if (numel(shape) > lim) throw new EvalError('concat result too large', n);
  const outer = numel(base.slice(0, axis));
  const out = new Float64Array(numel(shape));
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const t of ins) {
      const chunk = numel(t.shape.slice(axis));
      out.set(t.data.subarray(a * chunk, (a + 1) * chunk), o);
      o += chunk;
    }
  }
  return { shape, data: out, elemType: ins[0]!.elemType };
}

function slice(t: Tensor, starts: number[], ends: number[], axes: number[], steps: number[], n: Node): Tensor {
  const rank = t.shape.length;
  const st = new Array<number>(rank).fill(0);
  const sp = new Array<number>(rank).fill(1);
  const shape = [...t.shape];
  axes.forEach((a, k) => {
    const dim = t.shape[a]!;
    const step = steps[k] ?? 1;
    if (step === 0) throw new EvalError('slice step 0', n);
    let s = starts[k]!;
    let e = ends[k]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.max(0, Math.min(dim, s));
      e = Math.max(0, Math.min(dim, e));
    } else {
      s = Math.max(-1, Math.min(dim - 1, s));
      e = Math.max(-1, Math.min(dim - 1, e));
    }
    st[a] = s;
    sp[a] = step;
    shape[a] = Math.max(0, Math.ceil((e - s) / step));
  });
  const inStr = strides(t.shape);
  const len = numel(shape);
  const out = new Float64Array(len);
  const counter = new Array<number>(rank).fill(0);
  for (let i = 0; i < len; i++) {
    let off = 0;
    for (let a = 0; a < rank; a++) off += (st[a]! + counter[a]! * sp[a]!) * inStr[a]!;
    out[i] = t.data[off]!;
    for (let a = rank - 1; a >= 0; a--) {
      counter[a]!++;
      if (counter[a]! < shape[a]!) break;
      counter[a] = 0;
    }
  }
  return { shape, data: out, elemType: t.elemType };
}

function reduce(t: Tensor, axes: Set<number>, keep: boolean, op: string): Tensor {
  const outShapeKeep = t.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const outN = numel(outShapeKeep);
  const init = op === 'ReduceMax' ? -Infinity : op === 'ReduceMin' ? Infinity : op === 'ReduceProd' ? 1 : 0;
  const out = new Float64Array(outN).fill(init);
  const count = new Float64Array(outN);
  const map = broadcastIndex(t.shape, outShapeKeep);
  for (let i = 0; i < t.data.length; i++) {
    const o = map[i]!;
    const xv = t.data[i]!;
    if (op === 'ReduceMax') out[o] = Math.max(out[o]!, xv);
    else if (op === 'ReduceMin') out[o] = Math.min(out[o]!, xv);
    else if (op === 'ReduceProd') out[o] = out[o]! * xv;
    else out[o] = out[o]! + xv;
    count[o]!++;
  }
  if (op === 'ReduceMean') for (let i = 0; i < outN; i++) out[i] = out[i]! / count[i]!;
  return { shape: keep ? outShapeKeep : t.shape.filter((_, i) => !axes.has(i)), data: out, elemType: t.elemType };
}

function matmul(a: Tensor, b: Tensor, n: Node, lim: number): Tensor {
  if (a.shape.length < 2 || b.shape.length < 2) throw new EvalError('matmul of vectors is not evaluated', n);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [k2, p] = b.shape.slice(-2) as [number, number];
  if (k !== k2) throw new EvalError('matmul inner dims differ', n);
  const batch = broadcastShape([a.shape.slice(0, -2), b.shape.slice(0, -2)], n);
  const shape = [...batch, m, p];
  if (numel(shape) > lim || numel(batch) * m * k * p > lim * 64) throw new EvalError('matmul too large', n);
  const ia = broadcastIndex(batch, a.shape.slice(0, -2));
  const ib = broadcastIndex(batch, b.shape.slice(0, -2));
  const out = new Float64Array(numel(shape));
  const nb = numel(batch);
  for (let q = 0; q < nb; q++) {
    const oa = ia[q]! * m * k;
    const ob = ib[q]! * k * p;
    for (let i = 0; i < m; i++) for (let j = 0; j < p; j++) {
      let acc = 0;
      for (let r = 0; r < k; r++) acc += a.data[oa + i * k + r]! * b.data[ob + r * p + j]!;
      out[q * m * p + i * p + j] = acc;
    }
  }
  return { shape, data: out, elemType: a.elemType };
}

/** The value of a scalar-like value computed from constants and static shapes (scales), if it is one. */
export function staticScalar(v: Value): number | undefined {
  const c = constantFloats(v);
  if (c && c.length > 0 && c.every((x) => x === c[0] || Object.is(x, c[0]))) return c[0];
  if (!staticCone(v, { budget: 48 })) return undefined;
  // evaluated twice with different stand-ins for symbolic dims: a scale must not depend on them
  const results = [7, 11].map((defaultDim) => {
    try {
      const t = new Evaluator({ dims: new Map(), inputs: new Map(), maxElements: 65536, defaultDim }).eval(v);
      if (t.data.length === 0) return undefined;
      const first = t.data[0]!;
      return t.data.every((x) => x === first) ? first : undefined;
    } catch {
      return undefined;
    }
  });
  return results[0] !== undefined && results[0] === results[1] ? results[0] : undefined;
}

/** True when `v` can be computed from constants and static shapes alone. */
export function isStatic(v: Value): boolean {
  if (v.isConstant || shapeValueOf(v)?.every((d) => typeof d === 'number')) return true;
  return staticScalar(v) !== undefined;
}

/** Whether `v` depends only on constants and on shapes that inference knows as numbers (cheap, bounded). */
function staticCone(v: Value, state: { budget: number }, seen = new Set<Value>()): boolean {
  if (seen.has(v)) return true;
  seen.add(v);
  if (v.initializer) return true;
  if (v.isGraphInput) return false;
  const n = v.producer;
  if (!n || --state.budget < 0) return false;
  if (n.opType === 'Constant') return true;
  if (n.opType === 'Shape' || n.opType === 'Size') return n.inputs[0]?.type?.shape !== undefined;
  return n.inputs.every((x) => !x || staticCone(x, state, seen));
}

/** Numpy broadcasting, lenient: where sizes disagree the first non-1 wins (shapes only, never data). */
function looseBroadcast(shapes: Array<number[] | undefined>): number[] | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const rank = Math.max(0, ...shapes.map((s) => s!.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s!.length - rank + i;
      const x = k >= 0 ? s![k]! : 1;
      if (x !== 1 && d === 1) d = x;
    }
    out.push(d);
  }
  return out;
}

const SAME_AS_INPUT0 = new Set([
  'Identity', 'Cast', 'CastLike', 'Neg', 'Sqrt', 'Exp', 'Log', 'Tanh', 'Erf', 'Relu', 'Sigmoid', 'Softmax', 'LogSoftmax', 'Abs', 'Sin', 'Cos',
  'Floor', 'Ceil', 'Round', 'Reciprocal', 'Not', 'IsNaN', 'IsInf', 'Sign', 'Trilu', 'CumSum', 'Clip', 'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu',
  'LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RotaryEmbedding', 'HardSigmoid', 'HardSwish', 'Softplus', 'Selu', 'Elu', 'LeakyRelu', 'Mish', 'BitwiseNot', 'GroupNormalization', 'BiasAdd',
]);

/** Output shapes per op, from input shapes and small integer inputs; undefined when the op has no rule here. */
function shapeRule(ev: Evaluator, v: Value): number[] | undefined {
  const n = v.producer!;
  const idx = v.producerIndex;
  const ins = n.inputs;
  const sh = (i: number): number[] | undefined => (ins[i] ? ev.tryShape(ins[i]!) : undefined);
  const ints = (i: number): number[] => ev.ints(ins[i], n);
  const op = n.opType;
  if (n.domain === 'com.microsoft') {
    const x = sh(0);
    if (!x) return undefined;
    if (SAME_AS_INPUT0.has(op)) return idx === 0 ? x : undefined;
    if (op === 'MatMulNBits') return [...x.slice(0, -1), n.attrInt('N', 0)];
    if (op === 'FusedMatMul') return matmulShape(sh(0), sh(1), n.attrInt('transA', 0) === 1, n.attrInt('transB', 0) === 1);
    if (op === 'Attention' && idx === 0) {
      const sizes = n.attrInts('qkv_hidden_sizes');
      const w = sh(1);
      return [x[0]!, x[1]!, sizes ? sizes[2]! : w ? w[1]! / 3 : x[2]!];
    }
    if (op === 'MultiHeadAttention' && idx === 0) {
      const heads = n.attrInt('num_heads', 1);
      if (x.length === 5) return [x[0]!, x[1]!, x[2]! * x[4]!];
      const vv = sh(2);
      const k = sh(1);
      const vh = vv ? (vv.length === 4 ? vv[1]! * vv[3]! : vv[2]!) : k && k.length === 5 ? heads * k[4]! : x[2]!;
      return [x[0]!, x[1]!, vh];
    }
    if (op === 'GroupQueryAttention' && idx === 0) {
      const heads = n.attrInt('num_heads', 1);
      const kv = n.attrInt('kv_num_heads', 1);
      const hidden = ins[1] ? x[2]! : (x[2]! / (heads + 2 * kv)) * heads;
      return [x[0]!, x[1]!, hidden];
    }
    if ((op === 'GroupQueryAttention' || op === 'MultiHeadAttention') && (idx === 1 || idx === 2)) {
      const past = sh(op === 'GroupQueryAttention' ? 3 : 6);
      const heads = n.attrInt(op === 'GroupQueryAttention' ? 'kv_num_heads' : 'num_heads', 1);
      const k = ins[1] ? sh(1) : x;
      if (!k) return undefined;
      const d = op === 'GroupQueryAttention' ? (ins[1] ? k[2]! / heads : x[2]! / (n.attrInt('num_heads', 1) + 2 * heads)) : k.length === 4 ? k[3]! : k[2]! / heads;
      const newLen = k.length === 4 ? k[2]! : k[1]!;
      return [x[0]!, heads, (past ? past[2]! : 0) + newLen, d];
    }
    return undefined;
  }
  if (n.domain !== '') return undefined;
  if (SAME_AS_INPUT0.has(op)) return idx === 0 ? sh(0) : undefined;
  switch (op) {
    case 'Dropout':
      return sh(0);
    case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow': case 'Mod': case 'Where': case 'Max': case 'Min': case 'Sum': case 'Mean':
    case 'Equal': case 'Less': case 'LessOrEqual': case 'Greater': case 'GreaterOrEqual': case 'And': case 'Or': case 'Xor': case 'BitwiseAnd': case 'BitwiseOr':
      return looseBroadcast(ins.filter((x): x is Value => !!x).map((x) => ev.tryShape(x)));
    case 'MatMul':
      return matmulShape(sh(0), sh(1), false, false);
    case 'Gemm': {
      const a = sh(0);
      const b = sh(1);
      if (!a || !b) return undefined;
      return [n.attrInt('transA', 0) ? a[1]! : a[0]!, n.attrInt('transB', 0) ? b[0]! : b[1]!];
    }
    case 'Transpose': {
      const s = sh(0);
      if (!s) return undefined;
      const perm = n.attrInts('perm') ?? s.map((_, i) => s.length - 1 - i);
      return perm.map((p) => s[p]!);
    }
    case 'Reshape': {
      const s = sh(0);
      if (!s) return undefined;
      const target = ints(1);
      const allowZero = n.attrInt('allowzero', 0) === 1;
      const out = target.map((d, i) => (d === 0 && !allowZero ? s[i]! : d));
      const minus = out.indexOf(-1);
      if (minus >= 0) {
        const rest = out.reduce((a, d, i) => (i === minus ? a : a * d), 1);
        out[minus] = rest === 0 ? 0 : numel(s) / rest;
      }
      return out.every((d) => Number.isInteger(d) && d >= 0) ? out : undefined;
    }
    case 'Flatten': {
      const s = sh(0);
      if (!s) return undefined;
      const a = flattenAxis(n.attrInt('axis', 1), s.length);
      return [numel(s.slice(0, a)), numel(s.slice(a))];
    }
    case 'Unsqueeze': {
      const s = sh(0);
      if (!s) return undefined;
      const axes = ins[1] ? ints(1) : (n.attrInts('axes') ?? []);
      const rank = s.length + axes.length;
      const set = new Set(axes.map((a) => normAxis(a, rank)));
      const out: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : s[k++]!);
      return out;
    }
    case 'Squeeze': {
      const s = sh(0);
      if (!s) return undefined;
      const axes = ins[1] ? ints(1) : n.attrInts('axes');
      const set = new Set((axes ?? s.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, s.length)));
      return s.filter((_, i) => !set.has(i));
    }
    case 'Concat': {
      const shapes = ins.filter((x): x is Value => !!x).map((x) => ev.tryShape(x));
      if (shapes.some((x) => !x)) return undefined;
      const rank = shapes[0]!.length;
      const a = normAxis(n.attrInt('axis', 0), rank);
      const out = [...shapes[0]!];
      out[a] = shapes.reduce((acc, x) => acc + x![a]!, 0);
      return out;
    }
    case 'Split': {
      const s = sh(0);
      if (!s) return undefined;
      const a = normAxis(n.attrInt('axis', 0), s.length);
      const count = n.outputs.length;
      const sizes = ins[1] ? ints(1) : (n.attrInts('split') ?? Array.from({ length: count }, () => Math.ceil(s[a]! / count)));
      const out = [...s];
      out[a] = sizes[idx]!;
      return out;
    }
    case 'Slice': {
      const s = sh(0);
      if (!s) return undefined;
      const starts = ins[1] ? ints(1) : (n.attrInts('starts') ?? []);
      const ends = ins[2] ? ints(2) : (n.attrInts('ends') ?? []);
      const axes = ins[3] ? ints(3) : (n.attrInts('axes') ?? starts.map((_, i) => i));
      const steps = ins[4] ? ints(4) : starts.map(() => 1);
      const out = [...s];
      axes.forEach((ax, k) => {
        const a = normAxis(ax, s.length);
        const dim = s[a]!;
        const step = steps[k] ?? 1;
        let st = starts[k]!;
        let en = ends[k]!;
        if (st < 0) st += dim;
        if (en < 0) en += dim;
        if (step > 0) {
          st = Math.max(0, Math.min(dim, st));
          en = Math.max(0, Math.min(dim, en));
        } else {
          st = Math.max(-1, Math.min(dim - 1, st));
          en = Math.max(-1, Math.min(dim - 1, en));
        }
        out[a] = Math.max(0, Math.ceil((en - st) / step));
      });
      return out;
    }
    case 'Expand':
      return looseBroadcast([sh(0), ints(1)]);
    case 'Tile': {
      const s = sh(0);
      if (!s) return undefined;
      const reps = ints(1);
      return s.map((d, i) => d * (reps[i] ?? 1));
    }
    case 'Gather': {
      const d = sh(0);
      const i = sh(1);
      if (!d || !i) return undefined;
      const a = normAxis(n.attrInt('axis', 0), d.length);
      return [...d.slice(0, a), ...i, ...d.slice(a + 1)];
    }
    case 'GatherElements':
      return sh(1);
    case 'GatherND': {
      const d = sh(0);
      const i = sh(1);
      if (!d || !i) return undefined;
      const bd = n.attrInt('batch_dims', 0);
      const last = i[i.length - 1]!;
      return [...i.slice(0, -1), ...d.slice(bd + last)];
    }
    case 'ScatterND': case 'ScatterElements':
      return sh(0);
    case 'Shape': {
      const s = sh(0);
      if (!s) return undefined;
      const r = s.length;
      const clamp = (a: number) => Math.max(0, Math.min(r, a < 0 ? a + r : a));
      return [Math.max(0, clamp(n.attrInt('end', r)) - clamp(n.attrInt('start', 0)))];
    }
    case 'Size':
      return [];
    case 'ConstantOfShape':
      return ints(0);
    case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'ReduceMean': case 'ReduceProd': case 'ReduceL2': case 'ArgMax': case 'ArgMin': {
      const s = sh(0);
      if (!s) return undefined;
      const axesIn = op.startsWith('Arg') ? [n.attrInt('axis', 0)] : ins[1] ? ints(1) : n.attrInts('axes');
      const keep = n.attrInt('keepdims', 1) === 1;
      if (!axesIn || axesIn.length === 0) return n.attrInt('noop_with_empty_axes', 0) ? s : keep ? s.map(() => 1) : [];
      const set = new Set(axesIn.map((a) => normAxis(a, s.length)));
      return keep ? s.map((d, i) => (set.has(i) ? 1 : d)) : s.filter((_, i) => !set.has(i));
    }
    case 'Attention': {
      const q = sh(0);
      const k = sh(1);
      const vv = sh(2);
      if (!q || !k || !vv) return undefined;
      const past = sh(4);
      if (idx === 0) {
        if (q.length === 4) return [q[0]!, q[1]!, q[2]!, vv[3]!];
        const hq = n.attrInt('q_num_heads', 1);
        const hkv = n.attrInt('kv_num_heads', 1);
        return [q[0]!, q[1]!, (vv[2]! / hkv) * hq];
      }
      if (idx === 1 || idx === 2) {
        const src = idx === 1 ? k : vv;
        const hkv = n.attrInt('kv_num_heads', 1);
        const four = src.length === 4 ? src : [src[0]!, hkv, src[1]!, src[2]! / hkv];
        return [four[0]!, four[1]!, (past ? past[2]! : 0) + four[2]!, four[3]!];
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function matmulShape(a: number[] | undefined, b: number[] | undefined, ta: boolean, tb: boolean): number[] | undefined {
  if (!a || !b || a.length < 2 || b.length < 2) return undefined;
  const m = ta ? a[a.length - 1]! : a[a.length - 2]!;
  const p = tb ? b[b.length - 2]! : b[b.length - 1]!;
  return [...(looseBroadcast([a.slice(0, -2), b.slice(0, -2)]) ?? []), m, p];
}
