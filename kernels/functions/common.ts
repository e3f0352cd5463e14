/**
 * Body pieces every operator's function shares: float32 copies of the inputs, the dimensions, scale
 * and causal flag, query positions, GQA head expansion, block means, and the softmax over admitted
 * columns that writes 0 for an empty row (never NaN).
 *
 * Formal inputs are named `Q`, `K`, `V`, `mask` (then `scorer` or `spans`). Everything is computed in
 * float32 (kernels accumulate in float32 too) and the output is cast back to Q's type.
 */
import { BodyBuilder, BOOL, FLOAT } from './builder.js';

export interface Prelude {
  q: string;
  k: string;
  v: string;
  mask: string;
  B: string;
  Hq: string;
  Hkv: string;
  G: string;
  S: string;
  T: string;
  D: string;
  /** float32 scalar: the scale attribute, or 1/√D when it is 0 */
  scale: string;
  /** bool scalar */
  causal: string;
  /** int64 scalars 0 and 1 */
  zero: string;
  one: string;
  /** int64 [S]: query index i */
  i: string;
  /** int64 [T]: key index j */
  j: string;
  /** int64 [S, 1]: absolute query position p(i) = T − S + i */
  pCol: string;
  /** bool [S, T]: j ≤ p(i), or true when not causal */
  causalOk: string;
  /** float32 scalars */
  negInf: string;
  fzero: string;
}

export function prelude(b: BodyBuilder): Prelude {
  const q = b.cast('Q', FLOAT);
  const k = b.cast('K', FLOAT);
  const v = b.cast('V', FLOAT);
  const mask = b.cast('mask', FLOAT);
  const [B, Hq, S, D] = [0, 1, 2, 3].map((a) => b.dim(q, a)) as [string, string, string, string];
  const Hkv = b.dim(k, 1);
  const T = b.dim(k, 2);
  const G = b.div(Hq, Hkv);
  const fzero = b.float(0);
  const scaleAttr = b.attrFloat('scale');
  const scale = b.where(b.equal(scaleAttr, fzero), b.div(b.float(1), b.sqrt(b.cast(D, FLOAT))), scaleAttr);
  const causal = b.cast(b.attrInt('causal'), BOOL);
  const zero = b.int(0);
  const one = b.int(1);
  const i = b.range(zero, S, one);
  const j = b.range(zero, T, one);
  const pCol = b.unsqueeze(b.add(i, b.sub(T, S)), [1]);
  const causalOk = b.or(b.not(causal), b.lessEq(j, pCol));
  return { q, k, v, mask, B, Hq, Hkv, G, S, T, D, scale, causal, zero, one, i, j, pCol, causalOk, negInf: b.floatTensor(-Infinity), fzero };
}

/** x [B, Hkv, N, E] → [B, Hq, N, E]: query head h reads key/value head h / G. */
export function expandHeads(b: BodyBuilder, pre: Prelude, x: string): string {
  const x5 = b.unsqueeze(x, [2]);
  const grown = b.expand(x5, b.vec([pre.one, pre.one, pre.G, pre.one, pre.one]));
  return b.reshape(grown, b.concat([b.shape(x, 0, 1), b.unsqueeze(pre.Hq, [0]), b.shape(x, 2)], 0));
}

/** Pads axis `axis` of x (rank 4) with `value` up to `to` entries (`to` ≥ current length). */
export function padTo(b: BodyBuilder, x: string, axis: number, current: string, to: string, value: string): string {
  return b.pad(x, [axis], [b.int(0)], [b.sub(to, current)], value);
}

/** Number of n-sized chunks covering `length` (int64 scalars): ceil(length / n). */
export function chunks(b: BodyBuilder, length: string, n: string, one: string): string {
  return b.div(b.add(length, b.sub(n, one)), n);
}

/**
 * Means over consecutive chunks of `size` rows along axis 2 of x [A, H, L, E] (zero-padded to
 * count·size rows): [A, H, count, E]. `lens` [count] int64 gives each chunk's real row count; chunks
 * with none get 0 (divided by 1).
 */
export function chunkMeans(b: BodyBuilder, pre: Prelude, x: string, length: string, size: string, count: string, lens: string): string {
  const padded = padTo(b, x, 2, length, b.mul(count, size), pre.fzero);
  const shape = b.concat([b.shape(x, 0, 2), b.vec([count, size]), b.shape(x, 3)], 0);
  const sums = b.reduce('ReduceSum', b.reshape(padded, shape), [3], 0);
  return b.div(sums, b.unsqueeze(b.cast(b.max(lens, pre.one), FLOAT), [1]));
}

/** Rows in each of `count` chunks of `size` over `length`: max(0, min(size, length − c·size)), int64 [count]. */
export function chunkLens(b: BodyBuilder, pre: Prelude, length: string, size: string, count: string): string {
  const c = b.range(pre.zero, count, pre.one);
  return b.max(b.min(size, b.sub(length, b.mul(c, size))), pre.zero);
}

/** scale · x · yᵀ for x [.., M, D], y [.., N, D]. */
export function scaledScores(b: BodyBuilder, pre: Prelude, x: string, y: string): string {
  return b.mul(b.matmul(x, b.transpose(y, [0, 1, 3, 2])), pre.scale);
}

/**
 * softmax over the last axis of `logits` restricted to `admit` (bool, broadcastable; undefined = the
 * logits already hold −∞ where not admitted), times `values` [.., C, Dv]. Rows with nothing admitted,
 * or only −∞ logits, give 0: the row maximum is replaced by 0 when infinite, and the sum (≥ 1 for any
 * row with a finite logit, since its maximum contributes exp(0)) is divided with max(sum, 1).
 */
export function maskedAttention(b: BodyBuilder, pre: Prelude, logits: string, admit: string | undefined, values: string): string {
  return b.matmul(maskedSoftmax(b, pre, logits, admit), values);
}

export function maskedSoftmax(b: BodyBuilder, pre: Prelude, logits: string, admit: string | undefined): string {
  const l = admit ? b.where(admit, logits, pre.negInf) : logits;
  const m = b.reduce('ReduceMax', l, [-1], 1);
  const mSafe = b.where(b.op('IsInf', [m]), pre.fzero, m);
  const e = b.exp(b.sub(l, mSafe));
  const sum = b.reduce('ReduceSum', e, [-1], 1);
  return b.div(e, b.max(sum, b.float(1)));
}

/** The function's output O: `out` cast back to Q's element type. */
export function finish(b: BodyBuilder, out: string): void {
  b.rename(b.castLike(out, 'Q'), 'O');
}
