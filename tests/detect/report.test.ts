/** The inspect integration: plain-JSON sites and a per-layer table. */
import { describe, expect, it } from 'vitest';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { describeAttention, formatAttention } from '../../src/attention-report.js';
import { eagerAttention } from './graphs.js';

function describe_(proto: ReturnType<typeof eagerAttention>) {
  const m = Model.lift(proto);
  inferModel(m);
  return describeAttention(m);
}

describe('describeAttention / formatAttention', () => {
  it('gives plain JSON per site and a table row per layer', () => {
    const d = describe_(eagerAttention({ heads: 4, kvHeads: 2, cache: true, mask: 'causal-padding' }));
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d.unprovenSites).toEqual([]);
    expect(d.attentionSites).toHaveLength(1);
    expect(d.attentionSites[0]).toMatchObject({
      id: 'layer0.self',
      layer: 0,
      kind: 'self',
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      valueHeadDim: 8,
      causal: true,
      slidingWindow: null,
      mask: { kind: 'additive', source: 'attention_mask', keyPadding: 'attention_mask', impliedByCausal: false },
      kvCache: { pastKey: 'past_key', pastValue: 'past_value', presentKey: 'present_key', presentValue: 'present_value' },
      rule: 'softmax-chain/gqa-repeat',
      anchor: expect.stringMatching(/^Softmax '/),
    });
    expect(d.attentionSites[0]!.scale).toBeCloseTo(1 / Math.sqrt(8), 6);
    expect(d.attentionSites[0]!.replacedNodes).toBeGreaterThan(3);
    const text = formatAttention(d);
    expect(text.split('\n')[0]).toBe('attention    1 site(s)');
    expect(text).toMatch(/layer\s+kind\s+heads\s+kv\s+dim\s+scale\s+causal\s+window\s+mask\s+cache\s+rule/);
    expect(text).toMatch(/0\s+self\s+4\s+2\s+8\s+0\.353553\s+yes\s+-\s+additive ← attention_mask\s+past\+present\s+softmax-chain\/gqa-repeat/);
  });

  it('lists unproven anchors with their reasons', () => {
    const d = describe_(eagerAttention({ mask: 'input-rank5' }));
    expect(d.attentionSites).toEqual([]);
    expect(d.unprovenSites).toHaveLength(1);
    const text = formatAttention(d);
    expect(text).toMatch(/^attention {4}0 site\(s\), 1 unproven/);
    expect(text).toMatch(/unproven \(left dense\)\n {2}Softmax '.*rank 5/);
  });
});
