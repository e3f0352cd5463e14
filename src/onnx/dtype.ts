/** ONNX tensor element types: names, widths and the JS arrays that hold them. */
import { DataType } from './codec.js';

export interface ElementType {
  readonly code: number;
  readonly name: string;
  /** storage bits per element: 4 for int4/uint4/float4e2m1, 2 for int2/uint2, 0 for strings */
  readonly bits: number;
}

const table: Array<[number, string, number]> = [
  [DataType.FLOAT, 'float32', 32],
  [DataType.UINT8, 'uint8', 8],
  [DataType.INT8, 'int8', 8],
  [DataType.UINT16, 'uint16', 16],
  [DataType.INT16, 'int16', 16],
  [DataType.INT32, 'int32', 32],
  [DataType.INT64, 'int64', 64],
  [DataType.STRING, 'string', 0],
  [DataType.BOOL, 'bool', 8],
  [DataType.FLOAT16, 'float16', 16],
  [DataType.DOUBLE, 'float64', 64],
  [DataType.UINT32, 'uint32', 32],
  [DataType.UINT64, 'uint64', 64],
  [DataType.COMPLEX64, 'complex64', 64],
  [DataType.COMPLEX128, 'complex128', 128],
  [DataType.BFLOAT16, 'bfloat16', 16],
  [DataType.FLOAT8E4M3FN, 'float8e4m3fn', 8],
  [DataType.FLOAT8E4M3FNUZ, 'float8e4m3fnuz', 8],
  [DataType.FLOAT8E5M2, 'float8e5m2', 8],
  [DataType.FLOAT8E5M2FNUZ, 'float8e5m2fnuz', 8],
  [DataType.UINT4, 'uint4', 4],
  [DataType.INT4, 'int4', 4],
  [DataType.FLOAT4E2M1, 'float4e2m1', 4],
  [DataType.FLOAT8E8M0, 'float8e8m0', 8],
  [25, 'uint2', 2],
  [26, 'int2', 2],
  [27, 'float6e2m3', 6],
  [28, 'float6e3m2', 6],
];

const byCode = new Map<number, ElementType>(table.map(([code, name, bits]) => [code, { code, name, bits }]));
const byName = new Map<string, ElementType>([...byCode.values()].map((t) => [t.name, t]));

export function elementType(code: number): ElementType {
  return byCode.get(code) ?? { code, name: `unknown(${code})`, bits: 0 };
}

export function elementTypeByName(name: string): ElementType | undefined {
  return byName.get(name);
}

export function isKnownElementType(code: number): boolean {
  return byCode.has(code);
}

export function isFloatType(code: number): boolean {
  return code === DataType.FLOAT || code === DataType.FLOAT16 || code === DataType.BFLOAT16 || code === DataType.DOUBLE;
}

/** Bytes that `numel` elements of this type take in raw_data (sub-byte types pack, rounding up). */
export function rawByteLength(code: number, numel: number): number {
  const bits = elementType(code).bits;
  return Math.ceil((numel * bits) / 8);
}

export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function bfloat16ToNumber(b: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, (b & 0xffff) << 16, false);
  return view.getFloat32(0, false);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function numberToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return half;
}
