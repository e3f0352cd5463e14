/**
 * Every entry of the malformed corpus (corpus.ts) gets its expected message and exit code:
 *   - the library path: load → lift → infer → validate → save throws an AttnpassError with the message and
 *     writes nothing;
 *   - `attnpass inspect`: exit 1, the message on stderr naming the file (and node / field / value), no stack
 *     trace without --debug, nothing on stdout;
 *   - `attnpass convert` (when the CLI has it): non-zero exit, the message, no output file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { assertValid } from '../../src/validate/index.js';
import { AttnpassError } from '../../src/errors.js';
import { buildCorpus, type CorpusEntry } from './corpus.js';
import { CLI, encode, floatFeed, ort, REPO, rng, runModel, tmp } from '../onnx/models.js';
import { maskRankFive } from './corpus.js';

const root = tmp('attnpass-malformed-');
const corpus = buildCorpus(join(root, 'corpus'));
const broken = corpus.filter((e) => e.exit !== 0);
const built = existsSync(join(REPO, 'dist/bin/main.js'));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let hasConvert = false;
beforeAll(() => {
  if (built) hasConvert = /\bconvert\b/.test(cli(['--help']).stdout);
});

function expectMessage(entry: CorpusEntry, text: string): void {
  expect(text, entry.name).toMatch(entry.message);
  expect(text, `${entry.name}: names the file`).toContain(entry.file.includes('no-such') ? 'no-such-model.onnx' : entry.file);
  for (const name of entry.names) expect(text, `${entry.name}: names ${name}`).toContain(name);
}

/** The library path a conversion takes, minus the passes. */
function runLibrary(entry: CorpusEntry, out: string): void {
  const loaded = loadModel(entry.file);
  try {
    const m = Model.lift(loaded);
    inferModel(m);
    assertValid(m, { context: entry.file });
    saveModel(m.lower(), out, { external: loaded.external });
  } finally {
    loaded.external.close();
  }
}

describe('the corpus', () => {
  it(`has at least 40 broken models and files (has ${broken.length})`, () => {
    expect(broken.length).toBeGreaterThanOrEqual(40);
    expect(new Set(corpus.map((e) => e.name)).size).toBe(corpus.length);
  });
});

describe.each(corpus)('$name: $what', (entry) => {
  it('library: load → lift → infer → validate → save', () => {
    const outDir = join(root, 'lib-out', entry.name);
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, 'out.onnx');
    if (entry.exit === 0) {
      runLibrary(entry, out);
      expect(existsSync(out)).toBe(true);
      return;
    }
    let error: unknown;
    try {
      runLibrary(entry, out);
    } catch (err) {
      error = err;
    }
    expect(error, 'must fail').toBeInstanceOf(AttnpassError);
    expectMessage(entry, (error as Error).message);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it.skipIf(!built)('attnpass inspect', () => {
    const r = cli(['inspect', entry.file]);
    expect(r.status).toBe(entry.exit);
    if (entry.exit === 0) {
      expect(r.stdout).toMatch(entry.message);
      return;
    }
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^attnpass: /);
    expectMessage(entry, r.stderr);
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace without --debug
    expect(r.stderr).not.toMatch(/internal error/);
  });

  it.skipIf(!built || entry.exit === 0)('attnpass convert (when the CLI has it)', () => {
    if (!hasConvert) return;
    const outDir = join(root, 'cli-out', entry.name);
    mkdirSync(outDir, { recursive: true });
    const r = cli(['convert', entry.file, '-o', join(outDir, 'out.onnx')]);
    expect(r.status).not.toBe(0);
    expectMessage(entry, r.stderr);
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
    expect(readdirSync(outDir)).toEqual([]);
  });
});

describe('the attention whose mask has rank 5', () => {
  it('is a valid model: it runs in onnxruntime', async () => {
    const { Tensor } = await ort();
    const out = await runModel(encode(maskRankFive()), { x: new Tensor('float32', floatFeed(rng(2), [2, 3, 16]), [2, 3, 16]), mask: new Tensor('float32', new Float32Array(6), [1, 2, 1, 1, 3]) });
    expect(out.y!.dims).toEqual([2, 3, 16]);
  });

  it.skipIf(!built)('inspect succeeds and does not crash (--json too)', () => {
    const entry = corpus.find((e) => e.name === 'attention-mask-rank-5')!;
    const r = cli(['inspect', entry.file, '--json']);
    expect(r.status).toBe(0);
    const json = JSON.parse(r.stdout) as { attentionSites: unknown[]; unprovenSites: unknown[] };
    expect(Array.isArray(json.attentionSites)).toBe(true);
    expect(Array.isArray(json.unprovenSites)).toBe(true);
    // the mask cannot be taken as an attention mask, so it is never a proven site
    expect(json.attentionSites).toEqual([]);
  });

  it.skipIf(!built)('convert (detect-attention) leaves it dense as unproven, naming the mask rank', (ctx) => {
    if (!hasConvert) ctx.skip();
    const entry = corpus.find((e) => e.name === 'attention-mask-rank-5')!;
    const outDir = join(root, 'cli-out', entry.name);
    mkdirSync(outDir, { recursive: true });
    const r = cli(['convert', entry.file, '-o', join(outDir, 'out.onnx')]);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/unproven[\s\S]*rank 5/i);
  });

  it.skipIf(!built)('inspect lists it as an unproven site, with the mask rank as the reason', () => {
    const entry = corpus.find((e) => e.name === 'attention-mask-rank-5')!;
    const json = JSON.parse(cli(['inspect', entry.file, '--json']).stdout) as { unprovenSites: Array<{ anchor: string; reason: string }> };
    expect(json.unprovenSites).toEqual([{ anchor: "Softmax 'Softmax_probs'", reason: expect.stringMatching(/the mask 'mask' \(rank 5\) broadcasts the rank-4 scores to rank 5 at Add 'Add_masked'/) }]);
    const text = cli(['inspect', entry.file]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/attention\s+0 site\(s\), 1 unproven\nunproven \(left dense\)\n\s+Softmax 'Softmax_probs': the mask 'mask' \(rank 5\)/);
  });
});

describe.skipIf(!built)('--debug', () => {
  it('prints the stack trace only when asked', () => {
    const entry = corpus.find((e) => e.name === 'truncated-in-weight')!;
    const plain = cli(['inspect', entry.file]);
    const debug = cli(['inspect', entry.file, '--debug']);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(/AttnpassError: .*truncated[\s\S]*\n\s+at /);
  });
});
