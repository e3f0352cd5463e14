/** BlockSparseAttention's ONNX function (onnxruntime-node) agrees with the reference, layout included. */
import { describe, expect, it } from 'vitest';
import { checkAgreement, TOLERANCE, type Setting } from './agreement.js';
import type { AttentionData } from './helpers.js';

const floats = new Set(['density', 'mass_threshold', 'scale']);
const inputs = (x: AttentionData) => x;
const base = { block_size: 16, sink_blocks: 1, local_blocks: 1 };

const settings: Setting[] = [
  { name: 'density 0.3', attrs: { ...base, density: 0.3 }, floats, inputs, outputs: ['O', 'layout'] },
  { name: 'mass threshold 0.9', attrs: { ...base, density: 0.3, mass_threshold: 0.9 }, floats, inputs, outputs: ['O', 'layout'] },
  { name: 'density 0.3, no sink/local blocks, scale 0.2', attrs: { ...base, density: 0.3, sink_blocks: 0, local_blocks: 0, scale: 0.2 }, floats, inputs, outputs: ['O', 'layout'] },
  { name: 'mass threshold 0.5, 2 local blocks, block 32', attrs: { ...base, block_size: 32, local_blocks: 2, mass_threshold: 0.5 }, floats, inputs, outputs: ['O', 'layout'] },
  { name: 'exact (density 1)', attrs: { ...base, density: 1 }, floats, inputs, outputs: ['O', 'layout'] },
  { name: 'density 0.3, output O only', attrs: { ...base, density: 0.3 }, floats, inputs, outputs: ['O', ''] },
];

describe('BlockSparseAttention function vs reference', () => {
  settings.forEach((s, n) =>
    it(s.name, async () => {
      const r = await checkAgreement('BlockSparseAttention', s, 1000 + n);
      console.log(`BlockSparseAttention ${s.name}: ${r.cases} cases, max relative error ${r.maxError.toExponential(2)}, ${r.redraws} redraws, ${r.emptyRows} empty rows, ${r.keptFraction === undefined ? 'layout not requested' : `${(r.keptFraction * 100).toFixed(0)}% of blocks kept`}`);
      expect(r.maxError).toBeLessThanOrEqual(TOLERANCE);
    }),
  );
});
