/**
 * Deferred payloads (src/onnx/skim.ts, src/onnx/payload.ts): a model loaded with `deferPayloads` keeps its
 * large raw_data in the file, reads one only when asked, and is written with those bytes copied from file to
 * file — byte for byte the same output as a model loaded whole. Checked on every exporter fixture (load,
 * save, and `convert` with every pass), on a model with payloads at every nesting depth and unknown fields,
 * and for what can go wrong: malformed files (read whole, same error as before), a closed or changed input
 * file, moving deferred payloads to external data, concurrent saves.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinPasses } from '../../passes/index.js';
import { convertModel } from '../../src/convert.js';
import { AttnpassError } from '../../src/errors.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { Long, onnx, type ModelProto, type TensorProto } from '../../src/onnx/codec.js';
import { isExternal } from '../../src/onnx/external.js';
import { loadModel, loadModelAsync, type LoadedModel } from '../../src/onnx/load.js';
import { deferredPayload, rawDataLength } from '../../src/onnx/payload.js';
import { allInitializers, saveModel, saveModelAsync } from '../../src/onnx/save.js';
import { visitTensors } from '../../src/onnx/skim.js';
import { concatParts, encodeModelParts, isFilePart } from '../../src/onnx/stream.js';
import { fixtures } from '../onnx/models.js';
import { payloadMaker } from './payloads.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-deferred-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ALL = { minFileBytes: 0, minBytes: 1 };
const open: LoadedModel[] = [];
afterAll(() => open.forEach((l) => l.external.close()));

async function deferred(path: string, options: { minFileBytes?: number; minBytes?: number } = ALL): Promise<LoadedModel> {
  const loaded = await loadModelAsync(path, { deferPayloads: options });
  open.push(loaded);
  return loaded;
}

function tensors(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  visitTensors(proto, (t) => out.push(t));
  return out;
}

const deferredCount = (proto: ModelProto): number => tensors(proto).filter((t) => deferredPayload(t)).length;

const { bytes, tensor } = payloadMaker(11);

/** Unknown fields as the decoder keeps them. */
function withUnknowns<T extends object>(message: T, ...fields: Uint8Array[]): T {
  Object.defineProperty(message, '$unknowns', { value: fields, enumerable: false, writable: true, configurable: true });
  return message;
}
const unknownBytes = Uint8Array.from([0xc2, 0x3e, 3, 7, 8, 9]);

/** Payloads in initializers, subgraphs, Constant / function attributes, sparse tensors and training info. */
function nestedModel(big = 100_000): ModelProto {
  const T = onnx.AttributeProto.AttributeType;
  const attr = (fields: object) => onnx.AttributeProto.create(fields);
  const constant = (name: string, n: number) => onnx.NodeProto.create({ opType: 'Constant', name: `c_${name}`, output: [name], attribute: [attr({ name: 'value', type: T.TENSOR, t: tensor(`${name}_t`, n) })] });
  const body = onnx.GraphProto.create({ name: 'body', node: [constant('loop_c', big)], initializer: [tensor('loop_small', 64), tensor('loop_big', big)] });
  const graph = withUnknowns(
    onnx.GraphProto.create({
      name: 'main',
      node: [
        constant('small_const', 12),
        constant('big_const', big),
        onnx.NodeProto.create({ opType: 'Loop', name: 'loop', input: ['', 'cond'], output: ['z'], attribute: [attr({ name: 'body', type: T.GRAPH, g: body })] }),
        onnx.NodeProto.create({
          opType: 'Custom',
          domain: 'x.y',
          name: 'multi',
          output: ['m'],
          attribute: [
            attr({ name: 'tensors', type: T.TENSORS, tensors: [tensor('a', 32), tensor('b', big), tensor('d', big + 8)] }),
            attr({ name: 'sparse', type: T.SPARSE_TENSOR, sparseTensor: onnx.SparseTensorProto.create({ values: tensor('sv', big), dims: [Long.fromNumber(1)] }) }),
            attr({ name: 's', type: T.STRING, s: bytes(big) }),
          ],
        }),
      ],
      initializer: [tensor('w0', big), tensor('w_small', 40), tensor('w_empty', 0, { dims: [Long.fromNumber(0)] }), withUnknowns(tensor('w1', big + 12, { docString: 'after raw_data' }), unknownBytes), tensor('w2', 2_100_000)],
      input: [onnx.ValueInfoProto.create({ name: 'cond' })],
      output: [onnx.ValueInfoProto.create({ name: 'z' })],
      sparseInitializer: [onnx.SparseTensorProto.create({ values: tensor('sparse_v', big), indices: onnx.TensorProto.create({ name: 'sparse_i', dims: [Long.fromNumber(1)], dataType: 7, int64Data: [Long.fromNumber(0)] }), dims: [Long.fromNumber(10)] })],
    }),
    unknownBytes,
  );
  return withUnknowns(
    onnx.ModelProto.create({
      irVersion: Long.fromNumber(10),
      producerName: 'deferred-test',
      graph,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
      trainingInfo: [onnx.TrainingInfoProto.create({ initialization: onnx.GraphProto.create({ name: 'init', initializer: [tensor('ti', big)] }) })],
      functions: [
        onnx.FunctionProto.create({
          name: 'F',
          domain: 'x.y',
          input: ['a'],
          output: ['b'],
          node: [constant('fn_c', big)],
          opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
          attributeProto: [attr({ name: 'default_t', type: T.TENSOR, t: tensor('fn_attr_t', big) })],
        }),
      ],
    }),
    unknownBytes,
  );
}

const nestedPath = join(work, 'nested.onnx');
const nestedBytes = Buffer.from(onnx.ModelProto.encode(nestedModel()).finish());
writeFileSync(nestedPath, nestedBytes);
const BIG_PAYLOADS = 13; // tensors of nestedModel() with raw_data of at least 64 KiB

describe('loading with deferred payloads', () => {
  it('leaves every raw_data of at least minBytes in the file, at every depth, and decodes everything else as read', async () => {
    const eager = loadModel(nestedPath);
    const loaded = await deferred(nestedPath, { minFileBytes: 0, minBytes: 64 << 10 });
    expect(deferredCount(loaded.proto)).toBe(BIG_PAYLOADS);
    expect(loaded.bytes.length).toBeLessThan(nestedBytes.length / 10);
    // sizes without reading
    const eagerTensors = tensors(eager.proto);
    const lazyTensors = tensors(loaded.proto);
    expect(lazyTensors.map((t) => rawDataLength(t))).toEqual(eagerTensors.map((t) => t.rawData?.length ?? 0));
    expect(deferredCount(loaded.proto)).toBe(BIG_PAYLOADS);
    // the streamed encoding copies the payloads from the file and equals the file
    const encoded = encodeModelParts(loaded.proto);
    expect(encoded.parts.filter(isFilePart)).toHaveLength(BIG_PAYLOADS);
    expect(Buffer.from(concatParts(encoded)).equals(nestedBytes)).toBe(true);
    expect(deferredCount(loaded.proto)).toBe(BIG_PAYLOADS);
    // the codec reads each payload on demand and gives the same bytes
    expect(Buffer.from(onnx.ModelProto.encode(loaded.proto).finish()).equals(nestedBytes)).toBe(true);
    expect(deferredCount(loaded.proto)).toBe(0);
  });

  it('with minBytes 1, every non-empty raw_data is deferred and the model still encodes as read', async () => {
    const loaded = await deferred(nestedPath);
    expect(deferredCount(loaded.proto)).toBe(tensors(loadModel(nestedPath).proto).filter((t) => (t.rawData?.length ?? 0) > 0).length);
    expect(Buffer.from(concatParts(encodeModelParts(loaded.proto, { minViewBytes: 1 }))).equals(nestedBytes)).toBe(true);
  });

  it('reading a payload reads it once; assigning one replaces it; both end the deferral of that tensor only', async () => {
    const eager = loadModel(nestedPath);
    const loaded = await deferred(nestedPath, { minFileBytes: 0, minBytes: 64 << 10 });
    const [w0, , , w1] = loaded.proto.graph!.initializer!;
    expect(deferredPayload(w0!)).toBeDefined();
    expect(Buffer.from(w0!.rawData!).equals(Buffer.from(eager.proto.graph!.initializer![0]!.rawData!))).toBe(true);
    expect(deferredPayload(w0!)).toBeUndefined();
    expect(w0!.rawData).toBe(w0!.rawData); // read once, then an ordinary field
    w1!.rawData = new Uint8Array(8);
    expect(deferredPayload(w1!)).toBeUndefined();
    expect(w1!.rawData!.length).toBe(8);
    expect(deferredCount(loaded.proto)).toBe(BIG_PAYLOADS - 2);
  });

  it('small files are read whole unless asked otherwise', async () => {
    const loaded = await loadModelAsync(nestedPath, { deferPayloads: true });
    expect(deferredCount(loaded.proto)).toBe(0);
    expect(loaded.bytes.length).toBe(nestedBytes.length);
  });

  it('malformed files are read whole and refused with the same message as before', async () => {
    const cases: Array<[string, Uint8Array]> = [
      ['truncated in a payload', nestedBytes.subarray(0, nestedBytes.length - 50_000)],
      ['truncated in a header', nestedBytes.subarray(0, 40)],
      ['random bytes', bytes(200_000)],
      ['a wire type that does not exist', Buffer.concat([nestedBytes, Uint8Array.of(0x3e, 1)])],
    ];
    for (const [name, data] of cases) {
      const path = join(work, `bad-${name.replace(/\W+/g, '-')}.onnx`);
      writeFileSync(path, data);
      const eagerError = await loadModelAsync(path).then(() => undefined, (e: unknown) => e);
      const lazyError = await loadModelAsync(path, { deferPayloads: ALL }).then(() => undefined, (e: unknown) => e);
      expect(eagerError, name).toBeInstanceOf(AttnpassError);
      expect((lazyError as Error).message, name).toBe((eagerError as Error).message);
    }
  });

  it('after close, a deferred payload cannot be read (a clear error, never a reused descriptor)', async () => {
    const loaded = await loadModelAsync(nestedPath, { deferPayloads: ALL });
    const t = loaded.proto.graph!.initializer![0]!;
    loaded.external.close();
    expect(() => t.rawData).toThrow(/was closed/);
    await expect(saveModelAsync(loaded.proto, join(work, 'after-close.onnx'))).rejects.toThrow(/was closed/);
    expect(existsSync(join(work, 'after-close.onnx'))).toBe(false);
  });

  it('a model file that changes before the save is refused, and nothing is written', async () => {
    const path = join(work, 'changing.onnx');
    writeFileSync(path, nestedBytes);
    const loaded = await deferred(path);
    appendFileSync(path, Uint8Array.of(0));
    await expect(saveModelAsync(loaded.proto, join(work, 'changed-out.onnx'))).rejects.toThrow(/changed while it was being converted/);
    expect(existsSync(join(work, 'changed-out.onnx'))).toBe(false);
  });
});

describe('saving deferred payloads', () => {
  it('saveModel and saveModelAsync write the file bytes; two async saves at once do not mix their copies', async () => {
    const loaded = await deferred(nestedPath);
    const a = join(work, 'save-sync.onnx');
    saveModel(loaded.proto, a);
    expect(readFileSync(a).equals(nestedBytes)).toBe(true);
    const other = await deferred(nestedPath, { minFileBytes: 0, minBytes: 64 << 10 });
    const [b, c] = [join(work, 'save-async-1.onnx'), join(work, 'save-async-2.onnx')];
    await Promise.all([saveModelAsync(loaded.proto, b), saveModelAsync(other.proto, c)]);
    expect(readFileSync(b).equals(nestedBytes)).toBe(true);
    expect(readFileSync(c).equals(nestedBytes)).toBe(true);
    expect(deferredCount(loaded.proto)).toBeGreaterThan(0);
  });

  it('over the protobuf limit, deferred initializers move to external data from the file, and stay deferred afterwards', async () => {
    const eager = loadModel(nestedPath);
    for (const save of ['sync', 'async'] as const) {
      const loaded = await deferred(nestedPath, { minFileBytes: 0, minBytes: 64 << 10 });
      const before = deferredCount(loaded.proto);
      const out = join(work, `moved-${save}.onnx`);
      const options = { protobufLimit: 64 * 1024 * 1024 + 1000 };
      const r = save === 'sync' ? saveModel(loaded.proto, out, options) : await saveModelAsync(loaded.proto, out, options);
      expect(r.dataFile).toBeDefined();
      expect(deferredCount(loaded.proto)).toBe(before);
      const back = loadModel(out);
      const moved = allInitializers(back.proto).filter(isExternal);
      expect(moved.length).toBeGreaterThan(3);
      const want = new Map(allInitializers(eager.proto).map((t) => [t.name, Buffer.from(t.rawData ?? [])]));
      for (const t of moved) expect(back.external.read(t).equals(want.get(t.name)!), t.name!).toBe(true);
      back.external.close();
    }
  });
});

describe('convert with deferred payloads', () => {
  const registry = new PassRegistry(builtinPasses);
  const all = fixtures();

  it('writes, for every fixture and pass, the same bytes as a conversion that reads the model whole', async () => {
    if (all.length === 0) return;
    let compared = 0;
    for (const fixture of all) {
      const loaded = await deferred(fixture.path);
      expect(deferredCount(loaded.proto), fixture.name).toBeGreaterThan(0);
      for (const pass of ['ast', 'att', 'span', 'window']) {
        const eager = join(work, `eager.onnx`);
        const lazy = join(work, `lazy.onnx`);
        const ok = await convertModel({ input: fixture.path, output: eager, pass, registry, deferPayloads: false }).then(() => true, () => false);
        if (!ok) {
          await expect(convertModel({ input: fixture.path, output: lazy, pass, registry, deferPayloads: ALL })).rejects.toThrow();
          continue;
        }
        await convertModel({ input: fixture.path, output: lazy, pass, registry, deferPayloads: ALL });
        expect(readFileSync(lazy).equals(readFileSync(eager)), `${fixture.name} --pass ${pass}`).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(3 * all.length);
  });

  it('converting a model onto its own path reads the weights of the file as it was loaded', async () => {
    const fixture = all.find((f) => f.name === 'llama-gqa-legacy') ?? all[0];
    if (!fixture) return;
    const expected = join(work, 'inplace-expected.onnx');
    await convertModel({ input: fixture.path, output: expected, pass: 'ast', registry, deferPayloads: false });
    const path = join(work, 'inplace.onnx');
    writeFileSync(path, readFileSync(fixture.path));
    await convertModel({ input: path, output: path, pass: 'ast', registry, deferPayloads: ALL });
    expect(readFileSync(path).equals(readFileSync(expected))).toBe(true);
  });
});
