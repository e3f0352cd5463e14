/** Comparing two runs' outputs: max abs and relative error, and for logits top-1 agreement and mean KL. */
import { toFloat64, type NamedTensor } from './tensors.js';

export interface OutputComparison {
  name: string;
  dims: number[];
  maxAbs: number;
  /** max |a − b| / max |a| */
  relative: number;
  nan: boolean;
  /** for logits-like outputs (last dim > 1, name says logits or scores) */
  top1Agreement?: number;
  meanKl?: number;
}

export function isLogits(t: NamedTensor): boolean {
  return /logit|scores/i.test(t.name) && t.dims.length >= 2 && (t.dims[t.dims.length - 1] ?? 0) > 1;
}

export function compareOutputs(reference: NamedTensor, candidate: NamedTensor): OutputComparison {
  const a = toFloat64(reference);
  const b = toFloat64(candidate);
  let maxAbs = 0;
  let maxRef = 0;
  let nan = a.length !== b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) !== Number.isNaN(x) || Number.isNaN(y)) nan = true;
    const d = Math.abs(x - y);
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(x) > maxRef) maxRef = Math.abs(x);
  }
  const result: OutputComparison = { name: reference.name, dims: reference.dims, maxAbs, relative: maxRef > 0 ? maxAbs / maxRef : maxAbs, nan };
  if (isLogits(reference)) Object.assign(result, logitMetrics(a, b, reference.dims[reference.dims.length - 1]!));
  return result;
}

function logitMetrics(a: Float64Array, b: Float64Array, vocab: number): { top1Agreement: number; meanKl: number } {
  const rows = Math.floor(a.length / vocab);
  let agree = 0;
  let kl = 0;
  for (let r = 0; r < rows; r++) {
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
