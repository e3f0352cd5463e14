/**
 * Exact ties in block scores resolve as specified (lower block index first) in both the reference
 * and the ONNX function. Blocks 1–3 of K are copies of each other, so their block scores (AST) and
 * importances (ATT) are bitwise equal in float64 and float32 alike; values differ, so the output
 * shows which block was chosen.
 */
import { describe, expect, it } from 'vitest';
import { BlockSparseAttention, TiledAttention } from '../../kernels/registry.js';
import { SEED, Rng, randn, relativeError, runFunction } from './helpers.js';

const bs = 16;

function tiedInputs(rng: Rng, S: number, ownBlockFirst: boolean) {
  const T = 4 * bs;
  const D = 16;
  const q = randn(rng, [1, 1, S, D]);
  const k = randn(rng, [1, 1, T, D]);
  // block 0 far below (AST: lowest score for these queries) or the tied blocks' twin
  for (let kb = 2; kb < 4; kb++) for (let j = 0; j < bs * D; j++) k.data[kb * bs * D + j] = k.data[bs * D + j]!;
  if (!ownBlockFirst) for (let j = 0; j < bs * D; j++) k.data[j] = k.data[j]! * 0.01;
  const v = randn(rng, [1, 1, T, 8]);
  return { q, k, v, mask: { data: Float32Array.of(0), dims: [] } };
}

describe('exact ties resolve to the lower block index', () => {
  it('BlockSparseAttention: two of three tied blocks kept, the lower ones', async () => {
    const rng = new Rng(SEED + 7);
    for (const S of [1, 16, 37]) {
      const x = tiedInputs(rng, S, false);
      const attrs = { block_size: bs, density: 0.5, sink_blocks: 0, local_blocks: 0 };
      const ref = BlockSparseAttention.reference(x, attrs);
      const nQB = Math.ceil(S / bs);
      for (let qb = 0; qb < nQB; qb++) {
        const row = Array.from(ref.layout.data.subarray(qb * 4, qb * 4 + 4));
        // block 0 (scaled down) vs the three tied ones: whichever wins, ties go to blocks 1 then 2
        expect(row.slice(1).join(''), `seed ${SEED} S ${S} qb ${qb}`).toMatch(/^(110|100)$/);
      }
      const got = await runFunction('BlockSparseAttention', [x.q, x.k, x.v, x.mask], attrs, new Set(['density']), ['O', 'layout']);
      expect(Array.from(got.layout!.data, Number), `seed ${SEED} S ${S}`).toEqual(Array.from(ref.layout.data));
      expect(relativeError(got.O!.data, ref.output.data), `seed ${SEED} S ${S}`).toBeLessThan(1e-4);
    }
  });

  it('TiledAttention: tied blocks take levels in block order', async () => {
    const rng = new Rng(SEED + 8);
    for (const scorer of [0, 2]) {
      const x = tiedInputs(rng, 1, false);
      const w = randn(rng, [16]);
      // S = 1 at position 63: own block 3 exact; blocks 0–2 tiled; no sink; 1 fine (round(0.25·4)), 1 medium
      const attrs = { block_size: bs, fine_fraction: 0.25, medium_fraction: 0.25, medium_tile: 4, sink_blocks: 0, local_blocks: 1, scorer };
      const ref = TiledAttention.reference({ ...x, scorer: w }, attrs);
      const levels = Array.from(ref.levels.data);
      // blocks 1, 2, 3 tie; block 0 (keys scaled by 0.01) has the lowest importance under key norm
      if (scorer === 0) expect(levels, `seed ${SEED}`).toEqual([2, 0, 1, 2]);
      const got = await runFunction('TiledAttention', [x.q, x.k, x.v, x.mask, w], attrs, new Set(['fine_fraction', 'medium_fraction']));
      expect(relativeError(got.O!.data, ref.output.data), `seed ${SEED} scorer ${scorer}`).toBeLessThan(1e-4);
    }
  });
});
