/** Running a ModelProto before and after a reference splice on random inputs (for the synthetic graphs). */
import * as ort from 'onnxruntime-node';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { detectAttention, type Detection } from '../../src/attention/detect.js';
import type { ModelProto } from '../../src/onnx/codec.js';
import { maxDiff, session, spliceReference } from './support.js';

export interface Feeds {
  [name: string]: ort.Tensor;
}

function rand(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (Math.imul(a ^ (a >>> 15), 2246822507) + 0x9e3779b9) >>> 0;
    return (a / 4294967296) * 2 - 1;
  });
}

/** Random feeds for the graph inputs: floats in [-1, 1], masks of ones with a left padding in batch row 1. */
export function feedsFor(proto: ModelProto, sizes: Record<string, number>): Feeds {
  const out: Feeds = {};
  let seed = 1;
  for (const vi of proto.graph!.input!) {
    const t = vi.type!.tensorType!;
    const dims = t.shape!.dim!.map((d) => (d.dimParam ? sizes[d.dimParam]! : Number(d.dimValue)));
    const n = dims.reduce((a, b) => a * b, 1);
    if (t.elemType === 1) out[vi.name!] = new ort.Tensor('float32', rand(n, seed++), dims);
    else if (t.elemType === 7 || t.elemType === 6) {
      const data = Array.from({ length: n }, () => 1);
      if (dims.length === 2 && dims[0]! > 1) data[dims[1]!] = 0; // batch row 1 starts with one padding token
      out[vi.name!] = t.elemType === 7 ? new ort.Tensor('int64', BigInt64Array.from(data.map(BigInt)), dims) : new ort.Tensor('int32', Int32Array.from(data), dims);
    } else if (t.elemType === 9) out[vi.name!] = new ort.Tensor('bool', Uint8Array.from({ length: n }, () => 1), dims);
  }
  return out;
}

export async function run(proto: ModelProto, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  return (await session(proto)).run(feeds);
}

/** Detects, splices the reference attention into every site, and returns both models' outputs' largest difference. */
export async function spliceAndCompare(proto: ModelProto, sizes: Record<string, number>, options: { triangle?: boolean; append?: boolean } = {}): Promise<{ detection: Detection; diff: number; names: string[] }> {
  const feeds = feedsFor(proto, sizes);
  const before = await run(proto, feeds);
  const model = Model.lift(proto);
  inferModel(model);
  const detection = detectAttention(model);
  for (const s of detection.sites) spliceReference(s, { triangle: options.triangle ?? !s.maskIncludesCausal, append: options.append });
  const after = await run(model.lower(), feeds);
  let diff = 0;
  for (const name of Object.keys(before)) diff = Math.max(diff, maxDiff(after[name]!, before[name]!));
  return { detection, diff, names: Object.keys(before) };
}

export function detectProto(proto: ModelProto): Detection {
  const model = Model.lift(proto);
  inferModel(model);
  return detectAttention(model);
}
