/** Reference TiledAttention (ATT), exactly as kernels/OPERATORS.md defines it, in float64. */
import { fail } from '../../src/errors.js';
import {
  RowSoftmax,
  blockLen,
  boundaryGap,
  dot,
  geometry,
  maskReader,
  meanRows,
  numBlocks,
  orderByScore,
  position,
  roundHalfUp,
  rowOffsets,
  type AttentionInputs,
  type FloatTensor,
  type Geometry,
  type OutputTensor,
} from './common.js';

export interface TiledAttributes {
  block_size: number;
  fine_fraction: number;
  medium_fraction: number;
  medium_tile: number;
  sink_blocks: number;
  local_blocks: number;
  scorer: number;
  scale: number;
  causal: number;
}

export interface TiledInputs extends AttentionInputs {
  /** [D] learned scorer weights (scorer = 2) */
  scorer?: FloatTensor;
}

export const FINE = 0;
export const MEDIUM = 1;
export const COARSE = 2;

export interface TiledResult {
  output: OutputTensor;
  /** [B, Hkv, nKB]: 0 fine, 1 medium, 2 coarse */
  levels: OutputTensor<Int32Array>;
  /**
   * smallest relative block-importance gap at a level boundary (importances have any scale: probe
   * masses are ~1/T); see BlockSparseResult.margin
   */
  margin: number;
}

/** r(j) for one (b, kv): key norm, probe-query attention mass, or the learned projection. */
export function tokenImportance(g: Geometry, inp: TiledInputs, a: TiledAttributes, b: number, kv: number): Float64Array {
  const off = rowOffsets(g);
  const k = inp.k.data;
  const r = new Float64Array(g.T);
  if (a.scorer === 0) {
    for (let j = 0; j < g.T; j++) r[j] = Math.sqrt(dot(k, off.k(b, kv, j), k, off.k(b, kv, j), g.D));
  } else if (a.scorer === 2) {
    if (!inp.scorer) fail('usage', `TiledAttention: scorer = 2 (learned) needs the 'scorer' input ([D] weights).`);
    if (inp.scorer.data.length !== g.D) fail('usage', `TiledAttention: the 'scorer' input has ${inp.scorer.data.length} values; it must have D = ${g.D}.`);
    for (let j = 0; j < g.T; j++) r[j] = dot(k, off.k(b, kv, j), inp.scorer.data, 0, g.D);
  } else {
    const P = Math.min(g.S, 16);
    const logits = new Float64Array(g.T);
    for (let h = kv * g.G; h < (kv + 1) * g.G; h++) {
      for (let i = g.S - P; i < g.S; i++) {
        let m = -Infinity;
        for (let j = 0; j < g.T; j++) m = Math.max(m, (logits[j] = g.scale * dot(inp.q.data, off.q(b, h, i), k, off.k(b, kv, j), g.D)));
        let sum = 0;
        for (let j = 0; j < g.T; j++) sum += (logits[j] = Math.exp(logits[j]! - m));
        for (let j = 0; j < g.T; j++) r[j] += logits[j]! / sum / (g.G * P);
      }
    }
  }
  return r;
}

/** Levels of the key blocks from their importance R (sink blocks fine; then by R descending). */
export function blockLevels(R: ArrayLike<number>, a: TiledAttributes): { levels: number[]; margin: number } {
  const nKB = R.length;
  const levels = new Array<number>(nKB).fill(COARSE);
  const others: number[] = [];
  for (let kb = 0; kb < nKB; kb++) (kb < a.sink_blocks ? (levels[kb] = FINE) : others.push(kb));
  const score = (kb: number) => R[kb]!;
  const order = orderByScore(others, score);
  // counts from fractions are exact: float32 attribute × small integer, in float64
  const nFine = roundHalfUp(a.fine_fraction * nKB);
  const nMedium = roundHalfUp(a.medium_fraction * nKB);
  order.forEach((kb, r) => (levels[kb] = r < nFine ? FINE : r < nFine + nMedium ? MEDIUM : COARSE));
  return { levels, margin: Math.min(boundaryGap(order, nFine, score, true), boundaryGap(order, nFine + nMedium, score, true)) };
}

/** A tile: `n` tokens from `start`, pooled key and value, logit bias ln n. */
interface Tile {
  start: number;
  n: number;
  key: Float64Array;
  value: Float64Array;
}

function tilesOf(g: Geometry, inp: AttentionInputs, b: number, kv: number, kb: number, level: number, a: TiledAttributes): Tile[] {
  const off = rowOffsets(g);
  const start = kb * a.block_size;
  const len = blockLen(kb, a.block_size, g.T);
  const size = level === FINE ? 1 : level === MEDIUM ? a.medium_tile : len;
  const tiles: Tile[] = [];
  for (let t = start; t < start + len; t += size) {
    const n = Math.min(size, start + len - t);
    tiles.push({ start: t, n, key: meanRows(inp.k.data, off.k(b, kv, t), n, g.D), value: meanRows(inp.v.data, off.v(b, kv, t), n, g.Dv) });
  }
  return tiles;
}

export function tiledAttention(inp: TiledInputs, a: TiledAttributes): TiledResult {
  const op = 'TiledAttention';
  const g = geometry(op, inp, a.scale, a.causal);
  const bs = a.block_size;
  const nKB = numBlocks(g.T, bs);
  const off = rowOffsets(g);
  const mask = maskReader(op, inp.mask, g);
  const out = new Float64Array(g.B * g.Hq * g.S * g.Dv);
  const levelsOut = new Int32Array(g.B * g.Hkv * nKB);
  const row = new RowSoftmax(g.Dv);
  let margin = Infinity;
  for (let b = 0; b < g.B; b++) {
    for (let kv = 0; kv < g.Hkv; kv++) {
      const r = tokenImportance(g, inp, a, b, kv);
      const R = Array.from({ length: nKB }, (_, kb) => {
        let s = 0;
        const len = blockLen(kb, bs, g.T);
        for (let j = kb * bs; j < kb * bs + len; j++) s += r[j]!;
        return s / len;
      });
      const { levels, margin: m } = blockLevels(R, a);
      margin = Math.min(margin, m);
      levels.forEach((l, kb) => (levelsOut[(b * g.Hkv + kv) * nKB + kb] = l));
      const tiles = levels.map((l, kb) => tilesOf(g, inp, b, kv, kb, l, a));
      for (let h = kv * g.G; h < (kv + 1) * g.G; h++) {
        for (let i = 0; i < g.S; i++) {
          const p = position(g, i);
          const ob = Math.min(Math.floor(p / bs), nKB - 1);
          const qo = off.q(b, h, i);
          row.reset();
          for (let kb = 0; kb < nKB; kb++) {
            if (ob - a.local_blocks < kb && kb <= ob) {
              // exact region: token resolution, causal per token
              for (let j = kb * bs; j < kb * bs + blockLen(kb, bs, g.T); j++) {
                if (g.causal && j > p) continue;
                row.add(g.scale * dot(inp.q.data, qo, inp.k.data, off.k(b, kv, j), g.D) + mask(b, h, i, j), inp.v.data, off.v(b, kv, j));
              }
            } else if (!g.causal || kb < ob - a.local_blocks + 1) {
              // tiled region: each tile's pooled key, bias ln n and the largest mask value over its tokens
              for (const t of tiles[kb]!) {
                let mmax = -Infinity;
                for (let j = t.start; j < t.start + t.n; j++) mmax = Math.max(mmax, mask(b, h, i, j));
                row.add(g.scale * dot(inp.q.data, qo, t.key, 0, g.D) + Math.log(t.n) + mmax, t.value, 0);
              }
            }
          }
          row.writeTo(out, off.o(b, h, i));
        }
      }
    }
  }
  return {
    output: { data: out, dims: [g.B, g.Hq, g.S, g.Dv] },
    levels: { data: levelsOut, dims: [g.B, g.Hkv, nKB] },
    margin,
  };
}
