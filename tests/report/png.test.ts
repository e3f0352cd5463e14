import { describe, expect, it } from 'vitest';
import { crc32, encodePng, pngDataUri } from '../../src/report/png.js';
import { decodePng } from './png-decode.js';

describe('encodePng', () => {
  it('round-trips through a strict decoder', () => {
    const width = 37;
    const height = 11;
    const pixels = Uint8Array.from({ length: width * height * 4 }, (_, i) => (i * 37 + (i >> 7)) & 0xff);
    const decoded = decodePng(encodePng({ width, height, pixels }));
    expect([decoded.width, decoded.height]).toEqual([width, height]);
    expect(Buffer.from(decoded.pixels).equals(Buffer.from(pixels))).toBe(true);
  });

  it('computes the CRC-32 PNG chunks carry', () => {
    expect(crc32(Buffer.from('IEND', 'latin1'))).toBe(0xae426082);
  });

  it('refuses a pixel buffer that does not match the size', () => {
    expect(() => encodePng({ width: 2, height: 2, pixels: new Uint8Array(15) })).toThrow(/needs 16 bytes; got 15/);
    expect(() => encodePng({ width: 0, height: 2, pixels: new Uint8Array(0) })).toThrow(/positive integer size/);
  });

  it('makes data: URIs', () => {
    expect(pngDataUri(Uint8Array.of(1, 2, 3))).toBe('data:image/png;base64,AQID');
  });
});
