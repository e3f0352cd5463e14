/** Named tensors as verify feeds and reads them, and the io.json format fixtures record them in. */
import { readFileSync } from 'node:fs';
import { fail } from '../errors.js';

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

export interface NamedTensor {
  name: string;
  /** onnxruntime type name: float32, int64, bool, float16, ... */
  dtype: string;
  dims: number[];
  data: TypedData;
}

export interface IoCase {
  name: string;
  inputs: NamedTensor[];
  outputs?: NamedTensor[];
}

interface JsonTensor {
  name: string;
  dtype: string;
  shape: number[];
  data_b64: string;
}

const ARRAYS: Record<string, (b: Buffer) => TypedData> = {
  float32: (b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  float64: (b) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  int64: (b) => new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  int32: (b) => new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  bool: (b) => new Uint8Array(b),
  uint8: (b) => new Uint8Array(b),
  float16: (b) => new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
};

export function tensorFromJson(t: JsonTensor, file: string): NamedTensor {
  const make = ARRAYS[t.dtype];
  if (!make) fail('usage', `${file}: tensor '${t.name}' has dtype '${t.dtype}', which verify cannot read (float32, float64, int64, int32, bool, uint8, float16).`);
  return { name: t.name, dtype: t.dtype, dims: t.shape, data: make(Buffer.from(t.data_b64, 'base64')) };
}

/** Reads an io.json file: { cases: [{ name, inputs: [...], outputs?: [...] }] }. */
export function readIoFile(file: string): IoCase[] {
  let parsed: { cases?: Array<{ name?: string; inputs?: JsonTensor[]; outputs?: JsonTensor[] }> };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail('usage', `${file}: cannot read inputs (${err instanceof Error ? err.message : String(err)}). Expected JSON { "cases": [{ "name", "inputs": [{ "name", "dtype", "shape", "data_b64" }] }] }.`, err);
  }
  if (!Array.isArray(parsed.cases)) fail('usage', `${file}: no "cases" array. Expected { "cases": [{ "name", "inputs": [...] }] }.`);
  return parsed.cases.map((c, i) => ({
    name: c.name ?? `case${i}`,
    inputs: (c.inputs ?? []).map((t) => tensorFromJson(t, file)),
    outputs: c.outputs?.map((t) => tensorFromJson(t, file)),
  }));
}

export function toFloat64(t: NamedTensor): Float64Array {
  if (t.data instanceof BigInt64Array) return Float64Array.from(t.data, (x) => Number(x));
  if (t.dtype === 'float16') {
    return Float64Array.from(t.data as Uint16Array, (h) => {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const f = h & 0x3ff;
      return e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    });
  }
  return Float64Array.from(t.data as ArrayLike<number>);
}
