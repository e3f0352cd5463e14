// The pictures show what the operators compute: the layouts here must equal the reference operators' own.
import { describe, expect, it } from 'vitest';
import { blockSparseAttention, type BlockSparseAttributes } from '../../kernels/reference/block-sparse.js';
import { tiledAttention, type TiledAttributes } from '../../kernels/reference/tiled.js';
import { blockSparseLayouts, spanLayout, tiledLayouts, type CapturedQK } from '../../src/report/layouts.js';
import { BLOCK_SPARSE, SPAN, TILED } from '../../src/report/palette.js';
import { rng } from '../../src/verify/inputs.js';

function randomQK(Hq: number, Hkv: number, S: number, T: number, D: number, seed: number): CapturedQK {
  const random = rng(seed);
  const fill = (n: number) => Float64Array.from({ length: n }, () => random() * 2 - 1);
  return { q: { data: fill(Hq * S * D), dims: [1, Hq, S, D] }, k: { data: fill(Hkv * T * D), dims: [1, Hkv, T, D] } };
}

const zeroV = (qk: CapturedQK) => ({ data: new Float64Array(qk.k.dims[1]! * qk.k.dims[2]!), dims: [1, qk.k.dims[1]!, qk.k.dims[2]!, 1] });

const blockCases: Array<[string, CapturedQK, Partial<BlockSparseAttributes>]> = [
  ['causal, density', randomQK(4, 2, 70, 70, 8, 1), { density: 0.4 }],
  ['causal, mass threshold', randomQK(4, 2, 70, 70, 8, 2), { mass_threshold: 0.7 }],
  ['not causal, no forced blocks', randomQK(2, 2, 50, 50, 8, 3), { causal: 0, sink_blocks: 0, local_blocks: 0, density: 0.3 }],
  ['queries fewer than keys', randomQK(2, 1, 20, 75, 8, 4), { density: 0.5, local_blocks: 2 }],
];

describe('blockSparseLayouts', () => {
  it.each(blockCases)('keeps exactly the reference layout (%s)', (_name, qk, overrides) => {
    const a: BlockSparseAttributes = { block_size: 16, density: 0.25, mass_threshold: 0, sink_blocks: 1, local_blocks: 1, scale: 0, causal: 1, ...overrides };
    const reference = blockSparseAttention({ q: qk.q, k: qk.k, v: zeroV(qk) }, a).layout;
    const heads = blockSparseLayouts(qk, a);
    const [, Hq, nQB, nKB] = reference.dims as [number, number, number, number];
    expect(heads).toHaveLength(Hq);
    for (const h of heads) {
      expect([h.grid.rows, h.grid.cols]).toEqual([nQB, nKB]);
      for (let i = 0; i < nQB * nKB; i++) {
        const kept = h.grid.cells[i] === BLOCK_SPARSE.forced || h.grid.cells[i] === BLOCK_SPARSE.chosen;
        expect(kept ? 1 : 0).toBe(reference.data[h.head * nQB * nKB + i]);
      }
      expect(h.kept).toBe(reference.data.subarray(h.head * nQB * nKB, (h.head + 1) * nQB * nKB).reduce((x, y) => x + y, 0));
    }
  });

  it('marks sink and diagonal blocks as forced and blocks after the query as not visible', () => {
    const [h] = blockSparseLayouts(randomQK(1, 1, 64, 64, 4, 5), { block_size: 16, density: 0.25, mass_threshold: 0, sink_blocks: 1, local_blocks: 1, scale: 0, causal: 1 });
    const cell = (qb: number, kb: number) => h!.grid.cells[qb * 4 + kb];
    expect(cell(3, 0)).toBe(BLOCK_SPARSE.forced);
    expect(cell(3, 3)).toBe(BLOCK_SPARSE.forced);
    expect(cell(0, 1)).toBe(BLOCK_SPARSE.hidden);
    expect([BLOCK_SPARSE.dropped, BLOCK_SPARSE.chosen]).toContain(cell(3, 1));
  });
});

describe('tiledLayouts', () => {
  it.each([0, 1])('levels equal the reference tiling (scorer %i)', (scorer) => {
    const qk = randomQK(4, 2, 96, 96, 8, 10 + scorer);
    const a: TiledAttributes = { block_size: 16, fine_fraction: 0.25, medium_fraction: 0.25, medium_tile: 4, sink_blocks: 1, local_blocks: 1, scorer, scale: 0, causal: 1 };
    const reference = tiledAttention({ q: qk.q, k: qk.k, v: zeroV(qk) }, a).levels;
    const groups = tiledLayouts(qk, a);
    expect(groups.map((g) => g.queryHeads)).toEqual([[0, 1], [2, 3]]);
    for (const g of groups) expect(g.levels).toEqual(Array.from(reference.data.subarray(g.kvHead * 6, (g.kvHead + 1) * 6)));
  });

  it('reads own and local blocks exactly and hides blocks after the query', () => {
    const [g] = tiledLayouts(randomQK(1, 1, 64, 64, 4, 20), { block_size: 16, fine_fraction: 0, medium_fraction: 0, medium_tile: 4, sink_blocks: 0, local_blocks: 2, scorer: 0, scale: 0, causal: 1 });
    const row3 = Array.from(g!.grid.cells.subarray(12, 16));
    expect(row3).toEqual([TILED.summary, TILED.summary, TILED.exact, TILED.exact]);
    expect(g!.grid.cells[1]).toBe(TILED.hidden);
  });
});

describe('spanLayout', () => {
  it('colours sinks, the local window and the spans within causality', () => {
    const qk = randomQK(1, 1, 40, 40, 4, 30);
    const spans = { data: BigInt64Array.of(10n, 14n), dims: [1, 1, 2] };
    const layout = spanLayout(qk, { sink_tokens: 2, local_window: 3, scale: 0, causal: 1 }, spans);
    const at = (i: number, j: number) => layout.grid.cells[i * 40 + j];
    expect(layout.tokensPerCell).toBe(1);
    expect(layout.spans).toEqual([[10, 14]]);
    expect(at(30, 1)).toBe(SPAN.sink);
    expect(at(30, 28)).toBe(SPAN.local);
    expect(at(30, 27)).toBe(SPAN.skipped);
    expect(at(30, 12)).toBe(SPAN.span);
    expect(at(30, 31)).toBe(SPAN.hidden);
  });

  it('samples long windows down to the picture limit', () => {
    const layout = spanLayout(randomQK(1, 1, 100, 100, 2, 31), { sink_tokens: 1, local_window: 4, scale: 0, causal: 1 }, { data: BigInt64Array.of(0n, 0n), dims: [1, 1, 2] }, 32);
    expect(layout.tokensPerCell).toBe(4);
    expect([layout.grid.rows, layout.grid.cols]).toEqual([25, 25]);
  });
});
