/**
 * The streaming model encoder (src/onnx/stream.ts) writes exactly the bytes of
 * `onnx.ModelProto.encode(proto).finish()`, while large raw_data payloads are written from the views they
 * already are (never copied into an encode buffer). Checked on the real exporter fixtures, on the generated
 * benchmark graphs and on a model built to exercise every nesting: subgraphs (If/Loop bodies), Constant
 * attribute tensors, model-local functions, sparse initializers, training info and unknown fields at every
 * level.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Long, onnx, type ModelProto, type TensorProto } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/load.js';
import { saveModel, saveModelAsync } from '../../src/onnx/save.js';
import { concatParts, encodeModelParts, writeParts, writePartsAsync, type EncodedParts } from '../../src/onnx/stream.js';
import { payloadMaker } from './payloads.js';

const REPO = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'attnpass-stream-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const reference = (proto: ModelProto): Buffer => Buffer.from(onnx.ModelProto.encode(proto).finish());
const streamed = (proto: ModelProto, minViewBytes?: number): Buffer => Buffer.from(concatParts(encodeModelParts(proto, { minViewBytes })));

function fixtureModels(): string[] {
  const dir = join(REPO, 'fixtures', 'models');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name, 'model.onnx'))
    .filter((p) => existsSync(p))
    .sort();
}

/** Unknown fields as the decoder keeps them: raw wire bytes in a non-enumerable `$unknowns`. */
function withUnknowns<T extends object>(message: T, ...fields: Uint8Array[]): T {
  Object.defineProperty(message, '$unknowns', { value: fields, enumerable: false, writable: true, configurable: true });
  return message;
}
// field 1000, wire type 2 (length-delimited), 3 bytes; field 1001, varint 150
const unknownBytes = Uint8Array.from([0xc2, 0x3e, 3, 7, 8, 9]);
const unknownVarint = Uint8Array.from([0xc8, 0x3e, 0x96, 0x01]);

const { bytes, tensor } = payloadMaker(7);

const attr = (fields: object) => onnx.AttributeProto.create(fields);
const T = onnx.AttributeProto.AttributeType;

/** A model with large payloads at every depth the schema allows, and unknown fields along the way. */
function nestedModel(big = 200_000): ModelProto {
  const constant = (name: string, n: number) =>
    onnx.NodeProto.create({ opType: 'Constant', name: `c_${name}`, output: [name], attribute: [attr({ name: 'value', type: T.TENSOR, t: tensor(`${name}_t`, n) })] });
  const thenBranch = onnx.GraphProto.create({
    name: 'then',
    node: [constant('then_c', big), onnx.NodeProto.create({ opType: 'Add', input: ['then_c', 'then_w'], output: ['then_out'] })],
    initializer: [withUnknowns(tensor('then_w', big), unknownVarint)],
    output: [onnx.ValueInfoProto.create({ name: 'then_out' })],
  });
  const elseBranch = withUnknowns(
    onnx.GraphProto.create({
      name: 'else',
      node: [constant('else_c', 16), constant('else_big', big + 4)],
      output: [onnx.ValueInfoProto.create({ name: 'else_c' })],
      sparseInitializer: [onnx.SparseTensorProto.create({ values: tensor('sparse_v', big), indices: onnx.TensorProto.create({ name: 'sparse_i', dims: [Long.fromNumber(2)], dataType: 7, int64Data: [Long.fromNumber(0), Long.fromNumber(5)] }), dims: [Long.fromNumber(10)] })],
    }),
    unknownBytes,
  );
  const ifNode = withUnknowns(
    onnx.NodeProto.create({
      opType: 'If',
      name: 'if',
      input: ['cond'],
      output: ['y'],
      attribute: [withUnknowns(attr({ name: 'then_branch', type: T.GRAPH, g: thenBranch }), unknownVarint), attr({ name: 'else_branch', type: T.GRAPH, g: elseBranch })],
    }),
    unknownBytes,
  );
  const loopBody = onnx.GraphProto.create({ name: 'body', node: [constant('loop_c', big)], initializer: [tensor('loop_small', 64), tensor('loop_big', big)] });
  const loopNode = onnx.NodeProto.create({ opType: 'Loop', name: 'loop', input: ['', 'cond'], output: ['z'], attribute: [attr({ name: 'body', type: T.GRAPH, g: loopBody })] });
  const multi = onnx.NodeProto.create({
    opType: 'Custom',
    domain: 'x.y',
    name: 'multi',
    output: ['m'],
    attribute: [
      attr({ name: 'tensors', type: T.TENSORS, tensors: [tensor('a', 32), tensor('b', big), tensor('c', 8), tensor('d', big + 8)] }),
      attr({ name: 'graphs', type: T.GRAPHS, graphs: [loopBody, onnx.GraphProto.create({ name: 'tiny' })] }),
      attr({ name: 'sparse', type: T.SPARSE_TENSOR, sparseTensor: onnx.SparseTensorProto.create({ values: tensor('sv', big), dims: [Long.fromNumber(1)] }) }),
      attr({ name: 's', type: T.STRING, s: bytes(big) }),
    ],
  });
  const fn = onnx.FunctionProto.create({
    name: 'F',
    domain: 'x.y',
    input: ['a'],
    output: ['b'],
    node: [constant('fn_c', big), onnx.NodeProto.create({ opType: 'Add', input: ['a', 'fn_c'], output: ['b'] })],
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
    attributeProto: [attr({ name: 'default_t', type: T.TENSOR, t: tensor('fn_attr_t', big) })],
  });
  const graph = withUnknowns(
    onnx.GraphProto.create({
      name: 'main',
      node: [constant('small_const', 12), ifNode, loopNode, multi, constant('big_const', big)],
      initializer: [tensor('w0', big), tensor('w_small', 40), tensor('w_empty', 0, { dims: [Long.fromNumber(0)] }), withUnknowns(tensor('w1', big + 12, { docString: 'after raw_data' }), unknownBytes, unknownVarint), tensor('w2', big)],
      input: [onnx.ValueInfoProto.create({ name: 'cond' })],
      output: [onnx.ValueInfoProto.create({ name: 'y' })],
      docString: 'fields after the initializers',
      metadataProps: [onnx.StringStringEntryProto.create({ key: 'k', value: 'v' })],
    }),
    unknownVarint,
  );
  return withUnknowns(
    onnx.ModelProto.create({
      irVersion: Long.fromNumber(10),
      producerName: 'stream-test',
      graph,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
      metadataProps: [onnx.StringStringEntryProto.create({ key: 'after', value: 'graph' })],
      trainingInfo: [onnx.TrainingInfoProto.create({ initialization: onnx.GraphProto.create({ name: 'init', initializer: [tensor('ti', big)] }) })],
      functions: [fn],
    }),
    unknownBytes,
  );
}

describe('streaming encoder: byte identity with the codec', () => {
  it('on every real exporter fixture (payloads from 1 byte up written as views)', () => {
    const models = fixtureModels();
    if (models.length === 0) console.warn('tests/large/stream: no fixtures/models/*/model.onnx in the tree; only generated models are checked');
    for (const path of models) {
      const loaded = loadModel(path);
      const want = reference(loaded.proto);
      expect(Buffer.from(loaded.bytes).equals(want), `${path} re-encodes as read`).toBe(true);
      for (const min of [1, 1024, undefined]) expect(streamed(loaded.proto, min).equals(want), `${path} minViewBytes=${min}`).toBe(true);
    }
  });

  it('on a model with payloads in subgraphs, Constant and function attributes, sparse tensors, training info and unknown fields', () => {
    const model = nestedModel();
    const want = reference(model);
    for (const min of [1, 100, 64 * 1024, 199_999, 200_000, 200_001, 1 << 30]) expect(streamed(model, min).equals(want), `minViewBytes=${min}`).toBe(true);
    // decoded from its own bytes (unknown fields as the decoder keeps them) it encodes the same again
    const decoded = onnx.ModelProto.decode(want);
    expect(streamed(decoded, 1).equals(want)).toBe(true);
    expect(streamed(decoded).equals(want)).toBe(true);
  });

  it('on the generated Llama and GPT-2 benchmark graphs (tiny sizes)', async () => {
    // the generator runs over dist/ (npm run build); it writes the files that are read back here
    const gen = await import(join(REPO, 'bench', 'models', 'generate.mjs'));
    for (const name of ['llama-tiny', 'gpt2-tiny']) {
      const dir = join(work, name);
      const written = gen.generate(name, dir);
      const loaded = loadModel(written.modelPath);
      const want = reference(loaded.proto);
      expect(Buffer.from(loaded.bytes).equals(want)).toBe(true);
      for (const min of [1, 1024, undefined]) expect(streamed(loaded.proto, min).equals(want), `${name} minViewBytes=${min}`).toBe(true);
    }
  });

  it('payload lengths at the 1-, 2-, 3- and 4-byte varint boundaries', () => {
    for (const n of [127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const model = onnx.ModelProto.create({ irVersion: Long.fromNumber(8), graph: onnx.GraphProto.create({ name: 'g', initializer: [tensor('w', n - (n % 4) || 4)] }) });
      expect(streamed(model, 1).equals(reference(model)), `payload ${n}`).toBe(true);
    }
  });
});

describe('streaming encoder: no copies of large payloads', () => {
  it('every payload at least minViewBytes is one of the parts, by identity, and nothing else is large', () => {
    const model = nestedModel();
    const { parts, length } = encodeModelParts(model, { minViewBytes: 64 * 1024 });
    const payloads = new Set<Uint8Array>();
    const visit = (t: TensorProto) => {
      if ((t.rawData?.length ?? 0) >= 64 * 1024) payloads.add(t.rawData!);
    };
    for (const t of model.graph!.initializer!) visit(t);
    const w1 = model.graph!.initializer![3]!.rawData!;
    expect(parts.includes(w1)).toBe(true);
    const viewParts = parts.filter((p) => p.length >= 64 * 1024);
    // every large part is a payload of the model (the same object), not an encoded copy
    const all = new Set<Uint8Array>();
    const collect = (v: unknown, depth = 0): void => {
      if (depth > 20 || v == null) return;
      if (v instanceof Uint8Array) {
        all.add(v);
        return;
      }
      if (Array.isArray(v)) v.forEach((x) => collect(x, depth + 1));
      else if (typeof v === 'object') for (const x of Object.values(v)) collect(x, depth + 1);
    };
    collect(model);
    for (const p of viewParts) expect(all.has(p), `a ${p.length}-byte part is a model payload`).toBe(true);
    expect(parts.reduce((a, p) => a + p.length, 0)).toBe(length);
    for (const p of payloads) expect(parts.includes(p)).toBe(true);
  });

  it('a loaded model is written with its raw_data straight from the file bytes', () => {
    const gpt = join(work, 'gpt2-tiny', 'model.onnx');
    const src = existsSync(gpt) ? gpt : undefined;
    if (!src) return;
    const loaded = loadModel(src);
    const { parts } = encodeModelParts(loaded.proto, { minViewBytes: 1024 });
    const fromFile = parts.filter((p) => p.buffer === (loaded.bytes as Uint8Array).buffer);
    expect(fromFile.length).toBeGreaterThan(10);
  });
});

describe('writing parts', () => {
  const model = nestedModel(50_000);
  const want = reference(model);
  const fileSink = (path: string) => {
    const fd = openSync(path, 'w');
    let at = 0;
    return {
      write(chunk: Uint8Array) {
        for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, at + done);
        at += chunk.length;
      },
      close: () => closeSync(fd),
    };
  };

  it('writeParts and writePartsAsync produce the encoder bytes, with any staging size, and report progress', async () => {
    const encoded: EncodedParts = encodeModelParts(model, { minViewBytes: 1000 });
    for (const staging of [1, 7, 4096, 1 << 22]) {
      const path = join(work, `parts-${staging}.onnx`);
      const sink = fileSink(path);
      const seen: number[] = [];
      expect(writeParts(encoded, sink, { stagingBytes: staging, progress: (w, total) => (expect(total).toBe(encoded.length), seen.push(w)) })).toBe(want.length);
      sink.close();
      expect(readFileSync(path).equals(want)).toBe(true);
      expect(seen.at(-1)).toBe(want.length);
      expect(seen.every((w, i) => i === 0 || w >= seen[i - 1]!)).toBe(true);
      const apath = join(work, `parts-async-${staging}.onnx`);
      const asink = fileSink(apath);
      expect(await writePartsAsync(encoded, asink, { stagingBytes: staging, sliceBytes: 3000 })).toBe(want.length);
      asink.close();
      expect(readFileSync(apath).equals(want)).toBe(true);
    }
  });

  it('saveModel and saveModelAsync write the codec bytes (embedded weights), and report progress', async () => {
    const a = join(work, 'save-sync.onnx');
    const b = join(work, 'save-async.onnx');
    const progress: Array<[number, number, string]> = [];
    const r = saveModel(model, a, { progress: (w, t, what) => progress.push([w, t, what]) });
    expect(r.bytes).toBe(want.length);
    expect(readFileSync(a).equals(want)).toBe(true);
    expect(progress.at(-1)).toEqual([want.length, want.length, 'model']);
    await saveModelAsync(model, b);
    expect(readFileSync(b).equals(want)).toBe(true);
  });
});
