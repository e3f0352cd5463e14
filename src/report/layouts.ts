/**
 * What each operator does on one evaluation window, as grids of categories (see palette.ts), computed
 * from that layer's real Q and K through the TypeScript reference's own selection code
 * (kernels/reference): chooseKeyBlocks for BlockSparseAttention, tokenImportance and blockLevels for
 * TiledAttention, spansReader for SpanAttention. Batch row 0 only.
 */
import { blockScores, chooseKeyBlocks, type BlockSparseAttributes } from '../../kernels/reference/block-sparse.js';
import { blockLen, geometry, meanRows, numBlocks, position, rowOffsets, type AttentionInputs, type FloatTensor, type Geometry, type IntTensor } from '../../kernels/reference/common.js';
import { spansReader, type SpanAttributes } from '../../kernels/reference/span.js';
import { COARSE, FINE, MEDIUM, blockLevels, tokenImportance, type TiledAttributes } from '../../kernels/reference/tiled.js';
import { BLOCK_SPARSE, SPAN, TILED } from './palette.js';

/** The attention inputs of one site on the window: Q [1, Hq, S, D] and K [1, Hkv, T, D]. */
export interface CapturedQK {
  q: FloatTensor;
  k: FloatTensor;
}

/** A rows × cols grid of palette indices, row-major. */
export interface CategoryGrid {
  rows: number;
  cols: number;
  cells: Uint8Array;
}

/** The attention inputs of a capture: no selection reads V, so it is given with zero width. */
function inputsOf(qk: CapturedQK): AttentionInputs {
  const [B, Hkv, T] = qk.k.dims as [number, number, number, number];
  return { q: qk.q, k: qk.k, v: { data: new Float32Array(0), dims: [B, Hkv, T, 0] } };
}

/** The last position query block qb can see (OPERATORS.md `plast`). */
function lastPosition(g: Geometry, qb: number, bs: number): number {
  return position(g, Math.min((qb + 1) * bs, g.S) - 1);
}

// ---- BlockSparseAttention -------------------------------------------------------------------

export interface BlockSparseHeadLayout {
  head: number;
  grid: CategoryGrid;
  /** kept / candidate (query block, key block) pairs */
  kept: number;
  candidates: number;
}

export function blockSparseLayouts(qk: CapturedQK, a: BlockSparseAttributes): BlockSparseHeadLayout[] {
  const inp = inputsOf(qk);
  const g = geometry('BlockSparseAttention', inp, a.scale, a.causal);
  const bs = a.block_size;
  const nQB = numBlocks(g.S, bs);
  const nKB = numBlocks(g.T, bs);
  const off = rowOffsets(g);
  const keyMeans = Array.from({ length: g.Hkv }, (_, kv) => Array.from({ length: nKB }, (_, kb) => meanRows(qk.k.data, off.k(0, kv, kb * bs), blockLen(kb, bs, g.T), g.D)));
  const out: BlockSparseHeadLayout[] = [];
  for (let h = 0; h < g.Hq; h++) {
    const cells = new Uint8Array(nQB * nKB);
    let kept = 0;
    let candidates = 0;
    for (let qb = 0; qb < nQB; qb++) {
      const plast = lastPosition(g, qb, bs);
      const choice = chooseKeyBlocks(blockScores(g, inp, 0, h, qb, bs, keyMeans[Math.floor(h / g.G)]!), plast, g.T, a);
      // OPERATORS.md steps 1–2, only to colour a kept block by why it was kept
      const kd = Math.min(Math.floor(plast / bs), nKB - 1);
      for (let kb = 0; kb < nKB; kb++) {
        const candidate = !a.causal || kb * bs <= plast;
        const forced = kb < a.sink_blocks || (kd - a.local_blocks < kb && kb <= kd);
        cells[qb * nKB + kb] = !candidate ? BLOCK_SPARSE.hidden : !choice.kept[kb] ? BLOCK_SPARSE.dropped : forced ? BLOCK_SPARSE.forced : BLOCK_SPARSE.chosen;
        if (candidate) candidates++;
        if (choice.kept[kb]) kept++;
      }
    }
    out.push({ head: h, grid: { rows: nQB, cols: nKB, cells }, kept, candidates });
  }
  return out;
}

// ---- TiledAttention -------------------------------------------------------------------------

export interface TiledGroupLayout {
  /** key/value head; its query heads share the tiling */
  kvHead: number;
  queryHeads: number[];
  /** mean token importance R(kb) per key block */
  importance: Float64Array;
  /** 0 fine, 1 medium, 2 coarse per key block (the reference's levels) */
  levels: number[];
  /** how each query block reads each key block */
  grid: CategoryGrid;
}

export function tiledLayouts(qk: CapturedQK, a: TiledAttributes, scorer?: FloatTensor): TiledGroupLayout[] {
  const inp = { ...inputsOf(qk), scorer };
  const g = geometry('TiledAttention', inp, a.scale, a.causal);
  const bs = a.block_size;
  const nQB = numBlocks(g.S, bs);
  const nKB = numBlocks(g.T, bs);
  const levelCategory = { [FINE]: TILED.fine, [MEDIUM]: TILED.medium, [COARSE]: TILED.summary } as Record<number, number>;
  const out: TiledGroupLayout[] = [];
  for (let kv = 0; kv < g.Hkv; kv++) {
    const r = tokenImportance(g, inp, a, 0, kv);
    const importance = Float64Array.from({ length: nKB }, (_, kb) => {
      let s = 0;
      for (let j = kb * bs; j < kb * bs + blockLen(kb, bs, g.T); j++) s += r[j]!;
      return s / blockLen(kb, bs, g.T);
    });
    const { levels } = blockLevels(importance, a);
    const cells = new Uint8Array(nQB * nKB);
    for (let qb = 0; qb < nQB; qb++) {
      // the block's last query stands for it (all its queries share the own block when T − S is a multiple of bs)
      const ob = Math.min(Math.floor(lastPosition(g, qb, bs) / bs), nKB - 1);
      for (let kb = 0; kb < nKB; kb++) {
        const exact = ob - a.local_blocks < kb && kb <= ob;
        const tiled = !a.causal || kb < ob - a.local_blocks + 1;
        cells[qb * nKB + kb] = exact ? TILED.exact : tiled ? levelCategory[levels[kb]!]! : TILED.hidden;
      }
    }
    out.push({ kvHead: kv, queryHeads: Array.from({ length: g.G }, (_, i) => kv * g.G + i), importance, levels, grid: { rows: nQB, cols: nKB, cells } });
  }
  return out;
}

// ---- SpanAttention --------------------------------------------------------------------------

export interface SpanLayout {
  grid: CategoryGrid;
  /** tokens per grid cell each way (1 unless the window is longer than the picture's limit) */
  tokensPerCell: number;
  spans: Array<[number, number]>;
}

/**
 * Which keys each query reads (the same for every head). Windows longer than `maxCells` are sampled:
 * a cell shows the category of its first query and first key.
 */
export function spanLayout(qk: CapturedQK, a: SpanAttributes, spans: IntTensor, maxCells = 512): SpanLayout {
  const g = geometry('SpanAttention', inputsOf(qk), a.scale, a.causal);
  const spansOf = spansReader(spans, g);
  const step = Math.ceil(Math.max(g.S, g.T) / maxCells);
  const rows = Math.ceil(g.S / step);
  const cols = Math.ceil(g.T / step);
  const cells = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const i = r * step;
    const p = position(g, i);
    const own = spansOf(0, i);
    for (let c = 0; c < cols; c++) {
      const j = c * step;
      cells[r * cols + c] =
        a.causal && j > p
          ? SPAN.hidden
          : j < a.sink_tokens
            ? SPAN.sink
            : Math.abs(p - j) < a.local_window
              ? SPAN.local
              : own.some(([s, e]) => s <= j && j < e)
                ? SPAN.span
                : SPAN.skipped;
    }
  }
  return { grid: { rows, cols, cells }, tokensPerCell: step, spans: spansOf(0, g.S - 1) };
}
