/**
 * Each operator's reference at its exact setting equals plain dense attention (computed independently
 * in helpers.ts), in float64, on fresh random inputs over the whole shape grid.
 */
import { describe, expect, it } from 'vitest';
import { BlockSparseAttention, SpanAttention, TiledAttention } from '../../kernels/registry.js';
import { SEED, Rng, denseAttention, describeCase, grid, randn, randomAttention, relativeError, type AttentionData, type Case } from './helpers.js';

const EXACT_TOLERANCE = 1e-12;

interface Exact {
  name: string;
  run(x: AttentionData, c: Case, rng: Rng, scale: number): Float64Array;
}

const exactSettings: Exact[] = [
  { name: 'BlockSparseAttention density 1', run: (x, c, _rng, scale) => BlockSparseAttention.reference(x, { block_size: 16, density: 1, scale, causal: c.causal }).output.data },
  { name: 'BlockSparseAttention density 1, no sink/local, block 32', run: (x, c, _rng, scale) => BlockSparseAttention.reference(x, { block_size: 32, density: 1, sink_blocks: 0, local_blocks: 0, scale, causal: c.causal }).output.data },
  { name: 'BlockSparseAttention mass threshold 1', run: (x, c, _rng, scale) => BlockSparseAttention.reference(x, { block_size: 16, mass_threshold: 1, scale, causal: c.causal }).output.data },
  { name: 'TiledAttention fine_fraction 1, scorer 0', run: (x, c, _rng, scale) => TiledAttention.reference(x, { block_size: 16, fine_fraction: 1, medium_fraction: 0, scale, causal: c.causal }).output.data },
  { name: 'TiledAttention fine_fraction 1, scorer 1, no sink', run: (x, c, _rng, scale) => TiledAttention.reference(x, { block_size: 16, fine_fraction: 1, medium_fraction: 0, scorer: 1, sink_blocks: 0, scale, causal: c.causal }).output.data },
  {
    name: 'TiledAttention fine_fraction 1, scorer 2, 3 local blocks',
    run: (x, c, rng, scale) => TiledAttention.reference({ ...x, scorer: randn(rng, [c.D]) }, { block_size: 16, fine_fraction: 1, medium_fraction: 0, scorer: 2, local_blocks: 3, scale, causal: c.causal }).output.data,
  },
  {
    name: 'SpanAttention one full span [0, 2^62]',
    run: (x, c, _rng, scale) => SpanAttention.reference({ ...x, spans: { data: BigInt64Array.of(0n, 2n ** 62n), dims: [1, 1, 2] } }, { sink_tokens: 0, local_window: 0, scale, causal: c.causal }).output.data,
  },
  {
    name: 'SpanAttention per-query full spans [B, S, 1, 2] with sinks and window',
    run: (x, c, _rng, scale) => {
      const data = new BigInt64Array(c.B * c.S * 2);
      for (let r = 0; r < c.B * c.S; r++) data[2 * r + 1] = BigInt(c.T);
      return SpanAttention.reference({ ...x, spans: { data, dims: [c.B, c.S, 1, 2] } }, { sink_tokens: 4, local_window: 64, scale, causal: c.causal }).output.data;
    },
  },
];

describe('references at their exact settings equal dense attention', () => {
  exactSettings.forEach((s, n) =>
    it(s.name, () => {
      const rng = new Rng(SEED + n);
      let maxError = 0;
      let cases = 0;
      for (const c of grid()) {
        // 0 = the default 1/√D; 0.25 is exact in float32 (float attributes are rounded to float32)
        for (const scale of [0, 0.25]) {
          const x = randomAttention(rng, c);
          const dense = denseAttention(x, scale, c.causal);
          const got = s.run(x, c, rng, scale);
          expect(dense.some((v) => v !== 0)).toBe(true);
          const err = relativeError(got, dense);
          expect(err, `${s.name} ${describeCase(c)} scale ${scale} (seed ${SEED}; replay with ATTNPASS_TEST_SEED=${SEED})`).toBeLessThanOrEqual(EXACT_TOLERANCE);
          maxError = Math.max(maxError, err);
          cases++;
        }
      }
      console.log(`${s.name}: ${cases} cases, max relative error vs dense ${maxError.toExponential(2)}`);
    }),
  );
});

