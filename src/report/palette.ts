/**
 * The colours of the report's pictures: one categorical palette per operator (each cell of a layout
 * picture is one category) and a sequential map for scores. The page draws a legend from the same data.
 */
export type Rgb = readonly [number, number, number];

export interface Category {
  /** short label in the legend */
  label: string;
  color: Rgb;
  /** what the category means, for the legend's tooltip and text */
  meaning: string;
}

export type Palette = readonly Category[];

const HIDDEN: Category = { label: 'not visible', color: [242, 242, 242], meaning: 'after the query (causal): never read' };

/** BlockSparseAttention: a query block × key block cell. */
export const BLOCK_SPARSE = {
  hidden: 0,
  dropped: 1,
  forced: 2,
  chosen: 3,
} as const;
export const BLOCK_SPARSE_PALETTE: Palette = [
  HIDDEN,
  { label: 'dropped', color: [201, 211, 224], meaning: 'a candidate key block the predictor did not keep' },
  { label: 'kept: sink / local', color: [224, 123, 57], meaning: 'kept always (sink blocks, blocks up to the diagonal)' },
  { label: 'kept: top score', color: [31, 95, 168], meaning: 'kept because its pooled score q̄·k̄ ranks among the top' },
];

/** TiledAttention: how a query block reads a key block. */
export const TILED = {
  hidden: 0,
  exact: 1,
  fine: 2,
  medium: 3,
  summary: 4,
} as const;
export const TILED_PALETTE: Palette = [
  HIDDEN,
  { label: 'exact (own / local)', color: [106, 61, 154], meaning: "the query's own block and its local blocks, read token by token whatever their level" },
  { label: 'fine', color: [31, 95, 168], meaning: 'an important block kept at token resolution' },
  { label: 'medium tiles', color: [79, 163, 217], meaning: 'pooled into tiles of medium_tile tokens (mean key and value, bias ln n)' },
  { label: 'summary', color: [207, 227, 241], meaning: 'the whole block pooled into one tile (mean key and value, bias ln n)' },
];

/** SpanAttention: a query × key cell. */
export const SPAN = {
  hidden: 0,
  skipped: 1,
  sink: 2,
  local: 3,
  span: 4,
} as const;
export const SPAN_PALETTE: Palette = [
  HIDDEN,
  { label: 'not read', color: [201, 211, 224], meaning: 'visible but outside the sinks, the local window and every span' },
  { label: 'sink', color: [224, 123, 57], meaning: 'one of the first sink_tokens keys' },
  { label: 'local window', color: [106, 61, 154], meaning: 'within local_window of the query' },
  { label: 'fed span', color: [31, 95, 168], meaning: 'inside a span of the attnpass_spans input (its default when not fed)' },
];

// viridis, sampled at 9 stops
const SEQUENTIAL_STOPS: Rgb[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Colour of t ∈ [0, 1] on the sequential map (low dark, high bright). */
export function sequential(t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (SEQUENTIAL_STOPS.length - 1);
  const i = Math.min(SEQUENTIAL_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [SEQUENTIAL_STOPS[i]!, SEQUENTIAL_STOPS[i + 1]!];
  return [0, 1, 2].map((c) => Math.round(a[c]! + f * (b[c]! - a[c]!))) as unknown as Rgb;
}

/** CSS colours for the sequential map's legend gradient. */
export function sequentialGradientStops(): string[] {
  return SEQUENTIAL_STOPS.map(hex);
}

export function hex(c: Rgb): string {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** A few distinct line colours for charts (one per series). */
export const SERIES_COLORS = ['#1f5fa8', '#e07b39', '#3a9a4f', '#6a3d9a', '#c0392b', '#7f7f7f'] as const;
