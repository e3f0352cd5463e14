/**
 * Deferred tensor payloads: a model loaded with `deferPayloads` (load.ts) keeps each large embedded
 * `raw_data` in the model file instead of in memory. The TensorProto's `rawData` is then an accessor:
 * reading it reads the bytes from the file (once; from then on it is an ordinary field), assigning it
 * replaces them. Code that only needs a payload's size asks `rawDataLength` (no read); the streaming
 * encoder (stream.ts) asks `deferredPayload` and copies a still-deferred payload from file to file, so a
 * conversion that rewrites attention never holds the weights in memory.
 *
 * The model file stays open (its descriptor pins the file as it was loaded, even when the output later
 * replaces it by rename) until `PayloadSource.close()`; a payload read after that fails with a clear
 * error, never from a reused descriptor.
 */
import { closeSync, fstatSync } from 'node:fs';
import { fail } from '../errors.js';
import type { TensorProto } from './codec.js';
import { readRange, readRangeAsync } from './read-range.js';

/** The open model file the deferred payloads are read from. */
export class PayloadSource {
  private fd: number;
  private readonly size: number;
  private readonly mtimeNs: bigint;

  constructor(fd: number, readonly path: string) {
    this.fd = fd;
    const stat = fstatSync(fd, { bigint: true });
    this.size = Number(stat.size);
    this.mtimeNs = stat.mtimeNs;
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** The descriptor, after checking that the file is still the one that was loaded (same size and mtime). */
  descriptor(): number {
    if (this.fd < 0) fail('io', `${this.path}: the model file was closed; its weights can no longer be read. Read the tensors you need before closing the loaded model.`);
    const stat = fstatSync(this.fd, { bigint: true });
    if (Number(stat.size) !== this.size || stat.mtimeNs !== this.mtimeNs) {
      fail('io', `${this.path}: the model file changed while it was being converted (its size or modification time is not what was loaded). Convert it again once nothing else writes to it.`);
    }
    return this.fd;
  }

  /** Reads `length` bytes at `offset` into `out` at `at`; the file must hold them. */
  readInto(out: Uint8Array, at: number, length: number, offset: number): void {
    if (readRange(this.descriptor(), out, at, length, offset) !== length) this.endedEarly();
  }

  /** `readInto` on libuv's thread pool. */
  async readIntoAsync(out: Uint8Array, at: number, length: number, offset: number): Promise<void> {
    if ((await readRangeAsync(this.descriptor(), out, at, length, offset)) !== length) this.endedEarly();
  }

  private endedEarly(): never {
    fail('io', `${this.path}: the model file ended early while reading its weights (it shrank after it was loaded).`);
  }

  read(offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.readInto(out, 0, length, offset);
    return out;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** Where a deferred payload lies: `length` bytes at `offset` of `source`'s file. */
export interface DeferredPayload {
  source: PayloadSource;
  offset: number;
  length: number;
}

const deferred = new WeakMap<object, { payload: DeferredPayload; get: () => Uint8Array }>();

/** Makes `t.rawData` read `payload` from the file on first use. */
export function deferPayload(t: TensorProto, payload: DeferredPayload): void {
  const settle = (value: Uint8Array | null | undefined): void => {
    Object.defineProperty(t, 'rawData', { value, writable: true, enumerable: true, configurable: true });
  };
  const get = (): Uint8Array => {
    const bytes = payload.source.read(payload.offset, payload.length);
    settle(bytes);
    return bytes;
  };
  Object.defineProperty(t, 'rawData', { get, set: settle, enumerable: true, configurable: true });
  deferred.set(t, { payload, get });
}

/** The file region of `t`'s raw_data while it is still deferred (not read, not replaced); else undefined. */
export function deferredPayload(t: object): DeferredPayload | undefined {
  const entry = deferred.get(t);
  if (!entry) return undefined;
  return Object.getOwnPropertyDescriptor(t, 'rawData')?.get === entry.get ? entry.payload : undefined;
}

/** `t.rawData?.length`, without reading a deferred payload. */
export function rawDataLength(t: TensorProto): number {
  return deferredPayload(t)?.length ?? t.rawData?.length ?? 0;
}

/**
 * Saves how `t.rawData` is held now (deferred or a value) and returns a function that puts it back, for
 * code that switches the field temporarily (save.ts moving payloads to external data).
 */
export function saveRawData(t: TensorProto): () => void {
  const had = Object.prototype.hasOwnProperty.call(t, 'rawData');
  const descriptor = Object.getOwnPropertyDescriptor(t, 'rawData');
  return () => {
    if (had && descriptor) Object.defineProperty(t, 'rawData', descriptor);
    else delete (t as Partial<TensorProto>).rawData;
  };
}
