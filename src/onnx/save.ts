/**
 * Writing a model. Every field the passes did not touch is written back as it was read (unknown
 * fields included). Output is atomic. External data is either referenced where it lies (same folder)
 * or streamed into a data file beside the output; a model whose protobuf would pass 2 GB gets its
 * large initializers moved to external data automatically.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fail } from '../errors.js';
import { Long, onnx, type GraphProto, type ModelProto, type TensorProto } from './codec.js';
import { isExternal, externalDataRef, type ExternalDataFiles } from './external.js';
import { AtomicFile, writeAtomically, writeAtomicallyAsync } from './atomic.js';
import { CopyBuffers, encodeModelParts, payloadRegion, regionChunks, regionChunksAsync, writeParts, writePartsAsync, type EncodedParts, type FileRegion } from './stream.js';
import { deferredPayload, rawDataLength, saveRawData } from './payload.js';
import { readRange, readRangeAsync } from './read-range.js';

export type ExternalDataMode = 'reference' | 'copy';

export interface SaveOptions {
  /** where the source model's external tensors are read from */
  external?: ExternalDataFiles;
  /** reference: keep pointing at the source data files (output must be in the same folder); copy: stream them beside the output. Default: reference when possible, else copy. */
  externalData?: ExternalDataMode;
  /** a protobuf larger than this moves initializers to external data (default 2 GB minus a margin) */
  protobufLimit?: number;
  /** initializers at least this large are moved when externalizing (default 1 KiB) */
  externalizeMinBytes?: number;
  /** called while writing: bytes written so far of `total`, first of the external data file ('data'), then of the model ('model') */
  progress?: (written: number, total: number, what: 'data' | 'model') => void;
}

const PROTOBUF_LIMIT = 2_000_000_000;

export function encodeModel(proto: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(proto).finish();
}

/** Every initializer of the model, its subgraphs and its functions' graphs. */
export function allInitializers(proto: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visitGraph = (g: GraphProto | null | undefined): void => {
    if (!g) return;
    out.push(...(g.initializer ?? []));
    for (const node of g.node ?? []) {
      for (const attr of node.attribute ?? []) {
        visitGraph(attr.g);
        for (const sub of attr.graphs ?? []) visitGraph(sub);
      }
    }
  };
  visitGraph(proto.graph);
  return out;
}

export interface SaveResult {
  path: string;
  bytes: number;
  dataFile: string | undefined;
  dataBytes: number;
}

interface SavePlan {
  path: string;
  modelFile: AtomicFile;
  dataFile: AtomicFile | undefined;
  dataName: string;
  toCopy: TensorProto[];
  toMove: TensorProto[];
}

function planSave(proto: ModelProto, target: string, options: SaveOptions): SavePlan {
  const path = resolve(target);
  const outDir = dirname(path);
  const initializers = allInitializers(proto);
  const limit = options.protobufLimit ?? PROTOBUF_LIMIT;
  const minBytes = options.externalizeMinBytes ?? 1024;

  const sourceDir = options.external?.baseDir ? safeRealpath(options.external.baseDir) : undefined;
  const sameFolder = sourceDir !== undefined && sourceDir === safeRealpath(outDir);
  const externalTensors = initializers.filter(isExternal);
  const mode: ExternalDataMode = options.externalData ?? (sameFolder ? 'reference' : 'copy');
  if (mode === 'reference' && externalTensors.length > 0 && !sameFolder) {
    fail('usage', `--external-data reference keeps the output pointing at the input's data files, so the output must be written in the input's folder (${options.external?.baseDir}). Write it there, or use --external-data copy.`);
  }
  const referenced = new Set(mode === 'reference' ? externalTensors.map((t) => externalDataRef(t).location.replace(/^\.\//, '')) : []);
  if (referenced.has(basename(path))) {
    fail('usage', `the output ${path} would overwrite '${basename(path)}', an external data file the model refers to. Choose another output name.`);
  }
  // never write our data file over a data file the output keeps referring to
  let dataName = `${basename(path)}.data`;
  for (let i = 1; referenced.has(dataName); i++) dataName = `${basename(path)}.${i}.data`;

  const embeddedBytes = initializers.reduce((sum, t) => sum + (isExternal(t) ? 0 : rawDataLength(t)), 0);
  const externalize = embeddedBytes > limit - 64 * 1024 * 1024;
  const toCopy = mode === 'copy' ? externalTensors : [];
  const toMove = externalize ? initializers.filter((t) => !isExternal(t) && rawDataLength(t) >= minBytes) : [];
  if (toCopy.length > 0 && !options.external) {
    fail('external-data', `tensor '${toCopy[0]!.name}' keeps its data in an external file, but the save was not told where the source model's folder is (pass { external: loaded.external }).`);
  }
  const modelFile = new AtomicFile(path);
  let dataFile: AtomicFile | undefined;
  try {
    dataFile = toCopy.length + toMove.length > 0 ? new AtomicFile(resolve(outDir, dataName)) : undefined;
  } catch (err) {
    modelFile.abort();
    throw err;
  }
  return { path, modelFile, dataFile, dataName, toCopy, toMove };
}

/** The model's bytes as parts (large payloads stay views, see stream.ts), checked against protobuf's 2 GB limit before anything is written. */
function encodeForSave(proto: ModelProto): EncodedParts {
  let encoded: EncodedParts;
  try {
    encoded = encodeModelParts(proto);
  } catch (err) {
    fail('io', `encoding the model failed (${(err as Error).message}); a protobuf larger than 2 GB cannot be written even after moving initializers to external data.`, err);
  }
  if (encoded.length > 0x7fffffff) fail('io', `the model's protobuf is ${encoded.length} bytes, past protobuf's 2 GB limit, even after moving initializers to external data.`);
  return encoded;
}

/**
 * Writes the model to `target` atomically (a temporary file in the same folder, renamed when complete).
 * The proto is not changed: fields switched to external data while writing are restored afterwards.
 */
export function saveModel(proto: ModelProto, target: string, options: SaveOptions = {}): SaveResult {
  const plan = planSave(proto, target, options);
  const { modelFile, dataFile } = plan;
  const restore: Array<() => void> = [];
  let modelBytes = 0;
  try {
    writeAtomically(dataFile ? [dataFile, modelFile] : [modelFile], () => {
      if (dataFile) {
        const total = dataProgressTotal(plan, options);
        const buffers = new CopyBuffers();
        for (const t of plan.toCopy) {
          const copied = copyExternal(t, options.external!, dataFile, plan.dataName);
          restore.push(copied.restore);
          for (const c of regionChunks(copied.region, buffers)) dataFile.write(c);
          options.progress?.(dataFile.bytesWritten, total, 'data');
        }
        for (const t of plan.toMove) {
          const moved = moveEmbedded(t, dataFile, plan.dataName);
          restore.push(moved.restore);
          if (moved.bytes) dataFile.write(moved.bytes);
          else for (const c of regionChunks(moved.region!, buffers)) dataFile.write(c);
          options.progress?.(dataFile.bytesWritten, total, 'data');
        }
      }
      const encoded = encodeForSave(proto);
      modelBytes = writeParts(encoded, modelFile, { progress: (done, total) => options.progress?.(done, total, 'model') });
    });
  } finally {
    // The caller's proto keeps describing the source model.
    for (const undo of restore.reverse()) undo();
  }
  return { path: plan.path, bytes: modelBytes, dataFile: dataFile?.target, dataBytes: dataFile?.bytesWritten ?? 0 };
}

/**
 * `saveModel` that yields to the event loop between chunks, so Ctrl-C (SIGINT) or SIGTERM stops a long
 * write before anything is renamed into place: the temporary files are removed and the previous output
 * stays. Use it from the CLI.
 */
export async function saveModelAsync(proto: ModelProto, target: string, options: SaveOptions = {}): Promise<SaveResult> {
  const plan = planSave(proto, target, options);
  const { modelFile, dataFile } = plan;
  const restore: Array<() => void> = [];
  let modelBytes = 0;
  try {
    await writeAtomicallyAsync(dataFile ? [dataFile, modelFile] : [modelFile], async () => {
      if (dataFile) {
        const total = dataProgressTotal(plan, options);
        const buffers = new CopyBuffers();
        for (const t of plan.toCopy) {
          const copied = copyExternal(t, options.external!, dataFile, plan.dataName);
          restore.push(copied.restore);
          for await (const c of regionChunksAsync(copied.region, buffers)) await dataFile.writeAsync(c);
          options.progress?.(dataFile.bytesWritten, total, 'data');
        }
        for (const t of plan.toMove) {
          const moved = moveEmbedded(t, dataFile, plan.dataName);
          restore.push(moved.restore);
          if (moved.bytes) await dataFile.writeAsync(moved.bytes);
          else for await (const c of regionChunksAsync(moved.region!, buffers)) await dataFile.writeAsync(c);
          options.progress?.(dataFile.bytesWritten, total, 'data');
        }
      }
      await new Promise<void>((r) => setImmediate(r));
      const encoded = encodeForSave(proto);
      modelBytes = await writePartsAsync(encoded, modelFile, { progress: (done, total) => options.progress?.(done, total, 'model') });
    });
  } finally {
    for (const undo of restore.reverse()) undo();
  }
  return { path: plan.path, bytes: modelBytes, dataFile: dataFile?.target, dataBytes: dataFile?.bytesWritten ?? 0 };
}

/** Bytes the data file will receive (for progress; alignment padding aside). */
function dataProgressTotal(plan: SavePlan, options: SaveOptions): number {
  let total = 0;
  for (const t of plan.toCopy) total += options.external!.regionLength(t);
  for (const t of plan.toMove) total += rawDataLength(t);
  return total;
}

function externalEntries(location: string, offset: number, length: number): onnx.StringStringEntryProto[] {
  return [
    onnx.StringStringEntryProto.create({ key: 'location', value: location }),
    onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
    onnx.StringStringEntryProto.create({ key: 'length', value: String(length) }),
  ];
}

const ALIGN = 4096;
function pad(file: AtomicFile): void {
  const rem = file.bytesWritten % ALIGN;
  if (rem) file.write(new Uint8Array(ALIGN - rem));
}

/**
 * Points `t` at the data file (at its current end, aligned) and returns the region of the source data
 * file to append there (copied in chunks: never the whole tensor in memory).
 */
function copyExternal(t: TensorProto, source: ExternalDataFiles, out: AtomicFile, dataName: string): { restore: () => void; region: FileRegion } {
  const ref = externalDataRef(t);
  const length = source.regionLength(t);
  const { fd } = source.openFile(ref.location, t.name);
  pad(out);
  const offset = out.bytesWritten;
  const ended = (): never => fail('external-data', `tensor '${t.name}': external data file '${ref.location}' ended early.`);
  const region: FileRegion = {
    offset: ref.offset,
    length,
    read(buffer, n, at) {
      if (readRange(fd, buffer, 0, n, at) !== n) ended();
    },
    async readAsync(buffer, n, at) {
      if ((await readRangeAsync(fd, buffer, 0, n, at)) !== n) ended();
    },
  };
  const before = t.externalData;
  t.externalData = externalEntries(dataName, offset, length);
  return { restore: () => { t.externalData = before; }, region };
}

/**
 * Points `t` at the data file (at its current end, aligned) and returns what to append there: its
 * raw_data bytes, or the region of the model file they are still in when they were never read (payload.ts).
 */
function moveEmbedded(t: TensorProto, out: AtomicFile, dataName: string): { restore: () => void; bytes?: Uint8Array; region?: FileRegion } {
  const file = deferredPayload(t);
  const raw = file ? undefined : (t.rawData ?? new Uint8Array(0));
  const length = file ? file.length : raw!.length;
  pad(out);
  const offset = out.bytesWritten;
  const restoreRaw = saveRawData(t);
  const had = Object.prototype.hasOwnProperty.call(t, 'dataLocation');
  const before = { externalData: t.externalData, dataLocation: t.dataLocation };
  t.rawData = new Uint8Array(0);
  t.externalData = externalEntries(dataName, offset, length);
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  const restore = (): void => {
    restoreRaw();
    t.externalData = before.externalData;
    if (had) t.dataLocation = before.dataLocation;
    else delete (t as Partial<TensorProto>).dataLocation;
  };
  return file ? { restore, region: payloadRegion(file) } : { restore, bytes: raw! };
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

export { Long };
