/** Pictures made of coloured cells (a layout grid, a score strip), as RGBA images ready for the PNG encoder. */
import type { Rgb } from './palette.js';
import type { RgbaImage } from './png.js';

export interface GridSpec {
  rows: number;
  cols: number;
  /** pixels per cell, each way */
  cellWidth: number;
  cellHeight: number;
  colorAt(row: number, col: number): Rgb;
  /** a 1-pixel line of this colour between cells (drawn only when cells are at least 6 pixels) */
  lines?: Rgb;
}

/** Cell size so that `count` cells span about `target` pixels: between 1 and `max`. */
export function cellSize(count: number, target = 384, max = 28): number {
  return Math.max(1, Math.min(max, Math.floor(target / Math.max(1, count))));
}

export function gridImage(spec: GridSpec): RgbaImage {
  const width = spec.cols * spec.cellWidth;
  const height = spec.rows * spec.cellHeight;
  const pixels = new Uint8Array(width * height * 4);
  const drawLines = spec.lines !== undefined && spec.cellWidth >= 6 && spec.cellHeight >= 6;
  for (let r = 0; r < spec.rows; r++) {
    for (let c = 0; c < spec.cols; c++) {
      const color = spec.colorAt(r, c);
      for (let y = r * spec.cellHeight; y < (r + 1) * spec.cellHeight; y++) {
        for (let x = c * spec.cellWidth; x < (c + 1) * spec.cellWidth; x++) {
          const onLine = drawLines && (x === (c + 1) * spec.cellWidth - 1 || y === (r + 1) * spec.cellHeight - 1);
          const rgb = onLine ? spec.lines! : color;
          const o = (y * width + x) * 4;
          pixels[o] = rgb[0];
          pixels[o + 1] = rgb[1];
          pixels[o + 2] = rgb[2];
          pixels[o + 3] = 255;
        }
      }
    }
  }
  return { width, height, pixels };
}

/** Images one above the other (left-aligned), `gap` pixels of `background` between them. */
export function stackImages(images: readonly RgbaImage[], gap: number, background: Rgb = [255, 255, 255]): RgbaImage {
  const width = Math.max(...images.map((i) => i.width));
  const height = images.reduce((h, i) => h + i.height, 0) + gap * (images.length - 1);
  const pixels = new Uint8Array(width * height * 4);
  for (let o = 0; o < pixels.length; o += 4) {
    pixels[o] = background[0];
    pixels[o + 1] = background[1];
    pixels[o + 2] = background[2];
    pixels[o + 3] = 255;
  }
  let top = 0;
  for (const img of images) {
    for (let y = 0; y < img.height; y++) pixels.set(img.pixels.subarray(y * img.width * 4, (y + 1) * img.width * 4), ((top + y) * width) * 4);
    top += img.height + gap;
  }
  return { width, height, pixels };
}
