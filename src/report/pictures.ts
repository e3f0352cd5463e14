/** Layout data (layouts.ts) → pictures: coloured PNG grids framed by axes, with a line of numbers each. */
import type { Picture } from './data.js';
import { heatmapSvg, type Axis } from './figure.js';
import type { BlockSparseHeadLayout, CategoryGrid, SpanLayout, TiledGroupLayout } from './layouts.js';
import { percent } from './markup.js';
import { BLOCK_SPARSE, BLOCK_SPARSE_PALETTE, SPAN, SPAN_PALETTE, TILED, TILED_PALETTE, sequential, type Palette, type Rgb } from './palette.js';
import { encodePng, type RgbaImage } from './png.js';
import { cellSize, gridImage, stackImages } from './raster.js';

const LINES: Rgb = [255, 255, 255];
const STRIP_HEIGHT = 12;
const STRIP_GAP = 4;

function categoryImage(grid: CategoryGrid, palette: Palette, cell: number): RgbaImage {
  return gridImage({ rows: grid.rows, cols: grid.cols, cellWidth: cell, cellHeight: cell, colorAt: (r, c) => palette[grid.cells[r * grid.cols + c]!]!.color, lines: LINES });
}

function blockAxis(title: string, cells: number, cellPx: number): Axis {
  return { title, cells, cellPx, label: (i) => String(i) };
}

function picture(file: string, title: string, image: RgbaImage, gridTop: number, x: Axis, y: Axis, stats: string, stripLabel?: string): Picture {
  const png = encodePng(image);
  return { file, title, png, width: image.width, height: image.height, stats, svg: heatmapSvg({ png, width: image.width, height: image.height, gridTop, x, y, stripLabel, alt: `${title}: ${stats}` }) };
}

function count(grid: CategoryGrid, category: number): number {
  let n = 0;
  for (const c of grid.cells) if (c === category) n++;
  return n;
}

export function blockSparsePictures(layer: number, heads: readonly BlockSparseHeadLayout[], blockSize: number): Picture[] {
  return heads.map((h) => {
    const cell = cellSize(Math.max(h.grid.rows, h.grid.cols), 384, 48);
    const forced = count(h.grid, BLOCK_SPARSE.forced);
    const chosen = count(h.grid, BLOCK_SPARSE.chosen);
    const stats = `blocks of ${blockSize} tokens; kept ${h.kept} of ${h.candidates} candidate blocks (${percent(h.candidates ? h.kept / h.candidates : 1)}): ${forced} sink/local, ${chosen} by score`;
    return picture(
      `layer${layer}-head${h.head}-blocks.png`,
      `head ${h.head}`,
      categoryImage(h.grid, BLOCK_SPARSE_PALETTE, cell),
      0,
      blockAxis('key block', h.grid.cols, cell),
      blockAxis('query block', h.grid.rows, cell),
      stats,
    );
  });
}

export function tiledPictures(layer: number, groups: readonly TiledGroupLayout[], blockSize: number): Picture[] {
  return groups.map((g) => {
    const cell = cellSize(Math.max(g.grid.rows, g.grid.cols), 384, 48);
    const lo = Math.min(...g.importance);
    const hi = Math.max(...g.importance);
    const strip = gridImage({ rows: 1, cols: g.grid.cols, cellWidth: cell, cellHeight: STRIP_HEIGHT, colorAt: (_, kb) => sequential(hi > lo ? (g.importance[kb]! - lo) / (hi - lo) : 0.5), lines: LINES });
    const image = stackImages([strip, categoryImage(g.grid, TILED_PALETTE, cell)], STRIP_GAP);
    const levels = [0, 1, 2].map((l) => g.levels.filter((x) => x === l).length);
    const heads = g.queryHeads.length > 1 ? `query heads ${g.queryHeads[0]}–${g.queryHeads.at(-1)}` : `query head ${g.queryHeads[0]}`;
    const visible = g.grid.cells.length - count(g.grid, TILED.hidden);
    const tokenLevel = count(g.grid, TILED.exact) + count(g.grid, TILED.fine);
    const stats = `blocks of ${blockSize} tokens: ${levels[0]} fine, ${levels[1]} medium, ${levels[2]} summary; ${percent(visible ? tokenLevel / visible : 1)} of visible block pairs read token by token`;
    return picture(
      `layer${layer}-kv${g.kvHead}-tiles.png`,
      `key/value head ${g.kvHead} (${heads})`,
      image,
      STRIP_HEIGHT + STRIP_GAP,
      blockAxis('key block', g.grid.cols, cell),
      blockAxis('query block', g.grid.rows, cell),
      stats,
      'R(kb)',
    );
  });
}

export function spanPicture(layer: number, layout: SpanLayout): Picture {
  const { grid, tokensPerCell } = layout;
  const cell = cellSize(Math.max(grid.rows, grid.cols), 512, 8);
  const visible = grid.cells.length - count(grid, SPAN.hidden);
  const read = visible - count(grid, SPAN.skipped);
  const spans = layout.spans.filter(([s, e]) => e > s);
  const spanText = spans.length ? spans.map(([s, e]) => `[${s}, ${e})`).join(' ') : 'none';
  const stats = `reads ${percent(visible ? read / visible : 1)} of visible (query, key) pairs; spans ${spanText}`;
  const axis = (title: string, cells: number): Axis => ({ title: tokensPerCell > 1 ? `${title} (every ${tokensPerCell}th shown)` : title, cells, cellPx: cell, label: (i) => String(i * tokensPerCell) });
  return picture(`layer${layer}-spans.png`, 'every head', categoryImage(grid, SPAN_PALETTE, cell), 0, axis('key position', grid.cols), axis('query position', grid.rows), stats);
}
