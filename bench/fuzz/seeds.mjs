// Seed models for the fuzzer: every fixture under fixtures/models, plus small models built here (so the
// fuzzer has something to chew on before the fixtures exist): an attention block, an If with a
// model-local function, and an attention block whose weights live in external data.
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx, Long } from '../../dist/src/onnx/codec.js';

const F32 = 1;
const I64 = 7;

function vi(name, elemType, shape) {
  return onnx.ValueInfoProto.create({
    name,
    type: elemType === undefined ? undefined : {
      tensorType: {
        elemType,
        shape: shape && { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: Long.fromNumber(d) } : { dimParam: d })) },
      },
    },
  });
}
const node = (opType, input, output, extra = {}) => onnx.NodeProto.create({ opType, input, output, name: extra.name ?? `${opType}_${output[0]}`, ...extra });
const ints = (name, v) => onnx.AttributeProto.create({ name, type: 7, ints: v.map((x) => Long.fromNumber(x)) });
const int = (name, v) => onnx.AttributeProto.create({ name, type: 2, i: Long.fromNumber(v) });
function floats(name, dims, seed) {
  const n = dims.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.5;
  return onnx.TensorProto.create({ name, dims: dims.map((d) => Long.fromNumber(d)), dataType: F32, rawData: new Uint8Array(a.buffer) });
}
const i64 = (name, v) => onnx.TensorProto.create({ name, dims: [Long.fromNumber(v.length)], dataType: I64, rawData: new Uint8Array(BigInt64Array.from(v, BigInt).buffer) });
const model = (graph, extra = {}) => onnx.ModelProto.create({ irVersion: Long.fromNumber(8), producerName: 'attnpass-fuzz', opsetImport: [{ domain: '', version: Long.fromNumber(17) }], graph, ...extra });

export function attentionSeed() {
  return model(onnx.GraphProto.create({
    name: 'attention_block',
    node: [
      node('MatMul', ['x', 'Wq'], ['q']), node('MatMul', ['x', 'Wk'], ['k']), node('MatMul', ['x', 'Wv'], ['v']),
      node('Reshape', ['q', 'heads'], ['q4']), node('Reshape', ['k', 'heads'], ['k4']), node('Reshape', ['v', 'heads'], ['v4']),
      node('Transpose', ['q4'], ['qh'], { attribute: [ints('perm', [0, 2, 1, 3])] }),
      node('Transpose', ['k4'], ['kt'], { attribute: [ints('perm', [0, 2, 3, 1])] }),
      node('Transpose', ['v4'], ['vh'], { attribute: [ints('perm', [0, 2, 1, 3])] }),
      node('MatMul', ['qh', 'kt'], ['scores']),
      node('Constant', [], ['sqrt_d'], { attribute: [onnx.AttributeProto.create({ name: 'value', type: 4, t: onnx.TensorProto.create({ dataType: F32, floatData: [Math.sqrt(8)] }) })] }),
      node('Div', ['scores', 'sqrt_d'], ['scaled']),
      node('Add', ['scaled', 'mask'], ['masked']),
      node('Softmax', ['masked'], ['probs'], { attribute: [int('axis', -1)] }),
      node('MatMul', ['probs', 'vh'], ['ctx']),
      node('Transpose', ['ctx'], ['ctx_t'], { attribute: [ints('perm', [0, 2, 1, 3])] }),
      node('Reshape', ['ctx_t', 'merge'], ['merged']),
      node('MatMul', ['merged', 'Wo'], ['y']),
    ],
    initializer: [floats('Wq', [16, 16], 1), floats('Wk', [16, 16], 2), floats('Wv', [16, 16], 3), floats('Wo', [16, 16], 4), i64('heads', [0, 0, 2, 8]), i64('merge', [0, 0, 16])],
    input: [vi('x', F32, ['batch', 'seq', 16]), vi('mask', F32, ['batch', 1, 1, 'seq'])],
    output: [vi('y', F32, ['batch', 'seq', 16])],
    valueInfo: [vi('probs', F32, ['batch', 2, 'seq', 'seq'])],
  }));
}

export function controlFlowSeed() {
  const branch = (name, op, out) => onnx.GraphProto.create({ name, node: [node(op, ['x', 'x'], [out])], output: [vi(out, F32, [2, 3])] });
  return model(onnx.GraphProto.create({
    name: 'cf',
    node: [
      node('ReduceSum', ['x'], ['s'], { attribute: [int('keepdims', 0)] }),
      node('Greater', ['s', 'zero'], ['cond']),
      node('If', ['cond'], ['branch'], { attribute: [onnx.AttributeProto.create({ name: 'then_branch', type: 5, g: branch('then_g', 'Add', 't_out') }), onnx.AttributeProto.create({ name: 'else_branch', type: 5, g: branch('else_g', 'Mul', 'e_out') })] }),
      node('Twice', ['branch'], ['y'], { domain: 'test.fn' }),
    ],
    initializer: [onnx.TensorProto.create({ name: 'zero', dataType: F32, rawData: new Uint8Array(4) })],
    input: [vi('x', F32, [2, 3])],
    output: [vi('y', F32, [2, 3])],
  }), {
    opsetImport: [{ domain: '', version: Long.fromNumber(17) }, { domain: 'test.fn', version: Long.fromNumber(1) }],
    functions: [onnx.FunctionProto.create({ name: 'Twice', domain: 'test.fn', input: ['a'], output: ['b'], node: [node('Add', ['a', 'a'], ['b'])], opsetImport: [{ domain: '', version: Long.fromNumber(17) }] })],
  });
}

/** The attention seed with its float weights in weights.bin (and a link leading out, for mutations to find). */
export function writeExternalSeed(dir) {
  mkdirSync(dir, { recursive: true });
  const m = attentionSeed();
  const chunks = [];
  let offset = 0;
  m.graph.initializer = m.graph.initializer.map((t) => {
    if (t.dataType !== F32) return t;
    const e = (key, value) => onnx.StringStringEntryProto.create({ key, value });
    const ext = onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: F32, dataLocation: 1, externalData: [e('location', 'weights.bin'), e('offset', String(offset)), e('length', String(t.rawData.length))] });
    chunks.push(t.rawData);
    offset += t.rawData.length;
    return ext;
  });
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks));
  writeFileSync(join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
  return join(dir, 'model.onnx');
}

/** Seed files: [{ name, path, dir, sidecars: [file names beside the model that mutants get a copy of] }]. */
export function seeds(repo, workDir, only) {
  const out = [];
  const fixtures = join(repo, 'fixtures/models');
  if (existsSync(fixtures)) {
    for (const name of readdirSync(fixtures).sort()) {
      const path = join(fixtures, name, 'model.onnx');
      if (!existsSync(path)) continue;
      const sidecars = readdirSync(join(fixtures, name)).filter((f) => f !== 'model.onnx' && !f.endsWith('.json'));
      out.push({ name, path, dir: join(fixtures, name), sidecars });
    }
  }
  const builtDir = join(workDir, 'seeds');
  mkdirSync(builtDir, { recursive: true });
  const write = (name, m) => {
    mkdirSync(join(builtDir, name), { recursive: true });
    const path = join(builtDir, name, 'model.onnx');
    writeFileSync(path, onnx.ModelProto.encode(m).finish());
    out.push({ name, path, dir: join(builtDir, name), sidecars: [] });
  };
  write('built-attention', attentionSeed());
  write('built-control-flow', controlFlowSeed());
  const ext = writeExternalSeed(join(builtDir, 'built-external'));
  try {
    symlinkSync('/etc/hostname', join(builtDir, 'built-external', 'link-out'));
  } catch {
    // exists
  }
  out.push({ name: 'built-external', path: ext, dir: join(builtDir, 'built-external'), sidecars: ['weights.bin', 'link-out'] });
  return only ? out.filter((s) => only.split(',').includes(s.name)) : out;
}
