/** Comparing a rewritten model with the original on text windows: next-token metrics over every window. */
import { MetricsAccumulator, type QualityMetrics } from './metrics.js';
import { LogitsRunner, type Feeds } from './runner.js';

export interface CompareOptions {
  /** extra inputs, given to whichever model takes them (e.g. `attnpass_spans` of a span-converted model) */
  feeds?: Feeds;
  progress?: (done: number, total: number) => void;
}

/** Dense logits of each window, computed once and reused against many rewritten models. */
export class DenseReference {
  private constructor(
    readonly windows: Int32Array[],
    readonly logits: Float32Array[],
    readonly vocab: number,
  ) {}

  static async compute(modelPath: string, windows: Int32Array[], options: CompareOptions = {}): Promise<DenseReference> {
    const runner = await LogitsRunner.open(modelPath, options.feeds);
    try {
      const logits: Float32Array[] = [];
      let vocab = 0;
      for (const [i, w] of windows.entries()) {
        const out = await runner.logits(w);
        logits.push(out.data);
        vocab = out.vocab;
        options.progress?.(i + 1, windows.length);
      }
      return new DenseReference(windows, logits, vocab);
    } finally {
      await runner.release();
    }
  }

  async compare(rewrittenPath: string, options: CompareOptions = {}): Promise<QualityMetrics> {
    const runner = await LogitsRunner.open(rewrittenPath, options.feeds);
    try {
      const metrics = new MetricsAccumulator(this.vocab);
      for (const [i, w] of this.windows.entries()) {
        const out = await runner.logits(w);
        metrics.add(this.logits[i]!, out.data, w, `window ${i}`);
        options.progress?.(i + 1, this.windows.length);
      }
      return metrics.result();
    } finally {
      await runner.release();
    }
  }
}

export async function compareOnText(originalPath: string, rewrittenPath: string, windows: Int32Array[], options: CompareOptions = {}): Promise<QualityMetrics> {
  const total = 2 * windows.length;
  const dense = await DenseReference.compute(originalPath, windows, { feeds: options.feeds, progress: options.progress && ((done) => options.progress!(done, total)) });
  return dense.compare(rewrittenPath, { feeds: options.feeds, progress: options.progress && ((done) => options.progress!(windows.length + done, total)) });
}
