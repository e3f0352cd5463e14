/**
 * Reading and making TensorProtos. A tensor's bytes stay where they are (a view into the model file's
 * bytes, or a region of an external file) until a caller asks for its values; then they are copied
 * once into an aligned array.
 */
import { fail } from '../errors.js';
import { DataType, Long, onnx, toNumber, type TensorProto } from './codec.js';
import { bfloat16ToNumber, elementType, float16ToNumber, rawByteLength } from './dtype.js';
import { isExternal, type ExternalDataFiles } from './external.js';

export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map((d, i) => {
    const n = toNumber(d, () => `tensor '${t.name}': dims[${i}]`);
    if (n < 0) fail('invalid-model', `tensor '${t.name}': dims[${i}] is ${n}; tensor dimensions cannot be negative. The model is damaged; re-export it.`);
    return n;
  });
}

/** Element count; throws when it passes 2^53 (no real tensor is that large). */
export function tensorNumel(t: TensorProto): number {
  const n = tensorDims(t).reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n)) fail('invalid-model', `tensor '${t.name}': dims [${tensorDims(t).join(', ')}] describe more than 2^53 elements; the model is damaged.`);
  return n;
}

/** Bytes the tensor's values take (raw layout), without reading them. */
export function tensorByteLength(t: TensorProto): number {
  return rawByteLength(t.dataType ?? 0, tensorNumel(t));
}

/**
 * The tensor's values as little-endian raw bytes (the raw_data layout), whatever field holds them.
 * For raw_data this is the view into the loaded bytes; otherwise a fresh buffer.
 */
export function tensorRawBytes(t: TensorProto, external?: ExternalDataFiles): Uint8Array {
  if (isExternal(t)) {
    if (!external) fail('external-data', `tensor '${t.name}' keeps its data in an external file, but no model folder is known. Load the model from its path.`);
    return checkLength(t, external.read(t));
  }
  if (t.rawData && t.rawData.length > 0) return checkLength(t, t.rawData);
  const code = t.dataType ?? 0;
  const numel = tensorNumel(t);
  const type = elementType(code);
  if (code === DataType.STRING) fail('unsupported', `tensor '${t.name}' holds strings; attnpass reads numeric tensors only.`);
  const [field, values]: [string, ArrayLike<unknown>] =
    code === DataType.FLOAT ? ['float_data', t.floatData ?? []]
    : code === DataType.DOUBLE ? ['double_data', t.doubleData ?? []]
    : code === DataType.INT64 ? ['int64_data', t.int64Data ?? []]
    : code === DataType.UINT32 || code === DataType.UINT64 ? ['uint64_data', t.uint64Data ?? []]
    : ['int32_data', t.int32Data ?? []];
  // 4-bit types keep two values per int32_data entry; every other type one value per entry
  const expected = type.bits === 4 ? Math.ceil(numel / 2) : numel;
  if (type.bits === 0 || type.bits === 2 || type.bits === 6) {
    if (numel === 0) return new Uint8Array(0);
    fail('unsupported', `tensor '${t.name}': reading values of type ${type.name} from typed fields is not supported.`);
  }
  if (values.length !== expected) {
    fail('invalid-model', `tensor '${t.name}': ${field} holds ${values.length} value(s) but dims [${tensorDims(t).join(', ')}] of ${type.name} need ${expected}${t.rawData ? ' (raw_data is present but empty)' : ''}. The model file is damaged or was written by a faulty tool.`);
  }
  const out = new Uint8Array(rawByteLength(code, numel));
  const view = new DataView(out.buffer);
  switch (code) {
    case DataType.FLOAT:
      (t.floatData ?? []).forEach((v, i) => view.setFloat32(i * 4, v, true));
      break;
    case DataType.DOUBLE:
      (t.doubleData ?? []).forEach((v, i) => view.setFloat64(i * 8, v, true));
      break;
    case DataType.INT64:
      (t.int64Data ?? []).forEach((v, i) => view.setBigInt64(i * 8, BigInt(v.toString()), true));
      break;
    case DataType.UINT32:
    case DataType.UINT64:
      (t.uint64Data ?? []).forEach((v, i) => {
        const u = BigInt(Long.fromValue(v).toUnsigned().toString());
        if (code === DataType.UINT64) view.setBigUint64(i * 8, u, true);
        else view.setUint32(i * 4, Number(u & 0xffffffffn), true);
      });
      break;
    case DataType.INT32:
      (t.int32Data ?? []).forEach((v, i) => view.setInt32(i * 4, v, true));
      break;
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      (t.int32Data ?? []).forEach((v, i) => view.setUint16(i * 2, v & 0xffff, true));
      break;
    default:
      // 8-bit types (bool, int8, uint8, float8*) one per entry; 4-bit types a packed pair per entry
      (t.int32Data ?? []).forEach((v, i) => (out[i] = v & 0xff));
  }
  return out;
}

function checkLength(t: TensorProto, bytes: Uint8Array): Uint8Array {
  const expected = tensorByteLength(t);
  if (bytes.length !== expected) {
    fail('invalid-model', `tensor '${t.name}': its data has ${bytes.length} bytes but dims [${tensorDims(t).join(', ')}] of ${elementType(t.dataType ?? 0).name} need ${expected}. The model file is damaged or was written by a faulty tool.`);
  }
  return bytes;
}

/** Values as float64 (float types, ints and bool). */
export function tensorToFloat64(t: TensorProto, external?: ExternalDataFiles): Float64Array {
  const bytes = tensorRawBytes(t, external);
  const numel = tensorNumel(t);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(numel);
  const read = scalarReader(t, view);
  for (let i = 0; i < numel; i++) out[i] = Number(read(i));
  return out;
}

/** Values as bigint (integer and bool types). */
export function tensorToBigInt64(t: TensorProto, external?: ExternalDataFiles): BigInt64Array {
  const bytes = tensorRawBytes(t, external);
  const numel = tensorNumel(t);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new BigInt64Array(numel);
  const read = scalarReader(t, view);
  for (let i = 0; i < numel; i++) {
    const v = read(i);
    out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
  }
  return out;
}

function scalarReader(t: TensorProto, view: DataView): (i: number) => number | bigint {
  switch (t.dataType) {
    case DataType.FLOAT: return (i) => view.getFloat32(i * 4, true);
    case DataType.DOUBLE: return (i) => view.getFloat64(i * 8, true);
    case DataType.FLOAT16: return (i) => float16ToNumber(view.getUint16(i * 2, true));
    case DataType.BFLOAT16: return (i) => bfloat16ToNumber(view.getUint16(i * 2, true));
    case DataType.INT64: return (i) => view.getBigInt64(i * 8, true);
    case DataType.UINT64: return (i) => view.getBigUint64(i * 8, true);
    case DataType.INT32: return (i) => view.getInt32(i * 4, true);
    case DataType.UINT32: return (i) => view.getUint32(i * 4, true);
    case DataType.INT16: return (i) => view.getInt16(i * 2, true);
    case DataType.UINT16: return (i) => view.getUint16(i * 2, true);
    case DataType.INT8: return (i) => view.getInt8(i);
    case DataType.UINT8:
    case DataType.BOOL: return (i) => view.getUint8(i);
    default:
      fail('unsupported', `tensor '${t.name}': reading values of type ${elementType(t.dataType ?? 0).name} is not supported.`);
  }
}

export type TensorValues = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

/** Makes a tensor with raw_data from typed values; `dataType` defaults from the array type. */
export function makeTensor(name: string, dims: readonly number[], values: TensorValues, dataType?: number): TensorProto {
  const code = dataType ?? defaultTypeOf(values);
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
  return onnx.TensorProto.create({ name, dims: dims.map((d) => Long.fromNumber(d)), dataType: code, rawData: bytes });
}

function defaultTypeOf(values: TensorValues): number {
  if (values instanceof Float32Array) return DataType.FLOAT;
  if (values instanceof Float64Array) return DataType.DOUBLE;
  if (values instanceof BigInt64Array) return DataType.INT64;
  if (values instanceof Int32Array) return DataType.INT32;
  return DataType.UINT8;
}

export function int64Tensor(name: string, dims: readonly number[], values: ReadonlyArray<number | bigint>): TensorProto {
  return makeTensor(name, dims, BigInt64Array.from(values, (v) => BigInt(v)));
}

export function float32Tensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, dims, Float32Array.from(values));
}
