// Evaluation text: bytes become token ids; windows are deterministic and never overlap.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evalWindows, loadEvalText, randomText } from '../../src/quality/text.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-text-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('loadEvalText', () => {
  it('reads one token per byte', () => {
    const file = join(work, 'a.bin');
    writeFileSync(file, Buffer.from([104, 105, 0, 255]));
    expect([...loadEvalText(file).tokens]).toEqual([104, 105, 0, 255]);
  });

  it('refuses bytes outside a smaller vocabulary, and a tokenizer that is not byte-level', () => {
    const file = join(work, 'b.bin');
    writeFileSync(file, Buffer.from([1, 2, 200]));
    expect(() => loadEvalText(file, 128)).toThrow(/1 of 3 bytes are ≥ the model's vocabulary size 128/);
    const dir = mkdtempSync(join(work, 'bpe-'));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ kind: 'bpe' }));
    writeFileSync(join(dir, 'eval.bin'), 'hello');
    expect(() => loadEvalText(join(dir, 'eval.bin'))).toThrow(/kind 'bpe'/);
    expect(() => loadEvalText(join(work, 'missing.bin'))).toThrow(/does not exist/);
  });
});

describe('evalWindows', () => {
  const text = randomText(50, 1000, 3);

  it('spreads non-overlapping windows over the text, the same each time', () => {
    const windows = evalWindows(text, 100, 4);
    expect(windows.map((w) => w.length)).toEqual([100, 100, 100, 100]);
    const starts = windows.map((w) => findStart(text.tokens, w));
    expect(starts).toEqual([0, 200, 500, 700]);
    expect(evalWindows(text, 100, 4)).toEqual(windows);
  });

  it('says how many windows fit when asked for too many', () => {
    expect(() => evalWindows(text, 300, 4)).toThrow(/holds 3 non-overlapping window\(s\) of 300 tokens; asked for 4/);
  });
});

function findStart(tokens: Int32Array, window: Int32Array): number {
  outer: for (let s = 0; s + window.length <= tokens.length; s++) {
    for (let i = 0; i < window.length; i++) if (tokens[s + i] !== window[i]) continue outer;
    return s;
  }
  return -1;
}
