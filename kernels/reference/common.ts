/**
 * What the three reference implementations share: tensors, attention geometry (shapes, GQA, scale,
 * positions), the broadcast additive mask, block arithmetic, the score order, and the softmax over an
 * admitted set of columns with the empty-row rule. Float64 throughout (kernels/OPERATORS.md).
 */
import { fail } from '../../src/errors.js';

export type FloatData = Float64Array | Float32Array;

export interface FloatTensor {
  data: FloatData;
  dims: number[];
}

export interface IntTensor {
  data: BigInt64Array;
  dims: number[];
}

export interface OutputTensor<T = Float64Array> {
  data: T;
  dims: number[];
}

export interface AttentionInputs {
  q: FloatTensor;
  k: FloatTensor;
  v: FloatTensor;
  /** additive, broadcastable to [B, Hq, S, T]; absent means no mask */
  mask?: FloatTensor;
}

/** Shapes and per-call constants of one attention call. */
export interface Geometry {
  B: number;
  Hq: number;
  Hkv: number;
  /** query heads per key/value head */
  G: number;
  S: number;
  T: number;
  D: number;
  Dv: number;
  scale: number;
  causal: boolean;
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkTensor(op: string, name: string, t: { data: { length: number }; dims: number[] }, rank: number): void {
  if (t.dims.length !== rank) fail('usage', `${op}: input '${name}' must have rank ${rank}; got dims [${t.dims.join(', ')}].`);
  if (t.data.length !== numel(t.dims)) fail('usage', `${op}: input '${name}' has ${t.data.length} values but dims [${t.dims.join(', ')}] need ${numel(t.dims)}.`);
}

/** Checks Q, K, V (and the mask's broadcastability) and resolves scale (0 → 1/√D). */
export function geometry(op: string, inp: AttentionInputs, scale: number, causal: number): Geometry {
  checkTensor(op, 'Q', inp.q, 4);
  checkTensor(op, 'K', inp.k, 4);
  checkTensor(op, 'V', inp.v, 4);
  const [B, Hq, S, D] = inp.q.dims as [number, number, number, number];
  const [Bk, Hkv, T, Dk] = inp.k.dims as [number, number, number, number];
  const [Bv, Hv, Tv, Dv] = inp.v.dims as [number, number, number, number];
  if (Bk !== B || Bv !== B) fail('usage', `${op}: Q, K and V must share the batch size; got ${B}, ${Bk}, ${Bv}.`);
  if (Dk !== D) fail('usage', `${op}: K's head size ${Dk} differs from Q's ${D}.`);
  if (Hv !== Hkv || Tv !== T) fail('usage', `${op}: V [${inp.v.dims.join(', ')}] must match K's heads and length [.., ${Hkv}, ${T}, ..].`);
  if (Hkv === 0 || Hq % Hkv !== 0) fail('usage', `${op}: query heads (${Hq}) must be a multiple of key/value heads (${Hkv}).`);
  const g: Geometry = { B, Hq, Hkv, G: Hq / Hkv, S, T, D, Dv, scale: scale === 0 ? 1 / Math.sqrt(D) : scale, causal: causal !== 0 };
  if (inp.mask) maskReader(op, inp.mask, g);
  return g;
}

/** Absolute position of query i: T − S + i. */
export function position(g: Geometry, i: number): number {
  return g.T - g.S + i;
}

/** The additive mask as a function of (b, h, i, j), numpy-broadcast from the right to [B, Hq, S, T]. */
export function maskReader(op: string, mask: FloatTensor | undefined, g: Geometry): (b: number, h: number, i: number, j: number) => number {
  if (!mask) return () => 0;
  const dims = mask.dims;
  if (dims.length > 4) fail('usage', `${op}: the mask has rank ${dims.length}; it must be broadcastable to [B, Hq, S, T] (rank ≤ 4).`);
  if (mask.data.length !== numel(dims)) fail('usage', `${op}: the mask has ${mask.data.length} values but dims [${dims.join(', ')}].`);
  const full = [g.B, g.Hq, g.S, g.T];
  const padded = [...Array(4 - dims.length).fill(1), ...dims] as number[];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let a = 3; a >= 0; a--) {
    const d = padded[a]!;
    if (d !== 1 && d !== full[a]) fail('usage', `${op}: mask dims [${dims.join(', ')}] do not broadcast to [B, Hq, S, T] = [${full.join(', ')}].`);
    strides[a] = d === 1 ? 0 : stride;
    stride *= d;
  }
  const data = mask.data;
  const [sb, sh, ss, st] = strides as [number, number, number, number];
  return (b, h, i, j) => data[b * sb + h * sh + i * ss + j * st]!;
}

/** Offsets of rows of Q [B,Hq,S,D], K [B,Hkv,T,D], V [B,Hkv,T,Dv] and O [B,Hq,S,Dv]. */
export function rowOffsets(g: Geometry) {
  return {
    q: (b: number, h: number, i: number) => ((b * g.Hq + h) * g.S + i) * g.D,
    k: (b: number, kv: number, j: number) => ((b * g.Hkv + kv) * g.T + j) * g.D,
    v: (b: number, kv: number, j: number) => ((b * g.Hkv + kv) * g.T + j) * g.Dv,
    o: (b: number, h: number, i: number) => ((b * g.Hq + h) * g.S + i) * g.Dv,
  };
}

/** key/value head read by query head h */
export function kvHead(g: Geometry, h: number): number {
  return Math.floor(h / g.G);
}

export function dot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let s = 0;
  for (let d = 0; d < n; d++) s += a[ao + d]! * b[bo + d]!;
  return s;
}

/** Mean of `count` consecutive rows of width `width` starting at row offset `start` (stride `width`). */
export function meanRows(data: ArrayLike<number>, start: number, count: number, width: number): Float64Array {
  const out = new Float64Array(width);
  for (let r = 0; r < count; r++) for (let d = 0; d < width; d++) out[d] += data[start + r * width + d]!;
  for (let d = 0; d < width; d++) out[d] /= count;
  return out;
}

// ---- blocks ---------------------------------------------------------------------------------

export function numBlocks(n: number, bs: number): number {
  return Math.ceil(n / bs);
}

/** tokens in block kb of a sequence of n */
export function blockLen(kb: number, bs: number, n: number): number {
  return Math.max(0, Math.min(bs, n - kb * bs));
}

/** `round(x)` of OPERATORS.md: half up, floor(x + 0.5). */
export function roundHalfUp(x: number): number {
  return Math.floor(x + 0.5);
}

/** `ids` sorted by score descending, ties by lower id first (the order every ranking uses). */
export function orderByScore(ids: readonly number[], score: (id: number) => number): number[] {
  return [...ids].sort((a, b) => score(b) - score(a) || a - b);
}

/**
 * The score gap between positions n−1 and n of an order (Infinity when n is at either end); with
 * `relative`, divided by the larger magnitude of the two scores.
 */
export function boundaryGap(order: readonly number[], n: number, score: (id: number) => number, relative = false): number {
  if (n <= 0 || n >= order.length) return Infinity;
  const [a, b] = [score(order[n - 1]!), score(order[n]!)];
  return relative ? (a - b) / Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE) : a - b;
}

// ---- the softmax over admitted columns -----------------------------------------------------

/**
 * Columns of one query row: a logit and a value row each. `add` admits a column; `writeTo` writes
 * Σ softmax(logits) · values, or zeros when no column was admitted or every logit is −∞.
 */
export class RowSoftmax {
  private logits: number[] = [];
  private values: ArrayLike<number>[] = [];
  private offsets: number[] = [];

  constructor(private readonly Dv: number) {}

  reset(): void {
    this.logits.length = 0;
    this.values.length = 0;
    this.offsets.length = 0;
  }

  add(logit: number, values: ArrayLike<number>, offset: number): void {
    this.logits.push(logit);
    this.values.push(values);
    this.offsets.push(offset);
  }

  writeTo(out: Float64Array, outOffset: number): void {
    let m = -Infinity;
    for (const l of this.logits) if (l > m) m = l;
    if (m === -Infinity) return; // empty row: output stays 0
    let sum = 0;
    const w = this.logits.map((l) => {
      const e = Math.exp(l - m);
      sum += e;
      return e;
    });
    for (let c = 0; c < w.length; c++) {
      const p = w[c]! / sum;
      if (p === 0) continue;
      const src = this.values[c]!;
      const off = this.offsets[c]!;
      for (let d = 0; d < this.Dv; d++) out[outOffset + d] += p * src[off + d]!;
    }
  }
}
