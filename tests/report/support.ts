/** Reading a written report back: its sections and its pictures, inline and on disk. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePng, type DecodedPng } from './png-decode.js';

export interface InlinePicture {
  /** the file named by the figure's data-file */
  file: string;
  /** the SVG <image>'s width and height attributes */
  width: number;
  height: number;
  png: Buffer;
}

/** Every figure: its data-file and the PNG of its SVG <image> (a data: URI). */
export function inlinePictures(html: string): InlinePicture[] {
  const figures = [...html.matchAll(/<figure data-file="([^"]+)">([\s\S]*?)<\/figure>/g)];
  return figures.map(([, file, body]) => {
    const image = /<image [^>]*width="(\d+)" height="(\d+)" href="data:image\/png;base64,([^"]+)"/.exec(body!);
    if (!image) throw new Error(`figure ${file} has no inline PNG`);
    return { file: file!, width: Number(image[1]), height: Number(image[2]), png: Buffer.from(image[3]!, 'base64') };
  });
}

export function layerSections(html: string): Array<{ layer: number; site: string; body: string }> {
  return [...html.matchAll(/<section class="layer" id="layer-(\d+)" data-layer="\d+" data-site="([^"]+)">([\s\S]*?)<\/section>/g)].map(([, layer, site, body]) => ({
    layer: Number(layer),
    site: site!,
    body: body!,
  }));
}

export function filePicture(folder: string, file: string): { bytes: Buffer; decoded: DecodedPng } {
  const bytes = readFileSync(join(folder, file));
  return { bytes, decoded: decodePng(bytes) };
}

/** URLs the page would fetch: src/href attributes that are neither data: URIs nor in-page anchors. */
export function externalReferences(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:') && !u.startsWith('#'));
}
