/**
 * External data: tensors whose bytes live beside the model. Reading them lazily and read-only, refusing
 * locations that leave the model's folder, copying or referencing them on save, moving large embedded
 * weights out when the protobuf would pass 2 GB.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs, { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { Long, onnx, type ModelProto, type TensorProto } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel } from '../../src/onnx/save.js';
import { tensorToFloat64 } from '../../src/onnx/tensor.js';
import { Model } from '../../src/ir/model.js';
import { validateModel } from '../../src/validate/index.js';
import { AttnpassError } from '../../src/errors.js';
import { attentionModel, encode, F32, floatFeed, maxAbsDiff, ort, rng, runModel, tmp, writeModel } from './models.js';

function externalTensor(t: TensorProto, location: string, offset: number, length = t.rawData!.length): TensorProto {
  return onnx.TensorProto.create({
    name: t.name,
    dims: t.dims,
    dataType: t.dataType,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      onnx.StringStringEntryProto.create({ key: 'location', value: location }),
      onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
      onnx.StringStringEntryProto.create({ key: 'length', value: String(length) }),
    ],
  });
}

/** The attention model with its four weight matrices in `weights.bin` beside it. */
function writeExternalModel(dir: string, location = 'weights.bin', mutate?: (m: ModelProto) => void): { path: string; original: ModelProto } {
  const original = attentionModel({ seed: 11 });
  const m = attentionModel({ seed: 11 });
  const chunks: Uint8Array[] = [];
  let offset = 0;
  m.graph!.initializer = m.graph!.initializer!.map((t) => {
    if (t.dataType !== F32) return t;
    const ext = externalTensor(t, location, offset);
    chunks.push(t.rawData!);
    offset += t.rawData!.length;
    return ext;
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks));
  mutate?.(m);
  return { path: writeModel(dir, 'model.onnx', m), original };
}

async function sameOutputs(a: string | Uint8Array, b: string | Uint8Array): Promise<number> {
  const { Tensor } = await ort();
  const x = new Tensor('float32', floatFeed(rng(5), [2, 3, 16]), [2, 3, 16]);
  return maxAbsDiff((await runModel(a, { x })).y!, (await runModel(b, { x })).y!);
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AttnpassError);
    return (err as Error).message;
  }
  throw new Error('expected an AttnpassError');
}

function problemsOf(path: string): string[] {
  return validateModel(Model.lift(loadModel(path))).map((d) => d.message);
}

describe('reading', () => {
  it('reads external tensors lazily and gives the same values as embedded ones', async () => {
    const dir = tmp();
    const { path, original } = writeExternalModel(dir);
    const loaded = loadModel(path);
    const m = Model.lift(loaded);
    expect(validateModel(m)).toEqual([]);
    const wq = m.graph.lookup('Wq')!.initializer!;
    expect(wq.rawData?.length ?? 0).toBe(0);
    expect([...tensorToFloat64(wq, loaded.external)]).toEqual([...tensorToFloat64(original.graph!.initializer![0]!)]);
    expect(await sameOutputs(path, encode(original))).toBe(0);
    loaded.external.close();
  });

  it('opens the model and its data files read-only', () => {
    const dir = tmp();
    const { path } = writeExternalModel(dir);
    const opened: Array<{ path: string; flags: unknown }> = [];
    const realOpen = fs.openSync;
    fs.openSync = ((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      opened.push({ path: String(p), flags });
      return realOpen(p, flags as fs.OpenMode, mode);
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    let fdFlags: string | undefined;
    try {
      const loaded = loadModel(path);
      const m = Model.lift(loaded);
      tensorToFloat64(m.graph.lookup('Wk')!.initializer!, loaded.external);
      // the data file stays open: its descriptor's flags must be O_RDONLY (access mode bits 0)
      for (const fd of readdirSync('/proc/self/fd')) {
        let target = '';
        try {
          target = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          continue;
        }
        if (target.endsWith('weights.bin')) fdFlags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      }
      saveModel(m.lower(), join(tmp(), 'copy.onnx'), { external: loaded.external, externalData: 'copy' });
      loaded.external.close();
    } finally {
      fs.openSync = realOpen;
      syncBuiltinESMExports();
    }
    const inputs = opened.filter((o) => o.path.startsWith(dir));
    expect(inputs.map((o) => o.path.replace(dir, ''))).toEqual(['/model.onnx', '/weights.bin']);
    for (const o of inputs) expect((Number(o.flags) & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC))).toBe(0);
    expect(fdFlags).toBeDefined();
    expect(Number.parseInt(fdFlags!, 8) & 3).toBe(0);
  });
});

describe('locations that leave the model folder, and broken regions', () => {
  const cases: Array<[string, (dir: string) => string, RegExp]> = [
    ['an absolute path', () => '/etc/passwd', /external_data location '\/etc\/passwd' is an absolute path.*relative to the model's folder/],
    ['a .. segment', () => '../weights.bin', /external_data location '\.\.\/weights\.bin' has a '\.\.' segment and would leave the model's folder/],
    ['a nested .. segment', () => 'sub/../../weights.bin', /has a '\.\.' segment/],
    ['a missing file', () => 'nope.bin', /external_data location 'nope\.bin' does not exist \(looked for .*nope\.bin\)/],
    [
      'a symlink leading out of the folder',
      (dir) => {
        const outside = tmp();
        writeFileSync(join(outside, 'secret.bin'), Buffer.alloc(4096));
        symlinkSync(join(outside, 'secret.bin'), join(dir, 'link.bin'));
        return 'link.bin';
      },
      /external_data location 'link\.bin' is a link that leads outside the model's folder/,
    ],
    ['a folder', (dir) => (mkdirSync(join(dir, 'afolder')), 'afolder'), /is not a regular file/],
  ];
  for (const [what, location, expected] of cases) {
    it(`refuses ${what}, naming the tensor, the field and the file`, () => {
      const dir = tmp();
      const { path } = writeExternalModel(join(dir, 'm'), 'weights.bin', (m) => {
        const t = m.graph!.initializer![0]!;
        t.externalData![0]!.value = location(join(dir, 'm'));
      });
      const problems = problemsOf(path);
      expect(problems.some((p) => expected.test(p) && p.includes("tensor 'Wq'"))).toBe(true);
      const loaded = loadModel(path);
      const msg = messageOf(() => tensorToFloat64(Model.lift(loaded).graph.lookup('Wq')!.initializer!, loaded.external));
      expect(msg).toMatch(expected);
    });
  }

  it('refuses an offset past the end of the data file', () => {
    const dir = tmp();
    const { path } = writeExternalModel(dir, 'weights.bin', (m) => {
      m.graph!.initializer![1]!.externalData![1]!.value = '999999';
    });
    expect(problemsOf(path).join('\n')).toMatch(/tensor 'Wk': external data offset 999999 \+ length 1024 passes the end of 'weights\.bin' \(4096 bytes\)/);
  });

  it('refuses a length that does not match the dims', () => {
    const dir = tmp();
    const { path } = writeExternalModel(dir, 'weights.bin', (m) => {
      m.graph!.initializer![2]!.externalData![2]!.value = '1000';
    });
    expect(problemsOf(path).join('\n')).toMatch(/initializer 'Wv': external data holds 1000 bytes but dims \[16, 16\] of float32 need 1024/);
  });

  it('refuses a non-numeric offset and a missing location entry', () => {
    const dir = tmp();
    const { path } = writeExternalModel(dir, 'weights.bin', (m) => {
      m.graph!.initializer![0]!.externalData![1]!.value = '12abc';
      m.graph!.initializer![1]!.externalData!.shift();
    });
    const text = problemsOf(path).join('\n');
    expect(text).toMatch(/tensor 'Wq': external_data 'offset' is '12abc', not a non-negative integer/);
    expect(text).toMatch(/tensor 'Wk': external_data has no 'location' entry/);
  });
});

describe('saving', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmp();
  });
  afterEach(() => {
    // nothing but the expected files: no temporary files left behind
    for (const d of [dir, join(dir, 'out')]) if (existsSync(d)) expect(readdirSync(d).filter((f) => f.startsWith('.attnpass-tmp-'))).toEqual([]);
  });

  it('copy: streams external data into <output>.data beside the output and the model still runs', async () => {
    const { path, original } = writeExternalModel(join(dir, 'in'));
    const loaded = loadModel(path);
    const out = join(dir, 'out', 'model.onnx');
    mkdirSync(join(dir, 'out'));
    const res = saveModel(Model.lift(loaded).lower(), out, { external: loaded.external, externalData: 'copy' });
    expect(res.dataFile).toBe(`${out}.data`);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['model.onnx', 'model.onnx.data']);
    expect(await sameOutputs(out, encode(original))).toBe(0);
    // the caller's proto still points at the source data
    expect(loaded.proto.graph!.initializer![0]!.externalData![0]!.value).toBe('weights.bin');
    loaded.external.close();
  });

  it('reference: keeps pointing at the source data when the output is in the same folder', async () => {
    const { path, original } = writeExternalModel(dir);
    const loaded = loadModel(path);
    const out = join(dir, 'rewritten.onnx');
    const res = saveModel(Model.lift(loaded).lower(), out, { external: loaded.external });
    expect(res.dataFile).toBeUndefined();
    expect(await sameOutputs(out, encode(original))).toBe(0);
    loaded.external.close();
  });

  it('reference into another folder is refused with the fix', () => {
    const { path } = writeExternalModel(dir);
    const loaded = loadModel(path);
    mkdirSync(join(dir, 'elsewhere'));
    const msg = messageOf(() => saveModel(loaded.proto, join(dir, 'elsewhere', 'x.onnx'), { external: loaded.external, externalData: 'reference' }));
    expect(msg).toMatch(/output must be written in the input's folder.*use --external-data copy/);
    expect(existsSync(join(dir, 'elsewhere', 'x.onnx'))).toBe(false);
  });

  it('refuses to write the output over a data file the output refers to', () => {
    const { path } = writeExternalModel(dir);
    const loaded = loadModel(path);
    const msg = messageOf(() => saveModel(loaded.proto, join(dir, 'weights.bin'), { external: loaded.external }));
    expect(msg).toMatch(/would overwrite 'weights\.bin', an external data file the model refers to/);
    expect(readFileSync(join(dir, 'weights.bin')).length).toBe(4096);
  });

  it('moves large embedded initializers to external data past the protobuf limit, aligned, proto unchanged', async () => {
    const m = attentionModel({ seed: 2 });
    const bytes = encode(m);
    const loaded = loadModel(bytes);
    const out = join(dir, 'big.onnx');
    const res = saveModel(loaded.proto, out, { protobufLimit: 64 * 1024 * 1024 + 100, externalizeMinBytes: 512 });
    expect(res.dataFile).toBe(`${out}.data`);
    const reread = loadModel(out);
    const moved = reread.proto.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    expect(moved.map((t) => t.name)).toEqual(['Wq', 'Wk', 'Wv', 'Wo']);
    for (const t of moved) expect(Number(t.externalData!.find((e) => e.key === 'offset')!.value) % 4096).toBe(0);
    expect(await sameOutputs(out, bytes)).toBe(0);
    expect(loaded.proto.graph!.initializer![0]!.rawData!.length).toBe(1024);
    expect(Buffer.from(encode(loaded.proto)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('a data file name already referenced is not reused for moved initializers', () => {
    const { path } = writeExternalModel(dir, 'model2.onnx.data', (m) => {
      // the embedded int64 shape tensors are tiny; force them out too
      void m;
    });
    writeFileSync(join(dir, 'model2.onnx.data'), readFileSync(join(dir, 'weights.bin')));
    const loaded = loadModel(path);
    const res = saveModel(loaded.proto, join(dir, 'model2.onnx'), { external: loaded.external, protobufLimit: 64 * 1024 * 1024, externalizeMinBytes: 1 });
    expect(res.dataFile).toBe(join(dir, 'model2.onnx.1.data'));
    expect(readFileSync(join(dir, 'model2.onnx.data')).length).toBe(4096);
    loaded.external.close();
  });

  it('an output path that is a folder fails cleanly', () => {
    mkdirSync(join(dir, 'out'));
    mkdirSync(join(dir, 'out', 'model.onnx'));
    const msg = messageOf(() => saveModel(attentionModel(), join(dir, 'out', 'model.onnx')));
    expect(msg).toMatch(/cannot replace .*model\.onnx \(E\w+\).*Choose another output path/);
  });

  it('an output folder that does not exist fails cleanly', () => {
    const msg = messageOf(() => saveModel(attentionModel(), join(dir, 'missing', 'model.onnx')));
    expect(msg).toMatch(/cannot write in .*missing \(ENOENT\): check that the folder exists/);
  });

  it('int64 dims and Long values keep their type through save', () => {
    const m = attentionModel();
    const out = join(dir, 'x.onnx');
    saveModel(m, out);
    expect(Long.isLong(loadModel(out).proto.irVersion)).toBe(true);
  });
});
