/**
 * What load → save and load → lift → lower → save keep, bit for bit: unknown fields on nested messages,
 * int64 values at the limits, raw_data of every element type, fields present but empty, value_info order,
 * sparse initializers. And raw_data stays a view into the file's bytes until a caller reads values.
 */
import { describe, expect, it } from 'vitest';
import { Long, onnx, type ModelProto } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/load.js';
import { encodeModel, saveModel } from '../../src/onnx/save.js';
import { tensorRawBytes, tensorToBigInt64, tensorToFloat64 } from '../../src/onnx/tensor.js';
import { Model } from '../../src/ir/model.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attentionModel, attrInts, controlFlowModel, encode, F32, floatTensor, I64, int64Init, model, node, opset, tmp, vi, runModel, ort, rng, floatFeed, maxAbsDiff } from './models.js';

const INT64_MAX = Long.fromString('9223372036854775807');
const INT64_MIN = Long.fromString('-9223372036854775808');

/** Protobuf bytes of fields no ONNX schema has: a string (field 99), a varint (field 1000), a fixed32 (field 77). */
function unknownFields(tagText: string): Uint8Array[] {
  const text = new TextEncoder().encode(tagText);
  const w = onnx.StringStringEntryProto.encode({ key: '' }).finish(); // just to get a Writer-free buffer helper
  void w;
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 127) {
      out.push((n & 127) | 128);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  return [
    Uint8Array.from([...varint((99 << 3) | 2), ...varint(text.length), ...text]),
    Uint8Array.from([...varint((1000 << 3) | 0), ...varint(12345)]),
    Uint8Array.from([...varint((77 << 3) | 5), 1, 2, 3, 4]),
  ];
}

function withUnknowns<T extends object>(message: T, tag: string): T {
  Object.defineProperty(message, '$unknowns', { value: unknownFields(tag), enumerable: false, writable: true, configurable: true });
  return message;
}

/** Bytes after load → save (encode) and after load → lift → lower → encode. */
function roundTrips(bytes: Uint8Array): { saved: Uint8Array; lowered: Uint8Array } {
  const loaded = loadModel(bytes);
  return { saved: encodeModel(loaded.proto), lowered: encodeModel(Model.lift(loadModel(bytes)).lower()) };
}

function expectIdentical(bytes: Uint8Array): void {
  const { saved, lowered } = roundTrips(bytes);
  expect(Buffer.from(saved).equals(Buffer.from(bytes))).toBe(true);
  expect(Buffer.from(lowered).equals(Buffer.from(bytes))).toBe(true);
}

function countOccurrences(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay).toString('latin1').split(Buffer.from(needle).toString('latin1')).length - 1;
}

describe('unknown fields', () => {
  function modelWithUnknowns(): ModelProto {
    const m = attentionModel();
    const g = m.graph!;
    withUnknowns(g.node![0]!, 'node-extra');
    withUnknowns(g.node![6]!.attribute![0]!, 'attribute-extra');
    withUnknowns(g.initializer![0]!, 'tensor-extra');
    withUnknowns(g.input![0]!, 'value-info-extra');
    withUnknowns(g.input![0]!.type!.tensorType!, 'type-extra');
    withUnknowns(g, 'graph-extra');
    withUnknowns(m.opsetImport![0]!, 'opset-extra');
    withUnknowns(m, 'model-extra');
    return m;
  }

  it('appended to NodeProto, TensorProto and other messages survive load → save byte-identically', () => {
    const bytes = encode(modelWithUnknowns());
    for (const tag of ['node-extra', 'tensor-extra', 'attribute-extra', 'graph-extra', 'model-extra', 'value-info-extra', 'type-extra', 'opset-extra']) {
      expect(countOccurrences(bytes, new TextEncoder().encode(tag))).toBe(1);
    }
    const loaded = loadModel(bytes);
    expect((loaded.proto.graph!.node![0] as { $unknowns?: Uint8Array[] }).$unknowns).toHaveLength(3);
    expect((loaded.proto.graph!.initializer![0] as { $unknowns?: Uint8Array[] }).$unknowns).toHaveLength(3);
    expect(Buffer.from(encodeModel(loaded.proto)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('survive load → lift → lower → save byte-identically', () => {
    const bytes = encode(modelWithUnknowns());
    const dir = tmp();
    const loaded = loadModel(bytes);
    const out = saveModel(Model.lift(loaded).lower(), join(dir, 'out.onnx'));
    expect(Buffer.from(readFileSync(out.path)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('in a subgraph node and a function node survive lift → lower', () => {
    const m = controlFlowModel();
    const ifNode = m.graph!.node![2]!;
    withUnknowns(ifNode.attribute![0]!.g!.node![0]!, 'then-node-extra');
    withUnknowns(ifNode.attribute![1]!, 'else-attr-extra');
    withUnknowns(m.functions![0]!.node![0]!, 'function-node-extra');
    withUnknowns(m.functions![0]!, 'function-extra');
    expectIdentical(encode(m));
  });

  it('still run in onnxruntime after lift → lower', async () => {
    const { Tensor } = await ort();
    const r = rng(3);
    const x = new Tensor('float32', floatFeed(r, [1, 4, 16]), [1, 4, 16]);
    const bytes = encode(modelWithUnknowns());
    const before = await runModel(bytes, { x });
    const after = await runModel(encodeModel(Model.lift(loadModel(bytes)).lower()), { x });
    expect(maxAbsDiff(before.y!, after.y!)).toBe(0);
  });
});

describe('int64 at the limits', () => {
  function limitsModel(): ModelProto {
    const g = onnx.GraphProto.create({
      name: 'limits',
      node: [
        node('Slice', ['x', 'starts', 'ends', 'axes'], ['y']),
        node('Constant', [], ['c'], { attribute: [attrInts('value_ints', [INT64_MAX, INT64_MIN, -1])] }),
      ],
      initializer: [int64Init('starts', [1]), int64Init('ends', [2n ** 63n - 1n]), int64Init('axes', [0])],
      input: [vi('x', F32, [5])],
      output: [vi('y', F32, [4]), vi('c', I64, [3])],
      valueInfo: [
        onnx.ValueInfoProto.create({
          name: 'big',
          type: onnx.TypeProto.create({
            tensorType: onnx.TypeProto.Tensor.create({
              elemType: F32,
              shape: onnx.TensorShapeProto.create({ dim: [onnx.TensorShapeProto.Dimension.create({ dimValue: INT64_MAX }), onnx.TensorShapeProto.Dimension.create({ dimValue: INT64_MIN })] }),
            }),
          }),
        }),
      ],
    });
    return model(g);
  }

  it('dims at INT64_MAX / INT64_MIN, int64 data and attribute ints survive both paths byte-identically', () => {
    const bytes = encode(limitsModel());
    expectIdentical(bytes);
    const m = Model.lift(loadModel(bytes));
    const ends = m.graph.lookup('ends')!.initializer!;
    expect(tensorToBigInt64(ends)[0]).toBe(2n ** 63n - 1n);
    const ints = m.graph.nodes[1]!.attr('value_ints')!.ints!;
    expect(ints.map((v) => v.toString())).toEqual(['9223372036854775807', '-9223372036854775808', '-1']);
  });

  it('the Slice with ends = INT64_MAX still runs after lift → lower', async () => {
    const { Tensor } = await ort();
    const bytes = encode(limitsModel());
    const out = await runModel(encodeModel(Model.lift(loadModel(bytes)).lower()), { x: new Tensor('float32', Float32Array.from([1, 2, 3, 4, 5]), [5]) });
    expect([...(out.y!.data as Float32Array)]).toEqual([2, 3, 4, 5]);
  });
});

describe('raw_data of every element type is kept bit-exact', () => {
  const T = onnx.TensorProto.DataType;
  const cases: Array<[string, number, number[], number[]]> = [
    // name, data type, dims, raw bytes (NaN payloads, signed zeros, subnormals, odd int4 counts)
    ['float16', T.FLOAT16, [4], [0x01, 0x7e, 0x00, 0x80, 0x01, 0x00, 0xff, 0xfc]],
    ['bfloat16', T.BFLOAT16, [3], [0x81, 0x7f, 0x00, 0x80, 0x01, 0xff]],
    ['float8e4m3fn', T.FLOAT8E4M3FN, [4], [0x7f, 0xff, 0x80, 0x01]],
    ['float8e4m3fnuz', T.FLOAT8E4M3FNUZ, [2], [0x80, 0x7f]],
    ['float8e5m2', T.FLOAT8E5M2, [3], [0x7d, 0xfe, 0x03]],
    ['float8e5m2fnuz', T.FLOAT8E5M2FNUZ, [2], [0x80, 0x01]],
    ['int4', T.INT4, [3], [0x8f, 0x07]],
    ['uint4', T.UINT4, [5], [0xf0, 0x0f, 0x0a]],
    ['float4e2m1', T.FLOAT4E2M1, [2], [0xf7]],
    ['float32 NaN payload', T.FLOAT, [2], [0x01, 0x00, 0xc0, 0x7f, 0x00, 0x00, 0x00, 0x80]],
  ];
  for (const [name, dataType, dims, raw] of cases) {
    it(name, () => {
      const t = onnx.TensorProto.create({ name: 'w', dims: dims.map((d) => Long.fromNumber(d)), dataType, rawData: Uint8Array.from(raw) });
      const g = onnx.GraphProto.create({ name: 'g', node: [node('Identity', ['w'], ['y'])], initializer: [t], output: [vi('y', dataType, dims)] });
      const bytes = encode(model(g, { irVersion: Long.fromNumber(11), opsetImport: [opset('', 23)] }));
      expectIdentical(bytes);
      const m = Model.lift(loadModel(bytes));
      expect([...tensorRawBytes(m.graph.lookup('w')!.initializer!)]).toEqual(raw);
      const lowered = loadModel(encodeModel(m.lower()));
      expect([...lowered.proto.graph!.initializer![0]!.rawData!]).toEqual(raw);
    });
  }
});

describe('raw_data stays a view until read', () => {
  it('decoded raw_data shares the file buffer; lift and lower keep the same object', () => {
    const bytes = encode(attentionModel());
    const loaded = loadModel(bytes);
    const raw = loaded.proto.graph!.initializer![0]!.rawData!;
    expect(raw.buffer).toBe(loaded.bytes.buffer);
    expect(raw.byteOffset).toBeGreaterThan(0);
    const m = Model.lift(loaded);
    const w = m.graph.lookup('Wq')!;
    expect(w.initializer!.rawData).toBe(raw);
    expect(tensorRawBytes(w.initializer!)).toBe(raw); // the raw layout is handed out as the view itself
    const lowered = m.lower();
    expect(lowered.graph!.initializer![0]!.rawData).toBe(raw);
    const values = tensorToFloat64(w.initializer!); // reading values copies once, into a fresh array
    expect(values.buffer).not.toBe(loaded.bytes.buffer);
  });

  it('a model loaded from a file keeps views into the file bytes (no copy per tensor)', () => {
    const dir = tmp();
    const path = join(dir, 'm.onnx');
    saveModel(attentionModel(), path);
    const loaded = loadModel(path);
    for (const t of loaded.proto.graph!.initializer!) expect(t.rawData!.buffer).toBe(loaded.bytes.buffer);
  });
});

describe('fields present but empty, order and naming', () => {
  it('empty node name and domain, empty doc_string, unnamed graph and opset without domain survive lift → lower', () => {
    const g = onnx.GraphProto.create({
      node: [onnx.NodeProto.create({ input: ['x'], output: ['y'], opType: 'Relu', name: '', domain: '', docString: '' }), onnx.NodeProto.create({ input: ['y'], output: ['z'], opType: 'Neg', domain: 'ai.onnx' })],
      input: [vi('x', F32, [2])],
      output: [vi('z', F32, [2])],
    });
    const m = onnx.ModelProto.create({ irVersion: Long.fromNumber(8), opsetImport: [onnx.OperatorSetIdProto.create({ version: Long.fromNumber(17) })], graph: g, docString: '' });
    expectIdentical(encode(m));
  });

  it('value_info keeps its order, including entries for initializers, graph outputs and unknown names', () => {
    const m = attentionModel();
    const g = m.graph!;
    g.valueInfo = [vi('probs', F32, ['batch', 2, 'seq', 'seq']), vi('Wq', F32, [16, 16]), vi('nowhere', F32, [1]), vi('q', F32, ['batch', 'seq', 16]), vi('y', F32, ['batch', 'seq', 16])];
    expectIdentical(encode(m));
  });

  it('graph output without a type stays without one (no inferred type is added)', () => {
    const m = controlFlowModel();
    m.graph!.node![2]!.attribute![0]!.g!.output = [vi('t_out', undefined)];
    expectIdentical(encode(m));
  });

  it('sparse initializers are values and are written back as read', async () => {
    const sparse = onnx.SparseTensorProto.create({
      values: floatTensor('sp', [2], (i) => i + 1),
      indices: int64Init('sp_idx', [1, 4]),
      dims: [Long.fromNumber(6)],
    });
    const g = onnx.GraphProto.create({ name: 's', node: [node('Add', ['x', 'sp'], ['y'])], sparseInitializer: [sparse], input: [vi('x', F32, [6])], output: [vi('y', F32, [6])] });
    const bytes = encode(model(g));
    expectIdentical(bytes);
    const lifted = Model.lift(loadModel(bytes));
    expect(lifted.issues).toEqual([]);
    expect(lifted.graph.lookup('sp')!.sparseInitializer).toBeDefined();
    const { Tensor } = await ort();
    const out = await runModel(encodeModel(lifted.lower()), { x: new Tensor('float32', new Float32Array(6), [6]) });
    expect([...(out.y!.data as Float32Array)]).toEqual([0, 1, 0, 0, 2, 0]);
  });

  it('reads non-canonical encodings (unpacked float_data, packed dims) and writes them canonically', () => {
    // float_data is [packed = true] in the schema; a writer may still send it unpacked (wire type 5 per value)
    const t = onnx.TensorProto.create({ name: 'w', dims: [Long.fromNumber(2)], dataType: F32, floatData: [1.5, -2] });
    const canonical = onnx.TensorProto.encode(t).finish();
    const unpacked = Uint8Array.from([0x08, 0x02, 0x10, 0x01, 0x25, ...new Uint8Array(Float32Array.of(1.5).buffer), 0x25, ...new Uint8Array(Float32Array.of(-2).buffer), 0x42, 0x01, 0x77]);
    const decoded = onnx.TensorProto.decode(unpacked);
    expect(decoded.floatData).toEqual([1.5, -2]);
    expect(Buffer.from(onnx.TensorProto.encode(decoded).finish()).equals(Buffer.from(canonical))).toBe(true);
    const packedDims = Uint8Array.from([0x0a, 0x02, 0x02, 0x03, 0x10, 0x01]);
    expect(onnx.TensorProto.decode(packedDims).dims!.map(Number)).toEqual([2, 3]);
  });
});
