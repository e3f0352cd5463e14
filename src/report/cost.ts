/**
 * Estimated attention cost of a site at a given sequence length, dense and under a rewrite's settings:
 * FLOPs of the two matrix products (Q·Kᵀ and P·V) and K/V bytes read. Prefill with S = T = seqLen,
 * batch 1. The estimates count, query by query, the keys (or pooled tiles) each operator admits under
 * kernels/OPERATORS.md's semantics, assuming uniform importance (which blocks a predictor or scorer
 * picks is unknown before run time; how many it picks is not). The FLOPs of pooling tiles and of
 * scoring blocks are left out: they are linear in the sequence, the products quadratic.
 */
import type { AttentionSite } from '../attention/site.js';

export interface SiteCost {
  flops: number;
  kvBytes: number;
}

export interface CostSettings {
  op: string;
  /**
   * the emitted node's attributes; SpanAttention also reads `span_fraction`, the share of keys inside
   * the spans fed at run time (not an attribute: the spans are an input), 0 when not given
   */
  attributes: Record<string, number>;
}

/** What the cost of a site depends on. */
export type SiteShape = Pick<AttentionSite, 'heads' | 'kvHeads' | 'headDim' | 'valueHeadDim' | 'causal'>;

const ELEMENT_BYTES = 2; // fp16/bf16 on the GPU

/** Admitted (query, key) pairs of dense attention. */
function densePairs(seqLen: number, causal: boolean): number {
  return causal ? (seqLen * (seqLen + 1)) / 2 : seqLen * seqLen;
}

/** OPERATORS.md's rounding of counts derived from fractions: half up. */
const roundHalfUp = (x: number) => Math.floor(x + 0.5);

function blockSparsePairs(a: Record<string, number>, seqLen: number, causal: boolean): number {
  const bs = Math.max(1, a.block_size ?? 64);
  const nb = Math.ceil(seqLen / bs);
  const sinks = a.sink_blocks ?? 1;
  const local = a.local_blocks ?? 1;
  let pairs = 0;
  for (let qb = 0; qb < nb; qb++) {
    const rows = Math.min(bs, seqLen - qb * bs);
    const candidates = causal ? qb + 1 : nb;
    // the diagonal block is qb (S = T); forced: sink blocks, and the local blocks up to the diagonal
    const localBlocks = Math.min(local, qb + 1);
    const sinkBlocks = Math.min(sinks, candidates);
    const forced = localBlocks + sinkBlocks - Math.max(0, sinkBlocks - (qb - localBlocks + 1));
    const kept = Math.min(candidates, Math.max(forced, Math.ceil((a.density ?? 1) * candidates)));
    if (!causal) {
      pairs += rows * kept * (seqLen / nb);
      continue;
    }
    const diagonalKept = local >= 1 || kept === candidates ? 1 : 0;
    pairs += rows * bs * (kept - diagonalKept) + (diagonalKept * rows * (rows + 1)) / 2;
  }
  return pairs;
}

function tiledPairs(a: Record<string, number>, seqLen: number, causal: boolean): number {
  const bs = Math.max(1, a.block_size ?? 64);
  const nb = Math.ceil(seqLen / bs);
  const sinks = Math.min(nb, a.sink_blocks ?? 1);
  const local = Math.max(1, a.local_blocks ?? 1);
  const nonSink = nb - sinks;
  const fine = Math.min(nonSink, roundHalfUp((a.fine_fraction ?? 1) * nb));
  const medium = Math.min(nonSink - fine, roundHalfUp((a.medium_fraction ?? 0) * nb));
  const coarse = nonSink - fine - medium;
  const mediumTiles = Math.ceil(bs / (a.medium_tile ?? 8));
  const tilesPerBlock = nonSink > 0 ? (fine * bs + medium * mediumTiles + coarse) / nonSink : 0;
  let pairs = 0;
  for (let p = 0; p < seqLen; p++) {
    const own = Math.min(Math.floor(p / bs), nb - 1);
    const exactStart = Math.max(0, own - local + 1);
    const exactKeys = (causal ? p + 1 : Math.min(seqLen, (own + 1) * bs)) - exactStart * bs;
    const tiledBlocks = causal ? exactStart : nb - (own - exactStart + 1);
    const tiledSinks = Math.min(sinks, exactStart) + (causal ? 0 : Math.max(0, sinks - own - 1));
    pairs += exactKeys + tiledSinks * bs + (tiledBlocks - tiledSinks) * tilesPerBlock;
  }
  return pairs;
}

function spanPairs(a: Record<string, number>, seqLen: number, causal: boolean): number {
  const sinks = a.sink_tokens ?? 0;
  const window = a.local_window ?? seqLen;
  const spanShare = a.span_fraction ?? 0;
  let pairs = 0;
  for (let p = 0; p < seqLen; p++) {
    // keys within the window: |p − j| < window, and j ≤ p when causal
    const lo = Math.max(0, p - window + 1);
    const hi = window <= 0 ? lo - 1 : causal ? p : Math.min(seqLen - 1, p + window - 1);
    const inWindow = Math.max(0, hi - lo + 1);
    const visible = causal ? p + 1 : seqLen;
    const sinkKeys = Math.min(sinks, lo) + (causal ? 0 : Math.max(0, Math.min(sinks, seqLen) - hi - 1));
    const rest = visible - inWindow - sinkKeys;
    pairs += inWindow + sinkKeys + spanShare * rest;
  }
  return pairs;
}

/** Fraction of dense (query, key) pairs an operator reads, at its settings (a pooled tile counts as one key). */
export function keptFraction(settings: CostSettings | undefined, seqLen: number, causal: boolean): number {
  if (!settings) return 1;
  const a = settings.attributes;
  let pairs: number;
  switch (settings.op) {
    case 'BlockSparseAttention':
      pairs = blockSparsePairs(a, seqLen, causal);
      break;
    case 'TiledAttention':
      pairs = tiledPairs(a, seqLen, causal);
      break;
    case 'SpanAttention':
      pairs = spanPairs(a, seqLen, causal);
      break;
    default:
      return 1;
  }
  return Math.min(1, pairs / densePairs(seqLen, causal));
}

export function siteCost(site: SiteShape, seqLen: number, settings?: CostSettings): SiteCost {
  const pairs = densePairs(seqLen, site.causal) * keptFraction(settings, seqLen, site.causal);
  const flops = 2 * site.heads * pairs * (site.headDim + site.valueHeadDim);
  const kvRows = seqLen * Math.min(1, keptFraction(settings, seqLen, false) || 1);
  const kvBytes = site.kvHeads * kvRows * (site.headDim + site.valueHeadDim) * ELEMENT_BYTES;
  return { flops, kvBytes };
}
