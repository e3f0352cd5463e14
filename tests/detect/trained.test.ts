/**
 * The trained byte-level model (fixtures/trained, made by fixtures/train_tiny_lm.py): its four attention
 * layers are found with the exporting config's geometry, and the model predicts its held-back text far
 * better than chance — proof that the quality measurements run on a model that learned something.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openModel } from '../../src/index.js';
import { inferModel } from '../../src/ir/infer.js';
import { detectAttention } from '../../src/attention/detect.js';

const dir = join(import.meta.dirname, '../../fixtures/trained');
const present = existsSync(join(dir, 'model.onnx'));

describe.skipIf(!present)('fixtures/trained', () => {
  const meta = present ? JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) : {};

  it('has one proven site per layer with the config heads, kv heads, head dim, scale and causal flag', () => {
    const model = openModel(join(dir, 'model.onnx'));
    inferModel(model);
    const { sites, unproven } = detectAttention(model);
    expect(unproven).toEqual([]);
    expect(sites.length).toBe(meta.config.num_hidden_layers);
    for (const site of sites) {
      expect(site.heads).toBe(meta.config.num_attention_heads);
      expect(site.kvHeads).toBe(meta.config.num_key_value_heads);
      expect(site.headDim).toBe(meta.config.head_dim);
      expect(site.scale).toBeCloseTo(1 / Math.sqrt(meta.config.head_dim), 6);
      expect(site.causal).toBe(true);
      expect(site.kind).toBe('self');
    }
  });

  it('learned its text: evaluation loss well under the 8 bits/byte of chance, and ONNX matches PyTorch', () => {
    expect(meta.evaluation.bits_per_byte).toBeLessThan(1.5);
    expect(meta.onnx_check.max_abs_diff_vs_torch).toBeLessThan(1e-3);
    expect(readFileSync(join(dir, 'eval.bin')).length).toBe(meta.evaluation.eval_bin_bytes);
  });
});
