/** A model's attention cost under per-layer operator settings, relative to dense (the cost model's estimate). */
import type { AttentionSiteSummary } from '../attention-report.js';
import { siteCost, type CostSettings } from '../report/cost.js';

export interface RelativeCost {
  relativeFlops: number;
  relativeKvBytes: number;
}

/** Relative cost of the model when each layer's site runs with `settingsOf(layer)` (undefined: dense). */
export function relativeCost(sites: readonly AttentionSiteSummary[], settingsOf: (layer: number) => CostSettings | undefined, seqLen: number): RelativeCost {
  let dense = { flops: 0, kvBytes: 0 };
  let rewritten = { flops: 0, kvBytes: 0 };
  for (const site of sites) {
    const d = siteCost(site, seqLen);
    const r = siteCost(site, seqLen, settingsOf(site.layer));
    dense = { flops: dense.flops + d.flops, kvBytes: dense.kvBytes + d.kvBytes };
    rewritten = { flops: rewritten.flops + r.flops, kvBytes: rewritten.kvBytes + r.kvBytes };
  }
  return { relativeFlops: rewritten.flops / dense.flops, relativeKvBytes: rewritten.kvBytes / dense.kvBytes };
}
