/**
 * External tensor data: tensors whose bytes live in another file beside the model
 * (TensorProto.data_location = EXTERNAL, with location / offset / length entries).
 *
 * Paths are resolved against the model's folder and must stay inside it: absolute paths, `..`
 * segments and symbolic links that lead out are refused. Bytes are read lazily, only when a pass
 * needs the values, from files opened read-only.
 */
import { closeSync, constants, fstatSync, openSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { fail } from '../errors.js';
import { onnx, type TensorProto } from './codec.js';
import type { PayloadSource } from './payload.js';
import { readRange } from './read-range.js';

export interface ExternalDataRef {
  location: string;
  offset: number;
  /** bytes to read; undefined means "to the end of the file" */
  length: number | undefined;
}

export function isExternal(tensor: TensorProto): boolean {
  return tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL && (tensor.externalData?.length ?? 0) > 0;
}

/** Parses a tensor's external_data entries; errors name the tensor and the entry. */
export function externalDataRef(tensor: TensorProto): ExternalDataRef {
  const entries = new Map<string, string>();
  for (const e of tensor.externalData ?? []) entries.set(e.key ?? '', e.value ?? '');
  const where = `tensor '${tensor.name}'`;
  const location = entries.get('location');
  if (!location) fail('external-data', `${where}: external_data has no 'location' entry. Re-save the model with its external data (onnx.save_model(..., save_as_external_data=True)).`);
  const parseCount = (key: string): number | undefined => {
    const text = entries.get(key);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      fail('external-data', `${where}: external_data '${key}' is '${text}', not a non-negative integer. Fix or re-save the model's external data.`);
    }
    return Number(text);
  };
  return { location, offset: parseCount('offset') ?? 0, length: parseCount('length') };
}

export class ExternalDataFiles {
  private readonly fds = new Map<string, { fd: number; size: number }>();
  /** locations already resolved and checked (a 7B model has hundreds of tensors in one file) */
  private readonly resolved = new Map<string, string>();
  private readonly realBase: string | undefined;
  /** the model file itself, when its payloads were deferred (load.ts): closed with the rest */
  private readonly sources: PayloadSource[] = [];

  /** `baseDir`: the model's folder; undefined for a model loaded from bytes (no external data possible). */
  constructor(readonly baseDir: string | undefined) {
    this.realBase = baseDir === undefined ? undefined : safeRealpath(baseDir);
  }

  /** Validates a location (inside the model's folder, existing file) and returns its absolute path. */
  resolve(location: string, tensorName: string | null | undefined): string {
    const where = `tensor '${tensorName}': external_data location '${location}'`;
    if (this.baseDir === undefined || this.realBase === undefined) {
      fail('external-data', `${where}: the model was loaded from bytes, so there is no folder to resolve external data against. Load it from its path instead.`);
    }
    if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
      fail('external-data', `${where} is an absolute path. External data locations must be relative to the model's folder (${this.baseDir}); move the file beside the model and store its relative name.`);
    }
    const parts = location.split(/[\\/]+/);
    if (parts.includes('..')) {
      fail('external-data', `${where} has a '..' segment and would leave the model's folder (${this.baseDir}). External data must stay inside the model's folder; move the file there and store its relative name.`);
    }
    const path = join(this.baseDir, normalize(location));
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      fail('external-data', `${where} does not exist (looked for ${path}). Put the data file beside the model or re-save the model with its external data.`);
    }
    const rel = relative(this.realBase, real);
    if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) {
      fail('external-data', `${where} is a link that leads outside the model's folder (to ${real}). External data must stay inside the model's folder (${this.baseDir}); copy the file there instead of linking it.`);
    }
    if (!statSync(real).isFile()) fail('external-data', `${where} is not a regular file (looked at ${real}). Point 'location' at the data file beside the model.`);
    return real;
  }

  /** Size in bytes of the external region a tensor refers to, checked against the file. */
  regionLength(tensor: TensorProto): number {
    const ref = externalDataRef(tensor);
    const file = this.open(ref.location, tensor.name);
    return this.checkedLength(ref, file.size, tensor.name);
  }

  /** Reads the bytes of one externally stored tensor (a fresh Buffer). */
  read(tensor: TensorProto): Buffer {
    const ref = externalDataRef(tensor);
    const file = this.open(ref.location, tensor.name);
    const length = this.checkedLength(ref, file.size, tensor.name);
    const out = Buffer.allocUnsafe(length);
    if (readRange(file.fd, out, 0, length, ref.offset) !== length) fail('external-data', `tensor '${tensor.name}': external data file '${ref.location}' ended early.`);
    return out;
  }

  /** File descriptor and absolute path for streaming copies. */
  openFile(location: string, tensorName: string | null | undefined): { fd: number; size: number } {
    return this.open(location, tensorName);
  }

  /** Closes `source` (the model file, read for deferred payloads) with the data files. */
  adopt(source: PayloadSource): void {
    this.sources.push(source);
  }

  close(): void {
    for (const source of this.sources.splice(0)) source.close();
    for (const { fd } of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.resolved.clear();
  }

  private checkedLength(ref: ExternalDataRef, size: number, tensorName: string | null | undefined): number {
    const length = ref.length ?? size - ref.offset;
    if (ref.offset > size || ref.offset + length > size) {
      fail('external-data', `tensor '${tensorName}': external data offset ${ref.offset} + length ${length} passes the end of '${ref.location}' (${size} bytes). The data file is truncated or does not belong to this model.`);
    }
    return length;
  }

  private open(location: string, tensorName: string | null | undefined): { fd: number; size: number } {
    let path = this.resolved.get(location);
    if (path === undefined) {
      path = this.resolve(location, tensorName);
      this.resolved.set(location, path);
    }
    let file = this.fds.get(path);
    if (!file) {
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); // read-only, never blocks on a pipe
      } catch (err) {
        fail('external-data', `tensor '${tensorName}': cannot open external data file '${location}' (${(err as NodeJS.ErrnoException).code}). Check its permissions.`, err);
      }
      file = { fd, size: fstatSync(fd).size };
      this.fds.set(path, file);
    }
    return file;
  }
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
