/**
 * Attention written the ways exporters write it (small synthetic graphs): each is proven with the right
 * facts, and splicing a reference attention through the site contract leaves the model's outputs unchanged
 * (onnxruntime, random inputs, 1e-4).
 */
import { describe, expect, it } from 'vitest';
import { eagerAttention, valueInfo, type EagerOptions } from './graphs.js';
import { spliceAndCompare } from './support-run.js';

interface Row {
  name: string;
  opts: EagerOptions;
  expect: { heads: number; kvHeads: number; headDim: number; scale: number; causal: boolean; slidingWindow?: number; rule?: RegExp; cache?: boolean };
}

const s8 = 1 / Math.sqrt(8);
const rows: Row[] = [
  { name: 'Div by √d after the MatMul (legacy eager)', opts: { scale: 'div', mask: 'padding' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: false } },
  { name: 'Mul by 1/√d', opts: { scale: 'mul', mask: 'causal' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true } },
  { name: '√s on Q and on Kᵀ (dynamo SDPA)', opts: { scale: 'split', mask: 'causal-padding', nanGuard: true }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true, rule: /split-scale.*nan-guard/ } },
  { name: 'scale on the Q projection (OPT), 3-D bmm', opts: { scale: 'qproj', layout: 'bmm3d', mask: 'causal' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true, rule: /bmm3d/ } },
  { name: 'scale computed from Shape(v) at run time', opts: { scale: 'dynamic', mask: 'causal' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true } },
  { name: 'no scale (T5)', opts: { scale: 'none', mask: 'padding' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: 1, causal: false } },
  { name: 'GQA repeat with Unsqueeze/Expand/Reshape', opts: { heads: 4, kvHeads: 2, mask: 'causal-padding' }, expect: { heads: 4, kvHeads: 2, headDim: 8, scale: s8, causal: true, rule: /gqa-repeat/ } },
  { name: 'GQA repeat with Gather (index_select)', opts: { heads: 4, kvHeads: 2, gqa: 'gather', mask: 'causal' }, expect: { heads: 4, kvHeads: 2, headDim: 8, scale: s8, causal: true, rule: /gqa-repeat/ } },
  { name: 'MQA broadcast in the MatMul', opts: { heads: 4, kvHeads: 1, gqa: 'broadcast', mask: 'causal' }, expect: { heads: 4, kvHeads: 1, headDim: 8, scale: s8, causal: true } },
  { name: 'KV cache Concat of past and new', opts: { heads: 4, kvHeads: 2, cache: true, mask: 'causal-padding' }, expect: { heads: 4, kvHeads: 2, headDim: 8, scale: s8, causal: true, cache: true } },
  { name: 'K·Qᵀ then transposed', opts: { layout: 'kq', mask: 'causal' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true } },
  { name: 'Trilu causal mask, 0/-inf (torchlib SDPA is_causal) with the NaN guard', opts: { scale: 'split', mask: 'trilu', nanGuard: true }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true } },
  { name: 'Casts around the softmax', opts: { castSoftmax: true, mask: 'padding' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: false } },
  { name: 'sliding window in the mask', opts: { mask: 'window', window: 3 }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: true, slidingWindow: 3 } },
  { name: 'ALiBi-style [B·H, 1, T] bias on 3-D scores', opts: { layout: 'bmm3d', mask: 'alibi' }, expect: { heads: 2, kvHeads: 2, headDim: 8, scale: s8, causal: false } },
];

describe('eager attention forms', () => {
  it.each(rows)('$name', async (row) => {
    const proto = eagerAttention(row.opts);
    const sizes = { batch: 2, seq: 5, past: 3, total: row.opts.cache ? 8 : 5 };
    const { detection, diff } = await spliceAndCompare(proto, sizes);
    expect(detection.unproven).toEqual([]);
    expect(detection.sites).toHaveLength(1);
    const s = detection.sites[0]!;
    expect({ heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim, causal: s.causal }).toEqual({ heads: row.expect.heads, kvHeads: row.expect.kvHeads, headDim: row.expect.headDim, causal: row.expect.causal });
    expect(s.scale).toBeCloseTo(row.expect.scale, 6);
    expect(s.slidingWindow).toBe(row.expect.slidingWindow);
    if (row.expect.rule) expect(s.rule).toMatch(row.expect.rule);
    if (row.expect.cache) {
      expect(s.kvCache?.pastKey?.name).toBe('past_key');
      expect(s.kvCache?.presentKey?.name).toBe('present_key');
    }
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('a result appended at the end of the graph is put back in order by replaceOutput', async () => {
    const { detection, diff } = await spliceAndCompare(eagerAttention({ heads: 4, kvHeads: 2, cache: true, mask: 'causal-padding' }), { batch: 2, seq: 5, past: 3, total: 8 }, { append: true });
    expect(detection.sites).toHaveLength(1);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('a static-shape export (no symbolic dims) is proven the same way', async () => {
    const proto = eagerAttention({ heads: 4, kvHeads: 2, mask: 'causal' });
    proto.graph!.input = proto.graph!.input!.map((vi) => {
      const t = vi.type!.tensorType!;
      return valueInfo(vi.name!, t.elemType!, t.shape!.dim!.map((d) => (d.dimParam ? (d.dimParam === 'batch' ? 1 : 6) : Number(d.dimValue))));
    });
    proto.graph!.output = proto.graph!.output!.map((vi) => valueInfo(vi.name!, 1, [1, 6, 32]));
    const { detection, diff } = await spliceAndCompare(proto, {});
    expect(detection.sites.map((s) => [s.heads, s.kvHeads, s.causal])).toEqual([[4, 2, true]]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });
});
