/** Loading an ONNX model from a file or from bytes, with clear errors for anything that is not one. */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AttnpassError, fail } from '../errors.js';
import { onnx, toBigInt, type ModelProto, type TensorProto } from './codec.js';
import { ExternalDataFiles } from './external.js';
import { deferPayload, PayloadSource } from './payload.js';
import { readRange, readRangeAsync } from './read-range.js';
import { skimModel, visitTensors, type SkimmedPayload } from './skim.js';
import { locateDecodeFailure, wireTypeMismatches } from './wire.js';

/** The IR versions and default-domain opsets attnpass reads (ONNX 1.23 writes IR 14). */
export const SUPPORTED_IR_VERSIONS = { min: 3, max: 14 } as const;
export const MAX_DEFAULT_OPSET = 28;

export interface LoadedModel {
  proto: ModelProto;
  /** absolute path of the file it came from, when it came from one */
  path: string | undefined;
  /** folder that external data locations are relative to */
  external: ExternalDataFiles;
  /** the bytes the proto's raw_data fields are views into (with `deferPayloads`, the file less its deferred payloads) */
  bytes: Uint8Array;
}

export interface LoadOptions {
  /** folder to resolve external data against when loading from bytes */
  baseDir?: string;
}

export interface DeferOptions {
  /** raw_data payloads at least this large stay in the file (default 64 KiB) */
  minBytes?: number;
  /** files smaller than this are read whole (default 16 MiB) */
  minFileBytes?: number;
}

export interface AsyncLoadOptions {
  /**
   * Leave large embedded raw_data payloads in the file: each such tensor's `rawData` is read from the file
   * on first use (payload.ts), and saving copies it from file to file. The file stays open until
   * `loaded.external.close()`, which the caller must call; a payload read after that fails.
   */
  deferPayloads?: boolean | DeferOptions;
}

export function loadModel(source: string | Uint8Array, options: LoadOptions = {}): LoadedModel {
  if (typeof source !== 'string') return { proto: decodeModel(source, '<bytes>'), path: undefined, external: new ExternalDataFiles(options.baseDir), bytes: source };
  const path = resolve(source);
  return loadedFrom(path, readWholeFile(path));
}

/** `loadModel` of a file, read on libuv's thread pool (see `readWholeFileAsync`), or with its large payloads deferred. */
export async function loadModelAsync(source: string, options: AsyncLoadOptions = {}): Promise<LoadedModel> {
  const path = resolve(source);
  if (options.deferPayloads) {
    const deferred = loadDeferred(path, options.deferPayloads === true ? {} : options.deferPayloads);
    if (deferred) return deferred;
  }
  return loadedFrom(path, await readWholeFileAsync(path));
}

/**
 * Loads the file's structure with its large raw_data payloads left in the file (skim.ts), or returns
 * undefined when the file is small, has no such payload, or is unusual in any way: the ordinary load then
 * reads it whole (and explains what is wrong with it).
 */
function loadDeferred(path: string, options: DeferOptions): LoadedModel | undefined {
  const { fd, size } = openModelFile(path);
  let source: PayloadSource | undefined;
  try {
    if (size < (options.minFileBytes ?? 16 << 20)) return undefined;
    const skimmed = skimModel(fd, size, Math.max(1, options.minBytes ?? 64 << 10));
    if (!skimmed) return undefined;
    let proto: ModelProto;
    try {
      proto = decodeModel(skimmed.bytes, path);
    } catch {
      return undefined;
    }
    const byPosition = new Map(skimmed.payloads.map((p) => [skimmed.bytes.byteOffset + p.at, p]));
    const found: Array<[TensorProto, SkimmedPayload]> = [];
    visitTensors(proto, (t) => {
      const raw = Object.prototype.hasOwnProperty.call(t, 'rawData') ? t.rawData : undefined;
      if (!raw || raw.length !== 1 || raw.buffer !== skimmed.bytes.buffer) return;
      const payload = byPosition.get(raw.byteOffset);
      if (payload) found.push([t, payload]);
    });
    // every placeholder must turn up exactly once (a field repeated against the schema could hide one): else read it whole
    if (found.length !== skimmed.payloads.length || new Set(found.map(([, p]) => p)).size !== found.length) return undefined;
    source = new PayloadSource(fd, path);
    for (const [t, payload] of found) deferPayload(t, { source, offset: payload.offset, length: payload.length });
    const external = new ExternalDataFiles(dirname(path));
    external.adopt(source);
    return { proto, path, external, bytes: skimmed.bytes };
  } finally {
    if (!source) closeSync(fd);
  }
}

function loadedFrom(path: string, bytes: Uint8Array): LoadedModel {
  return { proto: decodeModel(bytes, path), path, external: new ExternalDataFiles(dirname(path)), bytes };
}

/** Decodes and sanity-checks a ModelProto; errors name the file and the field where decoding stopped. */
export function decodeModel(bytes: Uint8Array, label: string): ModelProto {
  if (bytes.length === 0) fail('not-onnx', `${label}: the file is empty, not an ONNX model. Re-export the model or check the path.`);
  let proto: ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const where = locateDecodeFailure(bytes);
    const at = where ? ` at byte ${where.offset}, in field ${where.path || '(top level)'}: ${where.problem}` : ` (${message})`;
    if (where?.truncated || (!where && /index out of range|premature|ended/i.test(message))) {
      fail('truncated', `${label}: the file is truncated (${bytes.length} bytes)${at}. Re-export or re-download the model.`, err);
    }
    fail('not-onnx', `${label}: not an ONNX model: its bytes do not decode as onnx.ModelProto${at}. Check that this is an .onnx file and that it was copied completely.`, err);
  }
  const mismatched = wireTypeMismatches(bytes, 3);
  if (mismatched.length > 0) {
    const list = mismatched.map((m) => `${m.path || '(top level)'} at byte ${m.offset} has wire type ${m.found} where the schema says ${m.expected}`).join('; ');
    fail('not-onnx', `${label}: the file is damaged or not an ONNX model: ${list}. No ONNX writer produces this; re-export the model.`);
  }
  if (!proto.graph) {
    fail('not-onnx', `${label}: decodes as protobuf but has no 'graph' field (ModelProto field 7), so it is not an ONNX model (or it is a bare GraphProto/TensorProto). Export a full ModelProto.`);
  }
  const hasIr = Object.hasOwn(proto, 'irVersion') && proto.irVersion != null;
  const ir = hasIr ? toBigInt(proto.irVersion) : 0n;
  if (ir < BigInt(SUPPORTED_IR_VERSIONS.min) || ir > BigInt(SUPPORTED_IR_VERSIONS.max)) {
    fail('unsupported', `${label}: ir_version is ${ir}${hasIr ? '' : ' (the field is missing)'}; attnpass reads IR versions ${SUPPORTED_IR_VERSIONS.min}–${SUPPORTED_IR_VERSIONS.max}. Convert the model with onnx.version_converter or re-export it with a current exporter.`);
  }
  return proto;
}

/** Reads a whole file; works past 2 GiB, where readFileSync stops. */
export function readWholeFile(path: string): Buffer {
  const { fd, size } = openModelFile(path);
  try {
    const out = Buffer.allocUnsafe(size);
    if (readRange(fd, out, 0, size, 0) !== size) fail('io', `${path}: the file shrank while it was being read.`);
    return out;
  } catch (err) {
    readFailure(path, err);
  } finally {
    closeSync(fd);
  }
}

/**
 * `readWholeFile` on libuv's thread pool, in `parts` pieces read side by side: the calling thread is free
 * meanwhile (the CLI finishes its start-up then), and a large file is copied in by several threads.
 */
export async function readWholeFileAsync(path: string, parts = 2): Promise<Buffer> {
  const { fd, size } = openModelFile(path);
  try {
    const out = Buffer.allocUnsafe(size);
    const piece = Math.ceil(size / parts / PAGE) * PAGE;
    const counts = await Promise.all(
      Array.from({ length: parts }, (_, i) => readRangeAsync(fd, out, i * piece, Math.max(0, Math.min(piece, size - i * piece)), i * piece)),
    );
    if (counts.reduce((a, b) => a + b, 0) !== size) fail('io', `${path}: the file shrank while it was being read.`);
    return out;
  } catch (err) {
    readFailure(path, err);
  } finally {
    closeSync(fd);
  }
}

const PAGE = 4096;

/** Opens a model file for reading and checks that it is a regular file protobuf can hold. */
function openModelFile(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    // read-only; non-blocking so that a FIFO or device named as the model cannot hang the open
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : String(code);
    fail('io', `${path}: cannot open the model (${why}). Check the path and its permissions.`, err);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) fail('io', `${path}: is a folder, not a model file. Name the .onnx file inside it.`);
    if (!stat.isFile()) fail('io', `${path}: is not a regular file (a device, pipe or socket). Name an .onnx file.`);
    if (stat.size > 0x7fffffff) {
      fail('unsupported', `${path}: the file is ${stat.size} bytes, past protobuf's 2 GiB limit, so it cannot be one ONNX model. Models this large keep their weights in external data files beside a small .onnx.`);
    }
    return { fd, size: stat.size };
  } catch (err) {
    closeSync(fd);
    readFailure(path, err);
  }
}

function readFailure(path: string, err: unknown): never {
  if (err instanceof AttnpassError) throw err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') fail('io', `${path}: is a folder, not a model file. Name the .onnx file inside it.`, err);
  fail('io', `${path}: cannot read the model (${code ?? (err as Error).message}).`, err);
}
