/**
 * Next-token metrics of a rewritten model against the dense one, accumulated window by window:
 * mean KL(p_dense ‖ p_rewritten) in nats, top-1 agreement, and each model's perplexity on the true
 * next token. Softmax in float64. A position counts when its next token is known (all but the last).
 */
import { fail } from '../errors.js';

export interface QualityMetrics {
  /** positions compared (windows × (seqLen − 1)) */
  positions: number;
  /** fraction of positions where both models' argmax agree */
  top1Agreement: number;
  /** mean over positions of KL(p_dense ‖ p_rewritten), nats */
  meanKl: number;
  perplexityDense: number;
  perplexityRewritten: number;
}

/** Throws on NaN or ±Inf anywhere in the logits (the last position too, though it is not scored). */
function assertFinite(logits: ArrayLike<number>, vocab: number, what: string): void {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]!)) {
      fail('verify-failed', `${what}: the logit at position ${Math.floor(i / vocab)}, token ${i % vocab} is ${logits[i]}; a model with non-finite outputs has no measurable quality.`);
    }
  }
}

/** log-softmax of one row of finite logits, in float64; returns the argmax (the first, on ties). */
function logSoftmax(logits: ArrayLike<number>, offset: number, vocab: number, out: Float64Array): number {
  let max = -Infinity;
  let argmax = 0;
  for (let j = 0; j < vocab; j++) {
    const x = logits[offset + j]!;
    if (x > max) (max = x), (argmax = j);
  }
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j]! - max);
  const logZ = max + Math.log(sum);
  for (let j = 0; j < vocab; j++) out[j] = logits[offset + j]! - logZ;
  return argmax;
}

export class MetricsAccumulator {
  private positions = 0;
  private agree = 0;
  private klSum = 0;
  private nllDense = 0;
  private nllRewritten = 0;
  private readonly lpDense: Float64Array;
  private readonly lpRewritten: Float64Array;

  constructor(readonly vocab: number) {
    if (!Number.isInteger(vocab) || vocab < 2) fail('usage', `logits need a vocabulary of at least 2 entries; got ${vocab}.`);
    this.lpDense = new Float64Array(vocab);
    this.lpRewritten = new Float64Array(vocab);
  }

  /**
   * One window: `dense` and `rewritten` are [seqLen, vocab] logits for `tokens` (seqLen ids).
   * Position t is scored on tokens[t + 1].
   */
  add(dense: ArrayLike<number>, rewritten: ArrayLike<number>, tokens: ArrayLike<number>, label = 'window'): void {
    const v = this.vocab;
    const seqLen = tokens.length;
    if (dense.length !== seqLen * v || rewritten.length !== seqLen * v) {
      fail('verify-failed', `${label}: expected ${seqLen}×${v} logits from each model; got ${dense.length} (dense) and ${rewritten.length} (rewritten).`);
    }
    assertFinite(dense, v, `${label}, dense model`);
    assertFinite(rewritten, v, `${label}, rewritten model`);
    for (let t = 0; t + 1 < seqLen; t++) {
      const next = tokens[t + 1]!;
      if (next < 0 || next >= v) fail('usage', `${label}: token ${next} at position ${t + 1} is outside the model's vocabulary of ${v}.`);
      const ia = logSoftmax(dense, t * v, v, this.lpDense);
      const ib = logSoftmax(rewritten, t * v, v, this.lpRewritten);
      let kl = 0;
      for (let j = 0; j < v; j++) {
        const lp = this.lpDense[j]!;
        kl += Math.exp(lp) * (lp - this.lpRewritten[j]!);
      }
      this.klSum += Math.max(0, kl); // rounding can leave a tiny negative KL for identical rows
      if (ia === ib) this.agree++;
      this.nllDense -= this.lpDense[next]!;
      this.nllRewritten -= this.lpRewritten[next]!;
      this.positions++;
    }
  }

  result(): QualityMetrics {
    const n = this.positions;
    if (n === 0) fail('usage', 'no positions were compared: give windows of at least 2 tokens.');
    return {
      positions: n,
      top1Agreement: this.agree / n,
      meanKl: this.klSum / n,
      perplexityDense: Math.exp(this.nllDense / n),
      perplexityRewritten: Math.exp(this.nllRewritten / n),
    };
  }
}

/** The error calibrate holds under a target: mean KL, or the top-1 disagreement rate. */
export type ErrorMetric = 'kl' | 'top1';

export function errorOf(metrics: QualityMetrics, metric: ErrorMetric): number {
  return metric === 'kl' ? metrics.meanKl : 1 - metrics.top1Agreement;
}
