/** Loading an ONNX model from a file or from bytes, with clear errors for anything that is not one. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fail } from '../errors.js';
import { onnx, toNumber, type ModelProto } from './codec.js';
import { ExternalDataFiles } from './external.js';

/** The IR versions and default-domain opsets attnpass reads (ONNX 1.23 writes IR 14). */
export const SUPPORTED_IR_VERSIONS = { min: 3, max: 14 } as const;
export const MAX_DEFAULT_OPSET = 28;

export interface LoadedModel {
  proto: ModelProto;
  /** absolute path of the file it came from, when it came from one */
  path: string | undefined;
  /** folder that external data locations are relative to */
  external: ExternalDataFiles;
  /** the bytes the proto's raw_data fields are views into */
  bytes: Uint8Array;
}

export interface LoadOptions {
  /** folder to resolve external data against when loading from bytes */
  baseDir?: string;
}

export function loadModel(source: string | Uint8Array, options: LoadOptions = {}): LoadedModel {
  const path = typeof source === 'string' ? resolve(source) : undefined;
  const label = path ?? '<bytes>';
  const bytes = typeof source === 'string' ? readWholeFile(path!) : source;
  const proto = decodeModel(bytes, label);
  const baseDir = path ? dirname(path) : options.baseDir;
  return { proto, path, external: new ExternalDataFiles(baseDir), bytes };
}

/** Decodes and sanity-checks a ModelProto; errors name the file. */
export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  if (bytes.length === 0) fail('not-onnx', `${label}: the file is empty, not an ONNX model.`);
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/index out of range|premature|ended/i.test(message)) {
      fail('truncated', `${label}: the protobuf ends in the middle of a field (${message}); the file is truncated or not an ONNX model. Re-export or re-download it.`, err);
    }
    fail('not-onnx', `${label}: not an ONNX model: its bytes do not decode as onnx.ModelProto (${message}).`, err);
  }
  if (!proto.graph) {
    fail('not-onnx', `${label}: decodes as protobuf but has no 'graph' field, so it is not an ONNX model (or it is a bare GraphProto/TensorProto). Export a full ModelProto.`);
  }
  const ir = proto.irVersion == null ? 0 : toNumber(proto.irVersion);
  if (ir < SUPPORTED_IR_VERSIONS.min || ir > SUPPORTED_IR_VERSIONS.max) {
    fail('unsupported', `${label}: ir_version is ${ir}; attnpass reads IR versions ${SUPPORTED_IR_VERSIONS.min}–${SUPPORTED_IR_VERSIONS.max}. Convert the model with onnx.version_converter or re-export it with a current exporter.`);
  }
  return proto;
}

/** Reads a whole file; works past 2 GiB, where readFileSync stops. */
export function readWholeFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : String(code);
    fail('io', `${path}: cannot open the model (${why}).`, err);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) fail('io', `${path}: is a folder, not a model file.`);
    const size = stat.size;
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, out, done, Math.min(size - done, 1 << 30), done);
      if (n === 0) break;
      done += n;
    }
    if (done !== size) fail('io', `${path}: the file shrank while it was being read.`);
    return out;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') fail('io', `${path}: is a folder, not a model file.`, err);
    throw err;
  } finally {
    closeSync(fd);
  }
}
