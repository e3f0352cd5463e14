/**
 * A heatmap figure: the PNG (inline, as a data: URI) inside an SVG that draws the axes, their titles
 * and tick labels, so the picture reads without knowing the grid's conventions.
 */
import { esc } from './markup.js';
import { pngDataUri } from './png.js';

export interface Axis {
  title: string;
  /** cells along the axis and their size in image pixels */
  cells: number;
  cellPx: number;
  /** label of cell i (e.g. a block index, or its first token) */
  label(i: number): string;
}

export interface HeatmapFigure {
  png: Uint8Array;
  width: number;
  height: number;
  /** the grid's first image row (a strip may sit above it) */
  gridTop: number;
  x: Axis;
  y: Axis;
  /** a label for the strip above the grid, drawn to its left */
  stripLabel?: string;
  /** text for screen readers and the image's tooltip */
  alt: string;
}

const MARGIN = { left: 58, top: 6, right: 10, bottom: 42 };
const MIN_TICK_GAP = 26;

/** Every k-th cell gets a tick, k the smallest of 1, 2, 4, 5, 10, … that keeps ticks `MIN_TICK_GAP` pixels apart. */
function tickStep(cellPx: number): number {
  for (const base of [1, 2, 4, 5]) for (let m = 1; m <= 1e6; m *= 10) if (base * m * cellPx >= MIN_TICK_GAP) return base * m;
  return 1;
}

function ticks(axis: Axis): Array<{ at: number; label: string }> {
  const step = tickStep(axis.cellPx);
  const out: Array<{ at: number; label: string }> = [];
  for (let i = 0; i < axis.cells; i += step) out.push({ at: (i + 0.5) * axis.cellPx, label: axis.label(i) });
  return out;
}

export function heatmapSvg(f: HeatmapFigure): string {
  // wide enough for the x axis title under a narrow picture (about 6.5 pixels a character at 11 px)
  const w = Math.max(MARGIN.left + f.width + MARGIN.right, MARGIN.left + Math.ceil(f.x.title.length * 6.5) + MARGIN.right);
  const h = MARGIN.top + f.height + MARGIN.bottom;
  const gridTop = MARGIN.top + f.gridTop;
  const gridBottom = MARGIN.top + f.height;
  const parts = [
    `<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(f.alt)}">`,
    `<title>${esc(f.alt)}</title>`,
    `<image x="${MARGIN.left}" y="${MARGIN.top}" width="${f.width}" height="${f.height}" href="${pngDataUri(f.png)}" style="image-rendering:pixelated"/>`,
    `<rect x="${MARGIN.left - 0.5}" y="${gridTop - 0.5}" width="${f.width + 1}" height="${f.height - f.gridTop + 1}" fill="none" stroke="#888"/>`,
  ];
  for (const t of ticks(f.x)) {
    const x = MARGIN.left + t.at;
    parts.push(`<line x1="${x}" y1="${gridBottom}" x2="${x}" y2="${gridBottom + 4}" stroke="#555"/>`, `<text x="${x}" y="${gridBottom + 15}" text-anchor="middle">${esc(t.label)}</text>`);
  }
  for (const t of ticks(f.y)) {
    const y = gridTop + t.at;
    parts.push(`<line x1="${MARGIN.left - 4}" y1="${y}" x2="${MARGIN.left}" y2="${y}" stroke="#555"/>`, `<text x="${MARGIN.left - 7}" y="${y + 4}" text-anchor="end">${esc(t.label)}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + f.width / 2}" y="${h - 6}" text-anchor="middle" class="axis-title">${esc(f.x.title)}</text>`);
  const yMid = (gridTop + gridBottom) / 2;
  parts.push(`<text transform="translate(14 ${yMid}) rotate(-90)" text-anchor="middle" class="axis-title">${esc(f.y.title)}</text>`);
  if (f.stripLabel && f.gridTop > 0) parts.push(`<text x="${MARGIN.left - 7}" y="${MARGIN.top + f.gridTop / 2 + 2}" text-anchor="end" class="strip-label">${esc(f.stripLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
