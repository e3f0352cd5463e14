/** TiledAttention's ONNX function (onnxruntime-node) agrees with the reference. */
import { describe, expect, it } from 'vitest';
import { checkAgreement, TOLERANCE, type Setting } from './agreement.js';
import { randn, type AttentionData, type Feed } from './helpers.js';
import type { FloatTensor } from '../../kernels/reference/common.js';

const floats = new Set(['fine_fraction', 'medium_fraction', 'scale']);
const base = { block_size: 16, fine_fraction: 0.25, medium_fraction: 0.25, medium_tile: 4, sink_blocks: 1, local_blocks: 1 };
const inputs = (x: AttentionData, extra: Array<Feed | undefined>) => ({ ...x, scorer: extra[0] as FloatTensor | undefined });

const settings: Setting[] = [
  { name: 'fine/medium 0.25/0.25, scorer 0 (key norm)', attrs: { ...base, scorer: 0 }, floats, inputs },
  { name: 'fine/medium 0.25/0.25, scorer 1 (probe queries)', attrs: { ...base, scorer: 1 }, floats, inputs },
  { name: 'fine/medium 0.25/0.25, scorer 2 (learned)', attrs: { ...base, scorer: 2 }, floats, inputs, extra: (rng, c) => [randn(rng, [c.D])] },
  { name: 'scorer 0 with a scorer input given (ignored)', attrs: { ...base, scorer: 0 }, floats, inputs, extra: (rng, c) => [randn(rng, [c.D])] },
  { name: 'fine 0, medium 0.5, tile 8, no sink, 2 local blocks, scale 0.3', attrs: { ...base, fine_fraction: 0, medium_fraction: 0.5, medium_tile: 8, sink_blocks: 0, local_blocks: 2, scale: 0.3 }, floats, inputs },
  { name: 'all coarse, block 32', attrs: { ...base, block_size: 32, fine_fraction: 0, medium_fraction: 0 }, floats, inputs },
  { name: 'exact (fine_fraction 1)', attrs: { ...base, fine_fraction: 1, medium_fraction: 0 }, floats, inputs },
];

describe('TiledAttention function vs reference', () => {
  settings.forEach((s, n) =>
    it(s.name, async () => {
      const r = await checkAgreement('TiledAttention', s, 2000 + n);
      console.log(`TiledAttention ${s.name}: ${r.cases} cases, max relative error ${r.maxError.toExponential(2)}, ${r.redraws} redraws, ${r.emptyRows} empty rows`);
      expect(r.maxError).toBeLessThanOrEqual(TOLERANCE);
    }),
  );
});
