/**
 * Test support for the operator registry: a seeded-but-fresh RNG, random attention inputs, an
 * independent dense attention, the shape grid, and a runner that executes one operator's model-local
 * function in onnxruntime-node.
 */
import * as ort from 'onnxruntime-node';
import { Long, onnx, type AttributeProto } from '../../src/onnx/codec.js';
import { typeToProto } from '../../src/ir/model.js';
import { float16ToNumber, numberToFloat16 } from '../../src/onnx/dtype.js';
import { ATTNPASS_DOMAIN, functionFor } from '../../kernels/registry.js';
import type { FloatTensor, IntTensor } from '../../kernels/reference/common.js';

// ---- randomness ---------------------------------------------------------------------------------

/** The run's seed: ATTNPASS_TEST_SEED to replay a failure, else the clock (printed on failure). */
export const SEED = Number(process.env.ATTNPASS_TEST_SEED ?? Date.now() % 2 ** 31);

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** uniform in [0, 1) (mulberry32) */
  uniform(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = 1 - this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }
}

/** Values are float32 so the reference (float64) and ONNX Runtime (float32) read identical inputs. */
export function randn(rng: Rng, dims: number[], sd = 1): FloatTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, () => sd * rng.normal()), dims };
}

// ---- the grid -------------------------------------------------------------------------------------

export type MaskKind = 'none' | 'padding' | 'full';

export interface Case {
  B: number;
  Hq: number;
  Hkv: number;
  S: number;
  T: number;
  D: number;
  Dv: number;
  causal: 0 | 1;
  mask: MaskKind;
}

export function describeCase(c: Case): string {
  return `B${c.B} Hq${c.Hq}/Hkv${c.Hkv} S${c.S} T${c.T} D${c.D} Dv${c.Dv} ${c.causal ? 'causal' : 'non-causal'} mask:${c.mask}`;
}

/**
 * GQA ratios 1, 2, 4; causal and not; decode (S = 1), prefill (S = T), S < T and S > T; lengths
 * not a multiple of the block size (16 in the tests); scalar, padding [B,1,1,T] and full [B,1,S,T] masks.
 */
export function grid(): Case[] {
  const out: Case[] = [];
  for (const [Hq, Hkv] of [[2, 2], [4, 2], [4, 1]] as const)
    for (const causal of [0, 1] as const)
      for (const [S, T] of [[1, 133], [77, 77], [29, 150], [20, 9]] as const)
        for (const mask of ['none', 'padding', 'full'] as const) out.push({ B: 2, Hq, Hkv, S, T, D: 16, Dv: 8, causal, mask });
  return out;
}

export interface AttentionData {
  q: FloatTensor;
  k: FloatTensor;
  v: FloatTensor;
  mask: FloatTensor;
}

/**
 * Random inputs of a case. Keys get a per-block offset (blocks of `blockSize`) so that block scores
 * and block importances are spread out rather than all near 0; tests still redraw inputs whose
 * selection lies within a small margin of a tie (see `margin` of the references).
 */
export function randomAttention(rng: Rng, c: Case, blockSize = 16): AttentionData {
  const q = randn(rng, [c.B, c.Hq, c.S, c.D]);
  const k = randn(rng, [c.B, c.Hkv, c.T, c.D]);
  for (let b = 0; b < c.B; b++)
    for (let h = 0; h < c.Hkv; h++)
      for (let kb = 0; kb * blockSize < c.T; kb++) {
        const offset = Array.from({ length: c.D }, () => rng.normal());
        for (let j = kb * blockSize; j < Math.min(c.T, (kb + 1) * blockSize); j++) for (let d = 0; d < c.D; d++) k.data[((b * c.Hkv + h) * c.T + j) * c.D + d]! += offset[d]!;
      }
  const v = randn(rng, [c.B, c.Hkv, c.T, c.Dv]);
  return { q, k, v, mask: randomMask(rng, c) };
}

export function randomMask(rng: Rng, c: Case): FloatTensor {
  if (c.mask === 'none') return { data: Float32Array.of(0), dims: [] };
  if (c.mask === 'padding') {
    // batch 0 unpadded; batch 1 left-padded by a few positions (−∞)
    const data = new Float32Array(c.B * c.T);
    const pad = Math.min(c.T - 1, rng.int(1, 5));
    for (let b = 1; b < c.B; b++) for (let j = 0; j < pad; j++) data[b * c.T + j] = -Infinity;
    return { data, dims: [c.B, 1, 1, c.T] };
  }
  const data = Float32Array.from({ length: c.B * c.S * c.T }, () => (rng.uniform() < 0.1 ? -Infinity : rng.normal()));
  return { data, dims: [c.B, 1, c.S, c.T] };
}

// ---- dense attention, written independently of kernels/reference --------------------------------

export function denseAttention(x: AttentionData, scaleAttr: number, causal: number): Float64Array {
  const [B, Hq, S, D] = x.q.dims as [number, number, number, number];
  const [, Hkv, T] = x.k.dims as [number, number, number];
  const Dv = x.v.dims[3]!;
  const scale = scaleAttr === 0 ? 1 / Math.sqrt(D) : scaleAttr;
  const md = [...Array(4 - x.mask.dims.length).fill(1), ...x.mask.dims] as number[];
  const maskAt = (b: number, h: number, i: number, j: number) => {
    const idx = [b, h, i, j].map((v, a) => (md[a] === 1 ? 0 : v));
    return x.mask.data[((idx[0]! * md[1]! + idx[1]!) * md[2]! + idx[2]!) * md[3]! + idx[3]!]!;
  };
  const out = new Float64Array(B * Hq * S * Dv);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kv = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < S; i++) {
        const logits: number[] = [];
        for (let j = 0; j < T; j++) {
          if (causal && j > T - S + i) {
            logits.push(-Infinity);
            continue;
          }
          let s = 0;
          for (let d = 0; d < D; d++) s += x.q.data[((b * Hq + h) * S + i) * D + d]! * x.k.data[((b * Hkv + kv) * T + j) * D + d]!;
          logits.push(scale * s + maskAt(b, h, i, j));
        }
        const m = Math.max(...logits);
        if (m === -Infinity) continue;
        const e = logits.map((l) => Math.exp(l - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < T; j++) for (let d = 0; d < Dv; d++) out[((b * Hq + h) * S + i) * Dv + d] += (e[j]! / z) * x.v.data[((b * Hkv + kv) * T + j) * Dv + d]!;
      }
    }
  return out;
}

/** max |a − b| / max |b| (normwise relative; 0 when both are all zero) */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let err = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    ref = Math.max(ref, Math.abs(b[i]!));
  }
  return err === 0 ? 0 : err / Math.max(ref, 1e-30);
}

// ---- running an operator's function in ONNX Runtime ------------------------------------------------

export type Feed = FloatTensor | IntTensor;

function attributeProtos(attrs: Record<string, number>, floats: ReadonlySet<string>): AttributeProto[] {
  return Object.entries(attrs).map(([name, v]) =>
    floats.has(name)
      ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: v })
      : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: Long.fromNumber(v) }),
  );
}

/** A ModelProto with one node of `op` (inputs in order, '' for omitted) and the op's function. */
export function singleOpModel(op: string, inputNames: string[], inputTypes: number[], outputs: string[], attrs: AttributeProto[], opset = 18): Uint8Array {
  const node = onnx.NodeProto.create({ opType: op, domain: ATTNPASS_DOMAIN, name: op, input: inputNames, output: outputs, attribute: attrs });
  const graphInputs = inputNames.filter((n) => n !== '').map((name) =>
    onnx.ValueInfoProto.create({ name, type: typeToProto({ elemType: inputTypes[inputNames.indexOf(name)]!, shape: undefined }) }),
  );
  const graph = onnx.GraphProto.create({
    name: `${op}_test`,
    node: [node],
    input: graphInputs,
    output: outputs.filter((name) => name !== '').map((name) => onnx.ValueInfoProto.create({ name, type: typeToProto({ elemType: name === 'layout' ? 9 : inputTypes[0]!, shape: undefined }) })),
  });
  const model = onnx.ModelProto.create({
    irVersion: Long.fromNumber(10),
    producerName: 'attnpass-tests',
    graph,
    functions: [functionFor(op, opset)],
    opsetImport: [
      onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(opset) }),
      onnx.OperatorSetIdProto.create({ domain: ATTNPASS_DOMAIN, version: Long.fromNumber(1) }),
    ],
  });
  return onnx.ModelProto.encode(model).finish();
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/**
 * Runs `op`'s function on `feeds` (by input position; undefined = omitted) with `attrs`
 * (`floats` names FLOAT attributes). Sessions are cached per op, attributes and input presence: the
 * graph's inputs have no fixed shape, so one session serves every case of the grid.
 */
export async function runFunction(
  op: string,
  feeds: ReadonlyArray<Feed | undefined>,
  attrs: Record<string, number>,
  floats: ReadonlySet<string>,
  outputs: string[] = ['O'],
  options: { float16?: boolean; opset?: number } = {},
): Promise<Record<string, { data: ArrayLike<number>; dims: readonly number[] }>> {
  const half = options.float16 === true;
  const names = feeds.map((f, i) => (f ? `in${i}` : ''));
  const types = feeds.map((f) => (f && f.data instanceof BigInt64Array ? 7 : half ? 10 : 1));
  const key = JSON.stringify([op, names, types, attrs, outputs, options.opset]);
  let session = sessions.get(key);
  if (!session) {
    session = ort.InferenceSession.create(singleOpModel(op, names, types, outputs, attributeProtos(attrs, floats), options.opset));
    sessions.set(key, session);
  }
  const input: Record<string, ort.Tensor> = {};
  feeds.forEach((f, i) => {
    if (!f) return;
    input[`in${i}`] =
      f.data instanceof BigInt64Array
        ? new ort.Tensor('int64', f.data, f.dims)
        : half
          ? new ort.Tensor('float16', Uint16Array.from(f.data, numberToFloat16), f.dims)
          : new ort.Tensor('float32', Float32Array.from(f.data), f.dims);
  });
  const result = await (await session).run(input);
  return Object.fromEntries(
    outputs
      .filter((o) => o !== '')
      .map((o) => {
        const t = result[o]!;
        const data = t.type === 'float16' ? Array.from(t.data as Uint16Array, float16ToNumber) : (t.data as ArrayLike<number>);
        return [o, { data, dims: t.dims }];
      }),
  );
}

/** Rounds values to float16 (what a float16 model holds). */
export function toHalfPrecision(t: FloatTensor): FloatTensor {
  return { data: Float32Array.from(t.data, (v) => float16ToNumber(numberToFloat16(v))), dims: t.dims };
}
