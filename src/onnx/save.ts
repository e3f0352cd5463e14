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
import { AtomicFile, writeAtomically } from './atomic.js';
import { readSync } from 'node:fs';

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

export function saveModel(proto: ModelProto, target: string, options: SaveOptions = {}): SaveResult {
  const path = resolve(target);
  const outDir = dirname(path);
  const dataName = `${basename(path)}.data`;
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

  const embeddedBytes = initializers.reduce((sum, t) => sum + (isExternal(t) ? 0 : (t.rawData?.length ?? 0)), 0);
  const externalize = embeddedBytes > limit - 64 * 1024 * 1024;
  const toCopy = mode === 'copy' ? externalTensors : [];
  const toMove = externalize ? initializers.filter((t) => !isExternal(t) && (t.rawData?.length ?? 0) >= minBytes) : [];

  const modelFile = new AtomicFile(path);
  const dataFile = toCopy.length + toMove.length > 0 ? new AtomicFile(resolve(outDir, dataName)) : undefined;
  const restore: Array<() => void> = [];
  let modelBytes = 0;
  try {
    writeAtomically(dataFile ? [dataFile, modelFile] : [modelFile], () => {
      if (dataFile) {
        for (const t of toCopy) restore.push(copyExternal(t, options.external!, dataFile, dataName));
        for (const t of toMove) restore.push(moveEmbedded(t, dataFile, dataName));
      }
      const bytes = encodeModel(proto);
      if (bytes.length > 0x7fffffff) fail('io', `the model's protobuf is ${bytes.length} bytes, past protobuf's 2 GB limit, even after moving initializers to external data.`);
      modelFile.write(bytes);
      modelBytes = bytes.length;
    });
  } finally {
    // The caller's proto keeps describing the source model.
    for (const undo of restore.reverse()) undo();
  }
  return { path, bytes: modelBytes, dataFile: dataFile?.target, dataBytes: dataFile?.bytesWritten ?? 0 };
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

function copyExternal(t: TensorProto, source: ExternalDataFiles, out: AtomicFile, dataName: string): () => void {
  const ref = externalDataRef(t);
  const length = source.regionLength(t);
  const { fd } = source.openFile(ref.location, t.name);
  pad(out);
  const offset = out.bytesWritten;
  const chunk = Buffer.allocUnsafe(Math.min(length, 16 << 20) || 1);
  for (let done = 0; done < length; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, length - done), ref.offset + done);
    if (n === 0) fail('external-data', `tensor '${t.name}': external data file '${ref.location}' ended early.`);
    out.write(chunk.subarray(0, n));
    done += n;
  }
  const before = t.externalData;
  t.externalData = externalEntries(dataName, offset, length);
  return () => { t.externalData = before; };
}

function moveEmbedded(t: TensorProto, out: AtomicFile, dataName: string): () => void {
  const raw = t.rawData ?? new Uint8Array(0);
  pad(out);
  const offset = out.bytesWritten;
  out.write(raw);
  const had = Object.prototype.hasOwnProperty.call(t, 'dataLocation');
  const before = { rawData: t.rawData, externalData: t.externalData, dataLocation: t.dataLocation };
  t.rawData = new Uint8Array(0);
  t.externalData = externalEntries(dataName, offset, raw.length);
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  return () => {
    t.rawData = before.rawData;
    t.externalData = before.externalData;
    if (had) t.dataLocation = before.dataLocation;
    else delete (t as Partial<TensorProto>).dataLocation;
  };
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

export { Long };
