// Next-token metrics on logits whose KL, top-1 and perplexities are worked out by hand.
import { describe, expect, it } from 'vitest';
import { AttnpassError } from '../../src/errors.js';
import { errorOf, MetricsAccumulator } from '../../src/quality/metrics.js';

const ln = Math.log;

describe('MetricsAccumulator', () => {
  // vocab 2, tokens [0, 1, 1]: positions 0 and 1 are scored (on tokens 1 and 1), position 2 is not
  const tokens = [0, 1, 1];
  const dense = [ln(3), 0, /* p = 3/4, 1/4 */ 0, ln(3), /* p = 1/4, 3/4 */ 5, -5];
  const rewritten = [ln(2), 0, /* q = 2/3, 1/3 */ ln(3), 0, /* q = 3/4, 1/4 */ -5, 5];

  it('computes KL(dense ‖ rewritten), top-1 agreement and both perplexities', () => {
    const m = new MetricsAccumulator(2);
    m.add(dense, rewritten, tokens);
    const r = m.result();
    const kl0 = (3 / 4) * ln(9 / 8) + (1 / 4) * ln(3 / 4);
    const kl1 = (1 / 4) * ln(1 / 3) + (3 / 4) * ln(3);
    expect(r.positions).toBe(2);
    expect(r.meanKl).toBeCloseTo((kl0 + kl1) / 2, 12);
    expect(r.top1Agreement).toBe(0.5); // agree at 0 (both token 0), disagree at 1
    expect(r.perplexityDense).toBeCloseTo(Math.sqrt(4 * (4 / 3)), 12); // −ln p(1) = ln 4, then ln 4/3
    expect(r.perplexityRewritten).toBeCloseTo(Math.sqrt(3 * 4), 12); // ln 3, then ln 4
    expect(errorOf(r, 'kl')).toBe(r.meanKl);
    expect(errorOf(r, 'top1')).toBe(0.5);
  });

  it('gives KL 0 and top-1 1 for identical logits, over several windows', () => {
    const m = new MetricsAccumulator(2);
    m.add(dense, dense, tokens);
    m.add(rewritten, rewritten, tokens);
    const r = m.result();
    expect(r.positions).toBe(4);
    expect(r.meanKl).toBe(0);
    expect(r.top1Agreement).toBe(1);
    expect(r.perplexityDense).toBe(r.perplexityRewritten);
  });

  it.each([
    ['NaN in the rewritten logits', dense, [...rewritten.slice(0, 3), NaN, ...rewritten.slice(4)]],
    ['+Inf in the dense logits', [Infinity, ...dense.slice(1)], rewritten],
    ['−Inf at the unscored last position', dense, [...rewritten.slice(0, 5), -Infinity]],
  ])('throws on %s', (_what, a, b) => {
    const m = new MetricsAccumulator(2);
    expect(() => m.add(a, b, tokens)).toThrow(AttnpassError);
    expect(() => m.add(a, b, tokens)).toThrow(/non-finite/);
  });

  it('refuses logits of the wrong size and tokens outside the vocabulary', () => {
    expect(() => new MetricsAccumulator(2).add(dense.slice(2), rewritten, tokens)).toThrow(/expected 3×2 logits/);
    expect(() => new MetricsAccumulator(2).add(dense, rewritten, [0, 1, 2])).toThrow(/outside the model's vocabulary/);
    expect(() => new MetricsAccumulator(2).result()).toThrow(/no positions/);
  });
});
