/**
 * Large-model I/O end to end, on the generated benchmark graphs at tiny sizes (real random weights, so
 * onnxruntime-node's outputs mean something):
 * - a model whose protobuf would pass the limit is written with external data automatically and loads and
 *   runs in onnxruntime-node with the same outputs (the limit lowered via SaveOptions.protobufLimit; the real
 *   2 GB case is in bench/convert/run.mjs);
 * - an external-data model written back with `reference` never reads its data file; with `copy` the data is
 *   streamed in bounded chunks; both outputs run in onnxruntime-node with the original's outputs;
 * - `attnpass convert --exact` of the external-data Llama with every pass, referencing or copying the data,
 *   gives a model that onnxruntime-node runs with the original's outputs (padded batch included).
 */
import { spawnSync } from 'node:child_process';
import fs, { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/ir/model.js';
import { isExternal } from '../../src/onnx/external.js';
import { loadModel } from '../../src/onnx/load.js';
import { allInitializers, saveModel, saveModelAsync } from '../../src/onnx/save.js';
import { assertValid } from '../../src/validate/index.js';

const REPO = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'attnpass-large-io-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Generated {
  modelPath: string;
  dataPath?: string;
  modelBytes: number;
  dataBytes: number;
}
let gpt2: Generated;
let llama: Generated;

beforeAll(async () => {
  // bench/models/generate.mjs runs over dist/ (npm test builds first)
  const gen = await import(join(REPO, 'bench', 'models', 'generate.mjs'));
  gpt2 = gen.generate('gpt2-tiny', join(work, 'gpt2'));
  llama = gen.generate('llama-tiny', join(work, 'llama'));
});

const B = 2;
const S = 7;
/** input_ids and a left-padded attention_mask (row 1 pads its first two tokens) */
function feeds(): Record<string, ort.Tensor> {
  const ids = BigInt64Array.from({ length: B * S }, (_, i) => BigInt(((i * 37) % 100) + 1));
  const mask = BigInt64Array.from({ length: B * S }, (_, i) => (i >= S && i % S < 2 ? 0n : 1n));
  return { input_ids: new ort.Tensor('int64', ids, [B, S]), attention_mask: new ort.Tensor('int64', mask, [B, S]) };
}

async function logits(path: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path);
  try {
    return (await session.run(feeds())).logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Records the files opened and the bytes read through node:fs while `fn` runs. */
function traceReads<T>(fn: () => T): { result: T; opened: Map<string, { opens: number; bytes: number; maxRead: number }> } {
  const opened = new Map<string, { opens: number; bytes: number; maxRead: number }>();
  const paths = new Map<number, string>();
  const { openSync, readSync } = fs;
  fs.openSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    const fd = (openSync as (...a: unknown[]) => number)(path, ...rest);
    const p = resolve(String(path));
    paths.set(fd, p);
    const e = opened.get(p) ?? { opens: 0, bytes: 0, maxRead: 0 };
    e.opens++;
    opened.set(p, e);
    return fd;
  }) as typeof fs.openSync;
  fs.readSync = ((fd: number, ...rest: unknown[]) => {
    const n = (readSync as (...a: unknown[]) => number)(fd, ...rest);
    const e = opened.get(paths.get(fd) ?? '');
    if (e) {
      e.bytes += n;
      e.maxRead = Math.max(e.maxRead, n);
    }
    return n;
  }) as typeof fs.readSync;
  syncBuiltinESMExports();
  try {
    return { result: fn(), opened };
  } finally {
    fs.openSync = openSync;
    fs.readSync = readSync;
    syncBuiltinESMExports();
  }
}

describe('past the protobuf limit: external data automatically', () => {
  it('a model whose protobuf would pass the limit is written with external data and runs the same in onnxruntime-node', async () => {
    const loaded = loadModel(gpt2.modelPath);
    const embedded = allInitializers(loaded.proto).reduce((a, t) => a + (t.rawData?.length ?? 0), 0);
    expect(embedded).toBeGreaterThan(256 * 1024);
    // the limit keeps a 64 MiB margin: a limit of 64 MiB + 256 KiB externalises anything past 256 KiB of weights
    const limit = 64 * 2 ** 20 + 256 * 1024;
    const out = join(work, 'auto', 'model.onnx');
    fs.mkdirSync(join(work, 'auto'));
    const r = saveModel(loaded.proto, out, { protobufLimit: limit });
    expect(r.dataFile).toBe(`${out}.data`);
    expect(r.dataBytes).toBeGreaterThanOrEqual(embedded - 64 * 1024);
    expect(r.bytes).toBeLessThan(256 * 1024);
    expect(statSync(out).size).toBe(r.bytes);
    expect(statSync(r.dataFile!).size).toBe(r.dataBytes);
    // the caller's proto still describes the embedded model
    expect(allInitializers(loaded.proto).every((t) => !isExternal(t))).toBe(true);
    const saved = loadModel(out);
    const inits = allInitializers(saved.proto);
    for (const t of inits) expect(isExternal(t) || (t.rawData?.length ?? 0) < 1024, `${t.name} external`).toBe(true);
    assertValid(Model.lift(saved));
    const [want, got] = [await logits(gpt2.modelPath), await logits(out)];
    expect(got).toEqual(want);
    // the async save (the CLI's) writes the same files
    const outAsync = join(work, 'auto', 'async.onnx');
    const ra = await saveModelAsync(loaded.proto, outAsync, { protobufLimit: limit });
    expect(ra.bytes).toBeGreaterThan(0);
    expect(fs.readFileSync(`${outAsync}.data`).equals(fs.readFileSync(`${out}.data`))).toBe(true);
    expect(await logits(outAsync)).toEqual(want);
  });

  it('under the limit nothing moves', () => {
    const loaded = loadModel(gpt2.modelPath);
    const out = join(work, 'under.onnx');
    const r = saveModel(loaded.proto, out);
    expect(r.dataFile).toBeUndefined();
    expect(fs.readFileSync(out).equals(Buffer.from(loaded.bytes))).toBe(true);
  });
});

describe('external data: reference and copy', () => {
  it('written back with reference, no byte of the data file is read; the output runs the same', async () => {
    const { result: out, opened } = traceReads(() => {
      const loaded = loadModel(llama.modelPath);
      const model = Model.lift(loaded);
      assertValid(model);
      const path = join(work, 'llama', 'reference.onnx');
      saveModel(model.lower(), path, { external: loaded.external, externalData: 'reference' });
      loaded.external.close();
      return path;
    });
    // the validator may open it to check each tensor's region against the file size (fstat); no byte is read
    expect(opened.get(llama.dataPath!)?.bytes ?? 0).toBe(0);
    expect(readdirSync(join(work, 'llama')).sort()).toEqual(['model.onnx', 'model.onnx_data', 'reference.onnx']);
    expect(await logits(out)).toEqual(await logits(llama.modelPath));
  });

  it('written with copy into another folder, the data is streamed in bounded chunks; the output runs the same', async () => {
    const dir = join(work, 'copy-out');
    fs.mkdirSync(dir);
    const { result, opened } = traceReads(() => {
      const loaded = loadModel(llama.modelPath);
      const r = saveModel(Model.lift(loaded).lower(), join(dir, 'model.onnx'), { external: loaded.external, externalData: 'copy' });
      loaded.external.close();
      return r;
    });
    const data = opened.get(llama.dataPath!);
    expect(data).toBeDefined();
    expect(data!.bytes).toBe(llama.dataBytes);
    expect(data!.maxRead).toBeLessThanOrEqual(16 * 2 ** 20);
    expect(result.dataFile).toBe(join(dir, 'model.onnx.data'));
    expect(existsSync(result.dataFile!)).toBe(true);
    expect(await logits(join(dir, 'model.onnx'))).toEqual(await logits(llama.modelPath));
  });
});

describe('convert --exact of an external-data model runs in onnxruntime-node', () => {
  const CLI = join(REPO, 'bin', 'attnpass.js');
  /** worst error relative to the largest logit, over the positions the mask keeps (a padded query's row is undefined) */
  const relErr = (want: Float32Array, got: Float32Array): number => {
    const vocab = want.length / (B * S);
    let num = 0;
    let den = 0;
    for (let i = 0; i < want.length; i++) {
      const row = Math.floor(i / vocab);
      if (row >= S && row % S < 2) continue;
      num = Math.max(num, Math.abs(want[i]! - got[i]!));
      den = Math.max(den, Math.abs(want[i]!));
    }
    return num / den;
  };
  for (const pass of ['att', 'ast', 'span', 'window']) {
    for (const mode of ['reference', 'copy'] as const) {
      it(`--pass ${pass} --external-data ${mode}`, async () => {
        const out = mode === 'reference' ? join(work, 'llama', `exact.${pass}.onnx`) : join(work, `exact-${pass}`, 'model.onnx');
        fs.mkdirSync(join(out, '..'), { recursive: true });
        const r = spawnSync(process.execPath, [CLI, 'convert', llama.modelPath, '-o', out, '--pass', pass, '--exact', '--external-data', mode, '--quiet'], { cwd: REPO, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(existsSync(`${out}.data`)).toBe(mode === 'copy');
        expect(relErr(await logits(llama.modelPath), await logits(out))).toBeLessThan(1e-4);
      });
    }
  }
});
