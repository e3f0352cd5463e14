/** Reference BlockSparseAttention (AST), exactly as kernels/OPERATORS.md defines it, in float64. */
import {
  RowSoftmax,
  blockLen,
  boundaryGap,
  dot,
  geometry,
  kvHead,
  maskReader,
  meanRows,
  numBlocks,
  orderByScore,
  position,
  rowOffsets,
  type AttentionInputs,
  type Geometry,
  type OutputTensor,
} from './common.js';

export interface BlockSparseAttributes {
  block_size: number;
  density: number;
  mass_threshold: number;
  sink_blocks: number;
  local_blocks: number;
  scale: number;
  causal: number;
}

export interface BlockSparseResult {
  output: OutputTensor;
  /** [B, Hq, nQB, nKB], 1 = kept */
  layout: OutputTensor<Uint8Array>;
  /**
   * How far the selection is from flipping: the smallest score gap at a decision boundary (and, in
   * mass mode, the smallest distance of a cumulative mass to the threshold). Tests comparing float32
   * implementations with this reference redraw inputs whose margin is tiny.
   */
  margin: number;
}

/** One query block's choice of key blocks. */
export interface BlockChoice {
  kept: boolean[];
  margin: number;
}

/**
 * Steps 1–4 of AST for one (b, h, qb): `scores[kb]` = s(kb), `plast` = the last position the query
 * block can see, `T` keys.
 */
export function chooseKeyBlocks(scores: ArrayLike<number>, plast: number, T: number, a: BlockSparseAttributes): BlockChoice {
  const bs = a.block_size;
  const nKB = numBlocks(T, bs);
  const kd = Math.min(Math.floor(plast / bs), nKB - 1);
  const cand: number[] = [];
  for (let kb = 0; kb < nKB; kb++) if (!a.causal || kb * bs <= plast) cand.push(kb);
  const isForced = (kb: number) => kb < a.sink_blocks || (kd - a.local_blocks < kb && kb <= kd);
  const forced = cand.filter(isForced);
  const free = cand.filter((kb) => !isForced(kb));
  const s = (kb: number) => scores[kb]!;
  const order = orderByScore(free, s);
  let n: number;
  let margin: number;
  if (a.mass_threshold > 0) {
    // w(kb) = exp(s + ln len) over the candidates, normalised; n = fewest reaching the threshold
    const z = (kb: number) => s(kb) + Math.log(blockLen(kb, bs, T));
    const zmax = Math.max(...cand.map(z));
    const total = cand.reduce((acc, kb) => acc + Math.exp(z(kb) - zmax), 0);
    const w = (kb: number) => Math.exp(z(kb) - zmax) / total;
    let cum = forced.reduce((acc, kb) => acc + w(kb), 0);
    margin = Math.abs(cum - a.mass_threshold);
    n = order.length;
    for (let r = 0; r < order.length; r++) {
      if (cum >= a.mass_threshold) {
        n = r;
        break;
      }
      cum += w(order[r]!);
      margin = Math.min(margin, Math.abs(cum - a.mass_threshold));
    }
    // the set of the first r blocks matters for r ≤ n only
    for (let r = 1; r <= n; r++) margin = Math.min(margin, boundaryGap(order, r, s));
  } else {
    // density · |C| is exact in float64 (density is a float32 attribute, |C| a small integer)
    n = Math.max(0, Math.ceil(a.density * cand.length) - forced.length);
    margin = boundaryGap(order, n, s);
  }
  const kept = new Array<boolean>(nKB).fill(false);
  for (const kb of forced) kept[kb] = true;
  for (const kb of order.slice(0, n)) kept[kb] = true;
  return { kept, margin };
}

/** The block scores s(kb) = scale · q̄ · k̄(kb) of one (b, h, qb); `keyMeans[kb]` = k̄(kb) of h's key/value head. */
export function blockScores(g: Geometry, inp: AttentionInputs, b: number, h: number, qb: number, bs: number, keyMeans: Float64Array[]): Float64Array {
  const off = rowOffsets(g);
  const rows = Math.min(bs, g.S - qb * bs);
  const qMean = meanRows(inp.q.data, off.q(b, h, qb * bs), rows, g.D);
  return Float64Array.from(keyMeans, (km) => g.scale * dot(qMean, 0, km, 0, g.D));
}

export function blockSparseAttention(inp: AttentionInputs, a: BlockSparseAttributes): BlockSparseResult {
  const op = 'BlockSparseAttention';
  const g = geometry(op, inp, a.scale, a.causal);
  const bs = a.block_size;
  const nQB = numBlocks(g.S, bs);
  const nKB = numBlocks(g.T, bs);
  const off = rowOffsets(g);
  const mask = maskReader(op, inp.mask, g);
  const out = new Float64Array(g.B * g.Hq * g.S * g.Dv);
  const layout = new Uint8Array(g.B * g.Hq * nQB * nKB);
  const row = new RowSoftmax(g.Dv);
  let margin = Infinity;
  for (let b = 0; b < g.B; b++) {
    for (let kv = 0; kv < g.Hkv; kv++) {
      const keyMeans = Array.from({ length: nKB }, (_, kb) => meanRows(inp.k.data, off.k(b, kv, kb * bs), blockLen(kb, bs, g.T), g.D));
      for (let h = kv * g.G; h < (kv + 1) * g.G; h++) {
        for (let qb = 0; qb < nQB; qb++) {
          const plast = position(g, Math.min((qb + 1) * bs, g.S) - 1);
          const choice = chooseKeyBlocks(blockScores(g, inp, b, h, qb, bs, keyMeans), plast, g.T, a);
          margin = Math.min(margin, choice.margin);
          choice.kept.forEach((k, kb) => (layout[((b * g.Hq + h) * nQB + qb) * nKB + kb] = k ? 1 : 0));
          for (let i = qb * bs; i < Math.min((qb + 1) * bs, g.S); i++) {
            const p = position(g, i);
            const qo = off.q(b, h, i);
            row.reset();
            for (let kb = 0; kb < nKB; kb++) {
              if (!choice.kept[kb]) continue;
              for (let j = kb * bs; j < kb * bs + blockLen(kb, bs, g.T); j++) {
                if (g.causal && j > p) continue;
                row.add(g.scale * dot(inp.q.data, qo, inp.k.data, off.k(b, kvHead(g, h), j), g.D) + mask(b, h, i, j), inp.v.data, off.v(b, kv, j));
              }
            }
            row.writeTo(out, off.o(b, h, i));
          }
        }
      }
    }
  }
  return {
    output: { data: out, dims: [g.B, g.Hq, g.S, g.Dv] },
    layout: { data: layout, dims: [g.B, g.Hq, nQB, nKB] },
    margin,
  };
}
