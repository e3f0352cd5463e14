/**
 * Estimated attention cost of a site at a given sequence length, dense and under a rewrite's settings:
 * FLOPs of the two matrix products (Q·Kᵀ and P·V) and K/V bytes read. Prefill with S = T = seqLen,
 * batch 1; the estimates follow kernels/OPERATORS.md's semantics with uniform importance.
 */
import type { AttentionSite } from '../attention/site.js';

export interface SiteCost {
  flops: number;
  kvBytes: number;
}

export interface CostSettings {
  op: string;
  attributes: Record<string, number>;
}

const ELEMENT_BYTES = 2; // fp16/bf16 on the GPU

/** Admitted (query, key) pairs of dense attention. */
function densePairs(seqLen: number, causal: boolean): number {
  return causal ? (seqLen * (seqLen + 1)) / 2 : seqLen * seqLen;
}

/** Fraction of dense (query, key) pairs an operator reads, at its settings. */
export function keptFraction(settings: CostSettings | undefined, seqLen: number, causal: boolean): number {
  if (!settings) return 1;
  const a = settings.attributes;
  const dense = densePairs(seqLen, causal);
  switch (settings.op) {
    case 'BlockSparseAttention': {
      const bs = Math.max(1, a.block_size ?? 64);
      const nb = Math.ceil(seqLen / bs);
      let kept = 0;
      for (let qb = 0; qb < nb; qb++) {
        const candidates = causal ? qb + 1 : nb;
        const forced = Math.min(candidates, (a.sink_blocks ?? 1) + (a.local_blocks ?? 1));
        const blocks = Math.max(forced, Math.ceil((a.density ?? 1) * candidates));
        kept += (Math.min(candidates, blocks) - (causal ? 0.5 : 0)) * bs * bs;
      }
      return Math.min(1, kept / dense);
    }
    case 'TiledAttention': {
      const bs = Math.max(1, a.block_size ?? 64);
      const nb = Math.ceil(seqLen / bs);
      const fine = a.fine_fraction ?? 1;
      const medium = a.medium_fraction ?? 0;
      const tilesPerBlock = fine * bs + medium * (bs / (a.medium_tile ?? 8)) + (1 - fine - medium) * 1;
      const reduced = (tilesPerBlock / bs) * (nb - (a.local_blocks ?? 1)) * bs + (a.local_blocks ?? 1) * bs;
      return Math.min(1, (reduced * seqLen * (causal ? 0.5 : 1)) / dense);
    }
    case 'SpanAttention': {
      const window = Math.min(seqLen, (a.sink_tokens ?? 0) + (a.local_window ?? seqLen));
      const spanShare = a.span_fraction ?? 0;
      const perQuery = Math.min(seqLen, window + spanShare * seqLen);
      return Math.min(1, (perQuery * seqLen * (causal ? 0.5 : 1)) / dense + 0);
    }
    default:
      return 1;
  }
}

export function siteCost(site: AttentionSite, seqLen: number, settings?: CostSettings): SiteCost {
  const pairs = densePairs(seqLen, site.causal) * keptFraction(settings, seqLen, site.causal);
  const flops = 2 * site.heads * pairs * (site.headDim + site.valueHeadDim);
  const kvRows = seqLen * Math.min(1, keptFraction(settings, seqLen, false) || 1);
  const kvBytes = site.kvHeads * kvRows * (site.headDim + site.valueHeadDim) * ELEMENT_BYTES;
  return { flops, kvBytes };
}
