/** Comparing two runs' outputs: max abs and relative error, and for logits top-1 agreement and mean KL. */
import { toFloat64, type NamedTensor } from './tensors.js';

export interface OutputComparison {
  name: string;
  dims: number[];
  maxAbs: number;
  /** max |a − b| / max |a|, over the rows that hold real tokens */
  relative: number;
  /** the same over every row, padding positions included (their values carry no meaning) */
  relativeAllRows: number;
  nan: boolean;
  /** for logits-like outputs (last dim > 1, name says logits or scores) */
  top1Agreement?: number;
  meanKl?: number;
}

export function isLogits(t: NamedTensor): boolean {
  return /logit|scores/i.test(t.name) && t.dims.length >= 2 && (t.dims[t.dims.length - 1] ?? 0) > 1;
}

/**
 * Which [batch, position] rows of an output hold real tokens: outputs laid out [B, S, ...] are read
 * against the attention mask's last S columns. Undefined when the output is not laid out that way.
 */
export type RowFilter = ((dims: readonly number[]) => ((row: number) => boolean) | undefined) | undefined;

export function compareOutputs(reference: NamedTensor, candidate: NamedTensor, rows?: RowFilter): OutputComparison {
  const a = toFloat64(reference);
  const b = toFloat64(candidate);
  const valid = rows?.(reference.dims);
  const rowSize = reference.dims.slice(2).reduce((x, y) => x * y, 1);
  let maxAbs = 0;
  let maxRef = 0;
  let maxAbsAll = 0;
  let maxRefAll = 0;
  let nan = a.length !== b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    const d = Math.abs(x - y);
    if (d > maxAbsAll) maxAbsAll = d;
    if (Math.abs(x) > maxRefAll) maxRefAll = Math.abs(x);
    if (valid && !valid(Math.floor(i / rowSize))) continue;
    if (Number.isNaN(y) !== Number.isNaN(x) || Number.isNaN(y)) nan = true;
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(x) > maxRef) maxRef = Math.abs(x);
  }
  const relative = (abs: number, ref: number) => (ref > 0 ? abs / ref : abs);
  const result: OutputComparison = { name: reference.name, dims: reference.dims, maxAbs, relative: relative(maxAbs, maxRef), relativeAllRows: relative(maxAbsAll, maxRefAll), nan };
  if (isLogits(reference)) Object.assign(result, logitMetrics(a, b, reference.dims[reference.dims.length - 1]!, valid));
  return result;
}

function logitMetrics(a: Float64Array, b: Float64Array, vocab: number, valid?: (row: number) => boolean): { top1Agreement: number; meanKl: number } {
  const total = Math.floor(a.length / vocab);
  let rows = 0;
  let agree = 0;
  let kl = 0;
  for (let r = 0; r < total; r++) {
    if (valid && !valid(r)) continue;
    rows++;
    const off = r * vocab;
    let ia = 0;
    let ib = 0;
    let ma = -Infinity;
    let mb = -Infinity;
    for (let j = 0; j < vocab; j++) {
      if (a[off + j]! > ma) (ma = a[off + j]!), (ia = j);
      if (b[off + j]! > mb) (mb = b[off + j]!), (ib = j);
    }
    if (ia === ib) agree++;
    let za = 0;
    let zb = 0;
    for (let j = 0; j < vocab; j++) {
      za += Math.exp(a[off + j]! - ma);
      zb += Math.exp(b[off + j]! - mb);
    }
    const lza = Math.log(za);
    const lzb = Math.log(zb);
    let k = 0;
    for (let j = 0; j < vocab; j++) {
      const lpa = a[off + j]! - ma - lza;
      const lpb = b[off + j]! - mb - lzb;
      k += Math.exp(lpa) * (lpa - lpb);
    }
    kl += k;
  }
  return { top1Agreement: rows ? agree / rows : 1, meanKl: rows ? kl / rows : 0 };
}
