/**
 * One meaning of "density" for every operator: the fraction of dense attention FLOPs (the cost model's
 * `keptFraction`, src/report/cost.ts, prefill at the sequence length) that an operator setting spends.
 * For each pass we solve for its knob so that the cost model lands on the density asked:
 *
 * - ast: the `density` attribute with block size 64 (32 or 16 when the forced sink + local blocks alone
 *   cost more than the density at 64).
 * - att: `fine-fraction`, with `medium-fraction` equal to it (capped at 1 − fine), then `medium-fraction`
 *   trimmed to land closer; medium tiles of 8, block size 64 (32 or 16 as for ast).
 * - window: `local-window` with 4 sink tokens. A causal window of w keys costs about 2w/S − (w/S)² of
 *   dense, not w/S, since early queries see fewer than w keys anyway.
 * - span, spans 'strided' (the sweep): prefill text has nothing to retrieve, so spans are chosen by a
 *   fixed, content-blind rule: 4 sink tokens, a 64-token local window, and strided chunks of 64 tokens,
 *   every k-th chunk, covering the share of the sequence that brings the cost to the density. The spans
 *   are fed as `attnpass_spans`; the cost model is told their share (`span_fraction`).
 * - span, spans 'none' (calibrate: spans are one input shared by every layer, so the per-layer knob is
 *   the window): like window, with the model's default spans set to none.
 *
 * Density 1 is each operator's exact setting.
 */
import { fail } from '../errors.js';
import { keptFraction, type CostSettings } from '../report/cost.js';

export const SWEEP_PASSES = ['ast', 'att', 'window', 'span'] as const;
export type SweepPass = (typeof SWEEP_PASSES)[number];
export type SpanRule = 'strided' | 'none';

/** a tensor to feed, as the runner takes it (no onnxruntime import needed to make one) */
export interface Int64Feed {
  dtype: 'int64';
  dims: number[];
  data: BigInt64Array;
}

export interface DensitySetting {
  pass: SweepPass;
  /** the density asked for */
  density: number;
  /** the pass's options that may differ per layer (CLI names) */
  options: Record<string, unknown>;
  /** options of the pass as a whole (the span pass's default spans) */
  passOptions: Record<string, unknown>;
  /** inputs to feed the rewritten model (the span pass's spans) */
  feeds?: Record<string, Int64Feed>;
  /** what the cost model is told about the emitted operator */
  cost: CostSettings;
}

type Mapping = Pick<DensitySetting, 'options' | 'cost'> & Partial<Pick<DensitySetting, 'feeds' | 'passOptions'>>;

const SINK_TOKENS = 4;
const SPAN_LOCAL_WINDOW = 64;
const SPAN_CHUNK = 64;
const SPANS_INPUT = 'attnpass_spans';
/** a local window this wide covers any sequence (the window pass's exact setting) */
const WINDOW_ALL = 2 ** 30;
const BLOCK_SIZES = [64, 32, 16];

/**
 * The knob value in [lo, hi] whose cost is nearest `target`, for a cost that does not decrease with
 * the knob. Integer knobs search integers.
 */
function solveKnob(cost: (knob: number) => number, target: number, lo: number, hi: number, integer: boolean): number {
  let a = lo;
  let b = hi;
  for (let i = 0; i < 60 && (integer ? b - a > 1 : b - a > 1e-9); i++) {
    const mid = integer ? Math.floor((a + b) / 2) : (a + b) / 2;
    if (cost(mid) < target) a = mid;
    else b = mid;
  }
  const best = Math.abs(cost(a) - target) <= Math.abs(cost(b) - target) ? a : b;
  return integer ? best : plateauCentre(cost, best, lo, hi);
}

/**
 * Fractions turn into whole blocks (ceil, round), so the cost is a staircase and a searched knob ends on
 * the edge of a step, where rounding the attribute to float32 can tip it over. The middle of the step
 * costs the same and is safe.
 */
function plateauCentre(cost: (knob: number) => number, knob: number, lo: number, hi: number): number {
  const level = cost(knob);
  const edge = (inside: number, outside: number): number => {
    for (let i = 0; i < 60 && Math.abs(outside - inside) > 1e-12; i++) {
      const mid = (inside + outside) / 2;
      if (cost(mid) === level) inside = mid;
      else outside = mid;
    }
    return inside;
  };
  const left = cost(lo) === level ? lo : edge(knob, lo);
  const right = cost(hi) === level ? hi : edge(knob, hi);
  return (left + right) / 2;
}

/** The largest block size whose cheapest setting still costs no more than `density`. */
function blockSizeFor(cheapest: (blockSize: number) => number, density: number): number {
  return BLOCK_SIZES.find((bs) => cheapest(bs) <= density) ?? BLOCK_SIZES[BLOCK_SIZES.length - 1]!;
}

function astMapping(density: number, seqLen: number, causal: boolean): Mapping {
  const cost = (blockSize: number, d: number): CostSettings => ({
    op: 'BlockSparseAttention',
    attributes: { block_size: blockSize, density: Math.fround(d), mass_threshold: 0, sink_blocks: 1, local_blocks: 1 },
  });
  const blockSize = density >= 1 ? 64 : blockSizeFor((bs) => keptFraction(cost(bs, 1e-6), seqLen, causal), density);
  const d = density >= 1 ? 1 : solveKnob((x) => keptFraction(cost(blockSize, x), seqLen, causal), density, 1e-6, 1, false);
  return { options: { 'block-size': blockSize, density: d, 'mass-threshold': 0, 'sink-blocks': 1, 'local-blocks': 1 }, cost: cost(blockSize, d) };
}

function attMapping(density: number, seqLen: number, causal: boolean): Mapping {
  const cost = (blockSize: number, fine: number, medium: number): CostSettings => ({
    op: 'TiledAttention',
    attributes: { block_size: blockSize, fine_fraction: Math.fround(fine), medium_fraction: Math.fround(medium), medium_tile: 8, sink_blocks: 1, local_blocks: 1 },
  });
  const options = (blockSize: number, fine: number, medium: number) => ({
    options: { 'block-size': blockSize, 'fine-fraction': fine, 'medium-fraction': medium, 'medium-tile': 8, 'sink-blocks': 1, 'local-blocks': 1 },
    cost: cost(blockSize, fine, medium),
  });
  if (density >= 1) return options(64, 1, 0);
  const blockSize = blockSizeFor((bs) => keptFraction(cost(bs, 0, 0), seqLen, causal), density);
  const paired = (fine: number) => Math.min(fine, 1 - fine);
  const fine = solveKnob((f) => keptFraction(cost(blockSize, f, paired(f)), seqLen, causal), density, 0, 1, false);
  // fine and medium move in steps of whole blocks; trimming medium alone lands between those steps
  const medium = solveKnob((m) => keptFraction(cost(blockSize, fine, m), seqLen, causal), density, 0, 1 - fine, false);
  return options(blockSize, fine, medium);
}

function windowMapping(density: number, seqLen: number, causal: boolean): Mapping {
  const cost = (window: number): CostSettings => ({ op: 'SpanAttention', attributes: { sink_tokens: SINK_TOKENS, local_window: window } });
  const window = density >= 1 ? WINDOW_ALL : solveKnob((w) => keptFraction(cost(w), seqLen, causal), density, 1, seqLen, true);
  return { options: { 'sink-tokens': SINK_TOKENS, 'local-window': window }, cost: cost(window) };
}

/** Chunks [c·chunk, (c+1)·chunk) for an evenly spread fraction of the chunk indices. */
export function stridedSpans(seqLen: number, fraction: number, chunk = SPAN_CHUNK): Array<[number, number]> {
  const chunks = Math.ceil(seqLen / chunk);
  const spans: Array<[number, number]> = [];
  for (let c = 0; c < chunks; c++) {
    if (Math.floor((c + 1) * fraction + 1e-9) > Math.floor(c * fraction + 1e-9)) spans.push([c * chunk, Math.min(seqLen, (c + 1) * chunk)]);
  }
  return spans;
}

function spansFeed(spans: Array<[number, number]>): Record<string, Int64Feed> {
  return { [SPANS_INPUT]: { dtype: 'int64', dims: [1, spans.length, 2], data: BigInt64Array.from(spans.flat(), (x) => BigInt(x)) } };
}

function stridedSpanMapping(density: number, seqLen: number, causal: boolean): Mapping {
  const covered = (f: number) => stridedSpans(seqLen, f).reduce((n, [a, b]) => n + b - a, 0) / seqLen;
  const cost = (f: number): CostSettings => ({
    op: 'SpanAttention',
    attributes: { sink_tokens: SINK_TOKENS, local_window: SPAN_LOCAL_WINDOW, span_fraction: covered(f) },
  });
  const f = density >= 1 ? 1 : solveKnob((x) => keptFraction(cost(x), seqLen, causal), density, 0, 1, false);
  return {
    options: { 'sink-tokens': SINK_TOKENS, 'local-window': SPAN_LOCAL_WINDOW },
    passOptions: { 'default-spans': 'none' },
    feeds: spansFeed(stridedSpans(seqLen, f)),
    cost: cost(f),
  };
}

/**
 * The options (and feeds) under which `pass` spends `density` of dense attention FLOPs at `seqLen`.
 * `spans` says what the span pass reads besides its window (see the top of this file).
 */
export function settingForDensity(pass: string, density: number, seqLen: number, causal = true, spans: SpanRule = 'strided'): DensitySetting {
  if (!(density > 0 && density <= 1)) fail('usage', `a density must lie in (0, 1]; got ${density}.`);
  if (!Number.isInteger(seqLen) || seqLen < 2) fail('usage', `the sequence length must be an integer ≥ 2; got ${seqLen}.`);
  let mapping: Mapping;
  switch (pass) {
    case 'ast':
      mapping = astMapping(density, seqLen, causal);
      break;
    case 'att':
      mapping = attMapping(density, seqLen, causal);
      break;
    case 'window':
      mapping = windowMapping(density, seqLen, causal);
      break;
    case 'span':
      mapping = spans === 'strided' ? stridedSpanMapping(density, seqLen, causal) : { ...windowMapping(density, seqLen, causal), passOptions: { 'default-spans': 'none' } };
      break;
    default:
      fail('usage', `densities map to the options of ${SWEEP_PASSES.join(', ')}; got pass '${pass}'.`);
  }
  return { pass, density, passOptions: {}, ...mapping };
}
