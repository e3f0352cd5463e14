/** What the report page shows, as plain data: html.ts renders it, index.ts gathers it. */
import type { QualityMetrics, SweepPoint } from '../quality/index.js';
import type { SiteCost } from './cost.js';
import type { Palette } from './palette.js';

export interface Picture {
  /** file name in the folder beside the page */
  file: string;
  title: string;
  /** the encoded PNG (written to `file`, and inline in `svg`) and its size */
  png: Uint8Array;
  width: number;
  height: number;
  /** the figure: the PNG with axes */
  svg: string;
  /** one line of numbers under the figure */
  stats: string;
}

export interface Legend {
  palette: Palette;
  /** a sequential scale shown too (e.g. TiledAttention's block importance strip) */
  scale?: { label: string; low: string; high: string };
}

export interface LayerSection {
  layer: number;
  site: string;
  /** heads, head dim, causality, as one line */
  shape: string;
  /** the attnpass operator that replaced the site, or null when the site stayed dense */
  op: string | null;
  node?: string;
  attributes: Record<string, number>;
  cost: { dense: SiteCost; rewritten: SiteCost };
  legend?: Legend;
  pictures: Picture[];
  notes: string[];
}

export interface ReportData {
  original: string;
  rewritten: string;
  generator: string;
  evaluation: {
    source: string;
    /** true when no text was given and the window is generated */
    synthetic: boolean;
    seqLen: number;
    windows: number;
  };
  /** the rewritten model against the original on the evaluation windows */
  quality?: QualityMetrics;
  sweep: { points: SweepPoint[] } | { skipped: string };
  totals: { denseFlops: number; rewrittenFlops: number; denseKvBytes: number; rewrittenKvBytes: number };
  layers: LayerSection[];
  unproven: Array<{ anchor: string; reason: string }>;
}
