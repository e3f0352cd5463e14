/** Shared helpers of the detection tests: fixtures, their recorded I/O, onnxruntime runs, a reference splice. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_ROOT, fixtures, type ExpectedSite, type FixtureMeta } from '../support/fixtures.js';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../src/onnx/save.js';
import type { ModelProto } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/codec.js';
import type { Value } from '../../src/ir/graph.js';
import { Builder, lowestOf } from '../../src/attention/build.js';
import type { AttentionSite } from '../../src/attention/site.js';

export { FIXTURE_ROOT as FIXTURES };
export type { ExpectedSite, FixtureMeta as Meta };

export function fixtureNames(): string[] {
  return fixtures().map((f) => f.name);
}

export function modelPath(name: string): string {
  return join(FIXTURE_ROOT, name, 'model.onnx');
}

export function loadMeta(name: string): FixtureMeta {
  return JSON.parse(readFileSync(join(FIXTURE_ROOT, name, 'meta.json'), 'utf8')) as FixtureMeta;
}

export interface IoTensor {
  name: string;
  dtype: string;
  shape: number[];
  data_b64: string;
}

export interface IoCase {
  name: string;
  inputs: IoTensor[];
  outputs: IoTensor[];
}

export function loadCases(name: string): IoCase[] {
  const p = join(FIXTURE_ROOT, name, 'io.json');
  if (!existsSync(p)) return [];
  return (JSON.parse(readFileSync(p, 'utf8')) as { cases: IoCase[] }).cases;
}

const ARRAYS: Record<string, (b: Buffer) => ort.Tensor['data']> = {
  float32: (b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  int64: (b) => new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  int32: (b) => new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  bool: (b) => new Uint8Array(b),
};

export function toOrt(t: IoTensor): ort.Tensor {
  const make = ARRAYS[t.dtype];
  if (!make) throw new Error(`io.json dtype ${t.dtype} is not handled by the tests`);
  const data = make(Buffer.from(t.data_b64, 'base64'));
  return new ort.Tensor(t.dtype as 'float32', data as Float32Array, t.shape);
}

export async function session(proto: ModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(proto), { graphOptimizationLevel: 'disabled' });
}

/** Largest |a − b| / (1 + |b|) between two tensors (NaN equal to NaN). */
export function maxDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as ArrayLike<number | bigint>;
  const y = b.data as ArrayLike<number | bigint>;
  if (x.length !== y.length) return Infinity;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const p = Number(x[i]);
    const q = Number(y[i]);
    if (Number.isNaN(p) && Number.isNaN(q)) continue;
    if (p === q) continue;
    const d = Math.abs(p - q) / (1 + Math.abs(q));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/**
 * Splices a plain reference attention (standard ONNX ops) into a site through its contract:
 * materializeInputs → repeat K/V for GQA → softmax(scale·Q·Kᵀ + mask + causal triangle) · V → replaceOutput.
 */
export function spliceReference(site: AttentionSite, options: { triangle?: boolean; append?: boolean } = {}): void {
  const { q, k, v, mask } = site.materializeInputs();
  const g = site.anchor.graph;
  const before = !options.append && site.insertBefore && g.nodes.includes(site.insertBefore) ? site.insertBefore : undefined;
  const b = new Builder(g, before, 'test-reference', `${site.id}/ref`);
  const type = q.type?.elemType ?? DataType.FLOAT;
  const repeat = (x: Value, d: number): Value => {
    if (site.kvHeads === site.heads) return x;
    const rep = site.heads / site.kvHeads;
    const shape = b.op('Shape', [x]);
    const head = b.op('Slice', [shape, b.ints([0]), b.ints([2])]);
    const tail = b.op('Slice', [shape, b.ints([2]), b.ints([4])]);
    const target = b.op('Concat', [head, b.ints([rep]), tail], { axis: 0 });
    const expanded = b.op('Expand', [b.op('Unsqueeze', [x, b.ints([2])]), target]);
    return b.op('Reshape', [expanded, b.ints([0, site.heads, -1, d])]);
  };
  const kr = repeat(k, site.headDim);
  const vr = repeat(v, site.valueHeadDim);
  let scores = b.op('Mul', [b.op('MatMul', [q, b.transpose(kr, [0, 1, 3, 2])]), b.scalarOf(site.scale, type)]);
  if (mask) scores = b.op('Add', [scores, mask]);
  if (site.causal && (options.triangle !== false || !mask)) {
    // Trilu keeps j − i ≥ T − S + 1: exactly the keys after each query's position
    const dim = (x: Value, i: number) => b.op('Gather', [b.op('Shape', [x]), b.ints([i])], { axis: 0 });
    const S = dim(q, 2);
    const T = dim(kr, 2);
    const ones = b.op('Expand', [b.ints([1], []), b.op('Concat', [S, T], { axis: 0 })]);
    const kk = b.op('Add', [b.op('Sub', [b.op('Squeeze', [T, b.ints([0])]), b.op('Squeeze', [S, b.ints([0])])]), b.ints([1], [])]);
    const future = b.op('Cast', [b.op('Trilu', [ones, kk], { upper: 1 })], { to: DataType.BOOL });
    scores = b.op('Add', [scores, b.op('Where', [future, b.scalarOf(lowestOf(type), type), b.scalarOf(0, type)])]);
  }
  const probs = b.op('Softmax', [scores], { axis: -1 });
  site.replaceOutput(b.op('MatMul', [probs, vr]));
}

/**
 * [B, S] flags of real query tokens (the attention mask's last S columns), as the fixture script defines
 * them; undefined for graphs without an input_ids/attention_mask pair or with decoder inputs.
 */
export function validQueryRows(c: IoCase): { batch: number; seq: number; valid: boolean[] } | undefined {
  const ids = c.inputs.find((t) => t.name === 'input_ids');
  const m = c.inputs.find((t) => t.name === 'attention_mask');
  if (!ids || !m || c.inputs.some((t) => t.name === 'decoder_input_ids')) return undefined;
  const mask = toOrt(m).data as ArrayLike<number | bigint>;
  const [B, T] = m.shape as [number, number];
  const S = ids.shape[1]!;
  const valid: boolean[] = [];
  for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) valid.push(Number(mask[b * T + T - S + i]) !== 0);
  return { batch: B, seq: S, valid };
}

/** `maxDiff` over the rows of real query tokens, for outputs laid out [B, S, ...]; the whole tensor otherwise. */
export function maxDiffValid(got: ort.Tensor, want: ort.Tensor, rows: ReturnType<typeof validQueryRows>): number {
  if (!rows || want.dims[0] !== rows.batch || want.dims[1] !== rows.seq || rows.valid.every((v) => v)) return maxDiff(got, want);
  const per = want.dims.slice(2).reduce((a, b) => a * b, 1);
  const pick = (t: ort.Tensor): ort.Tensor => {
    const src = t.data as Float32Array;
    const out = new Float32Array(rows.valid.filter((v) => v).length * per);
    let o = 0;
    rows.valid.forEach((v, r) => {
      if (v) out.set(src.subarray(r * per, (r + 1) * per), (o++) * per);
    });
    return new ort.Tensor('float32', out, [out.length]);
  };
  if (got.type !== 'float32' || want.type !== 'float32') return maxDiff(got, want);
  return maxDiff(pick(got), pick(want));
}
