/**
 * Small ONNX models built in tests with onnx.*.create (no exporter needed), plus helpers to write them,
 * read the real exporter fixtures under fixtures/models, and run models in onnxruntime-node.
 * Shared by tests/onnx, tests/ir, tests/validate, tests/malformed and tests/cli.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Long, onnx, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/onnx/codec.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const FIXTURES = join(REPO, 'fixtures/models');
export const CLI = join(REPO, 'bin/attnpass.js');

export const F32 = onnx.TensorProto.DataType.FLOAT;
export const I64 = onnx.TensorProto.DataType.INT64;

export function tmp(prefix = 'attnpass-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function encode(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function writeModel(dir: string, name: string, model: ModelProto | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, model instanceof Uint8Array ? model : encode(model));
  return path;
}

// ---------------------------------------------------------------- builders

type Dim = number | string | null;

export function vi(name: string, elemType: number | undefined, shape?: Dim[]): ValueInfoProto {
  if (elemType === undefined) return onnx.ValueInfoProto.create({ name });
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: shape
          ? onnx.TensorShapeProto.create({
              dim: shape.map((d) =>
                typeof d === 'number'
                  ? onnx.TensorShapeProto.Dimension.create({ dimValue: Long.fromNumber(d) })
                  : typeof d === 'string'
                    ? onnx.TensorShapeProto.Dimension.create({ dimParam: d })
                    : onnx.TensorShapeProto.Dimension.create({}),
              ),
            })
          : undefined,
      }),
    }),
  });
}

export function attrInt(name: string, i: number | Long): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: typeof i === 'number' ? Long.fromNumber(i) : i });
}
export function attrFloat(name: string, f: number): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f });
}
export function attrInts(name: string, ints: Array<number | Long>): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: ints.map((v) => (typeof v === 'number' ? Long.fromNumber(v) : v)) });
}
export function attrTensor(name: string, t: TensorProto): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.TENSOR, t });
}
export function attrGraph(name: string, g: GraphProto): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.GRAPH, g });
}

export function node(opType: string, inputs: string[], outputs: string[], extra: Partial<NodeProto> = {}): NodeProto {
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name: extra.name ?? `${opType}_${outputs[0]}`, ...extra });
}

export function floatTensor(name: string, dims: number[], fill: (i: number) => number): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  const arr = new Float32Array(n);
  for (let i = 0; i < n; i++) arr[i] = fill(i);
  return onnx.TensorProto.create({ name, dims: dims.map((d) => Long.fromNumber(d)), dataType: F32, rawData: new Uint8Array(arr.buffer) });
}

export function int64Init(name: string, values: Array<number | bigint>, dims = [values.length]): TensorProto {
  const arr = BigInt64Array.from(values, (v) => BigInt(v));
  return onnx.TensorProto.create({ name, dims: dims.map((d) => Long.fromNumber(d)), dataType: I64, rawData: new Uint8Array(arr.buffer) });
}

export function opset(domain: string, version: number): onnx.OperatorSetIdProto {
  return onnx.OperatorSetIdProto.create({ domain, version: Long.fromNumber(version) });
}

export function model(graph: GraphProto, extra: Partial<ModelProto> = {}): ModelProto {
  return onnx.ModelProto.create({ irVersion: Long.fromNumber(8), producerName: 'attnpass-tests', opsetImport: [opset('', 17)], graph, ...extra });
}

/** Deterministic pseudo-random numbers in [-0.5, 0.5). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) - 0.5;
  };
}

/**
 * One self-attention block in the shape a TorchScript export writes it: Q/K/V projections, heads split by
 * Reshape + Transpose, Q·Kᵀ / √d, additive mask, Softmax, ·V, heads merged, output projection.
 * Runs in onnxruntime. Carries doc strings, metadata, value_info and a Constant node.
 */
export function attentionModel(opts: { hidden?: number; heads?: number; mask?: boolean; seed?: number } = {}): ModelProto {
  const hidden = opts.hidden ?? 16;
  const heads = opts.heads ?? 2;
  const d = hidden / heads;
  const r = rng(opts.seed ?? 7);
  const w = (name: string) => floatTensor(name, [hidden, hidden], () => r() * 0.5);
  const nodes: NodeProto[] = [
    node('MatMul', ['x', 'Wq'], ['q'], { docString: 'query projection' }),
    node('MatMul', ['x', 'Wk'], ['k']),
    node('MatMul', ['x', 'Wv'], ['v']),
    node('Reshape', ['q', 'heads_shape'], ['q4']),
    node('Reshape', ['k', 'heads_shape'], ['k4']),
    node('Reshape', ['v', 'heads_shape'], ['v4']),
    node('Transpose', ['q4'], ['qh'], { attribute: [attrInts('perm', [0, 2, 1, 3])] }),
    node('Transpose', ['k4'], ['kt'], { attribute: [attrInts('perm', [0, 2, 3, 1])] }),
    node('Transpose', ['v4'], ['vh'], { attribute: [attrInts('perm', [0, 2, 1, 3])] }),
    node('MatMul', ['qh', 'kt'], ['scores']),
    node('Constant', [], ['sqrt_d'], { attribute: [attrTensor('value', floatTensor('', [], () => Math.sqrt(d)))] }),
    node('Div', ['scores', 'sqrt_d'], ['scaled']),
  ];
  const inputs = [vi('x', F32, ['batch', 'seq', hidden])];
  let softIn = 'scaled';
  if (opts.mask) {
    inputs.push(vi('mask', F32, ['batch', 1, 1, 'seq']));
    nodes.push(node('Add', ['scaled', 'mask'], ['masked']));
    softIn = 'masked';
  }
  nodes.push(
    node('Softmax', [softIn], ['probs'], { attribute: [attrInt('axis', -1)], metadataProps: [onnx.StringStringEntryProto.create({ key: 'pkg.torch.onnx.name_scopes', value: "['attn']" })] }),
    node('MatMul', ['probs', 'vh'], ['ctx']),
    node('Transpose', ['ctx'], ['ctx_t'], { attribute: [attrInts('perm', [0, 2, 1, 3])] }),
    node('Reshape', ['ctx_t', 'merge_shape'], ['merged']),
    node('MatMul', ['merged', 'Wo'], ['y']),
  );
  const graph = onnx.GraphProto.create({
    name: 'attention_block',
    node: nodes,
    initializer: [w('Wq'), w('Wk'), w('Wv'), w('Wo'), int64Init('heads_shape', [0, 0, heads, d]), int64Init('merge_shape', [0, 0, hidden])],
    input: inputs,
    output: [vi('y', F32, ['batch', 'seq', hidden])],
    valueInfo: [vi('q', F32, ['batch', 'seq', hidden]), vi('probs', F32, ['batch', heads, 'seq', 'seq'])],
    docString: 'a one-layer attention block',
  });
  return model(graph, { metadataProps: [onnx.StringStringEntryProto.create({ key: 'source', value: 'tests' })], producerVersion: '1.0' });
}

/** A model with an If whose branches read an outer value, and a model-local function. */
export function controlFlowModel(): ModelProto {
  const then = onnx.GraphProto.create({
    name: 'then_g',
    node: [node('Add', ['x', 'x'], ['t_out'])],
    output: [vi('t_out', F32, [2, 3])],
  });
  const els = onnx.GraphProto.create({
    name: 'else_g',
    node: [node('Mul', ['x', 'x'], ['e_out'])],
    output: [vi('e_out', F32, [2, 3])],
  });
  const fn = onnx.FunctionProto.create({
    name: 'Twice',
    domain: 'test.fn',
    input: ['a'],
    output: ['b'],
    node: [node('Add', ['a', 'a'], ['b'], { name: 'twice_add' })],
    opsetImport: [opset('', 17)],
  });
  const graph = onnx.GraphProto.create({
    name: 'cf',
    node: [
      node('ReduceSum', ['x'], ['s'], { attribute: [attrInt('keepdims', 0)] }),
      node('Greater', ['s', 'zero'], ['cond']),
      node('If', ['cond'], ['branch'], { attribute: [attrGraph('then_branch', then), attrGraph('else_branch', els)] }),
      node('Twice', ['branch'], ['y'], { domain: 'test.fn' }),
    ],
    initializer: [floatTensor('zero', [], () => 0)],
    input: [vi('x', F32, [2, 3])],
    output: [vi('y', F32, [2, 3])],
  });
  return model(graph, { opsetImport: [opset('', 17), opset('test.fn', 1)], functions: [fn] });
}

// ---------------------------------------------------------------- fixtures

export interface IoTensor {
  name: string;
  dtype: string;
  shape: number[];
  data_b64: string;
}
export interface IoCase {
  inputs: IoTensor[];
  outputs: IoTensor[];
}
export interface Fixture {
  name: string;
  dir: string;
  path: string;
  cases: IoCase[];
}

/** Every fixture under fixtures/models that has a model.onnx (recorded io optional). */
export function fixtures(): Fixture[] {
  if (!existsSync(FIXTURES)) return [];
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(FIXTURES, e.name, 'model.onnx')))
    .map((e) => {
      const dir = join(FIXTURES, e.name);
      const ioPath = join(dir, 'io.json');
      const cases: IoCase[] = existsSync(ioPath) ? ((JSON.parse(readFileSync(ioPath, 'utf8')) as { cases?: IoCase[] }).cases ?? []) : [];
      return { name: e.name, dir, path: join(dir, 'model.onnx'), cases };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

// ---------------------------------------------------------------- onnxruntime

type OrtModule = typeof import('onnxruntime-node');
let ortModule: Promise<OrtModule> | undefined;
export function ort(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

const TYPED: Record<string, { array: { new (b: ArrayBuffer, o: number, n: number): ArrayLike<unknown> & { buffer: ArrayBufferLike }; BYTES_PER_ELEMENT: number }; ort: string }> = {
  float32: { array: Float32Array, ort: 'float32' },
  float64: { array: Float64Array, ort: 'float64' },
  int64: { array: BigInt64Array as never, ort: 'int64' },
  int32: { array: Int32Array, ort: 'int32' },
  int8: { array: Int8Array, ort: 'int8' },
  uint8: { array: Uint8Array, ort: 'uint8' },
  bool: { array: Uint8Array, ort: 'bool' },
  float16: { array: Uint16Array, ort: 'float16' },
};

export async function tensorFromIo(t: IoTensor): Promise<import('onnxruntime-node').Tensor> {
  const { Tensor } = await ort();
  const bytes = Buffer.from(t.data_b64, 'base64');
  const kind = TYPED[t.dtype];
  if (!kind) throw new Error(`io.json dtype '${t.dtype}' is not handled by the test helper`);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const data = new kind.array(copy.buffer, 0, bytes.length / kind.array.BYTES_PER_ELEMENT);
  return new Tensor(kind.ort as 'float32', data as Float32Array, t.shape);
}

export async function runModel(source: string | Uint8Array, feeds: Record<string, import('onnxruntime-node').Tensor>): Promise<Record<string, import('onnxruntime-node').Tensor>> {
  const { InferenceSession } = await ort();
  const session = typeof source === 'string' ? await InferenceSession.create(source) : await InferenceSession.create(source);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Largest absolute difference between two output tensors (Infinity when shapes or types differ). */
export function maxAbsDiff(a: import('onnxruntime-node').Tensor, b: { dims: readonly number[]; data: unknown; type: string }): number {
  if (a.dims.join() !== b.dims.join()) return Infinity;
  const x = a.data as ArrayLike<number | bigint>;
  const y = b.data as ArrayLike<number | bigint>;
  if (x.length !== y.length) return Infinity;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    const yi = y[i]!;
    if (typeof xi === 'bigint' || typeof yi === 'bigint') {
      if (BigInt(xi) !== BigInt(yi)) return Infinity;
      continue;
    }
    if (Number.isNaN(xi) && Number.isNaN(yi)) continue;
    if (xi === yi) continue;
    m = Math.max(m, Math.abs(xi - yi));
  }
  return m;
}

export function floatFeed(r: () => number, dims: number[]): Float32Array {
  const n = dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => r());
}
