/**
 * The real Q and K of every attention site on one window: the ORIGINAL model's sites are detected
 * (detect-attention, through the pass registry as `convert` runs it), each site's canonical Q
 * [B, Hq, S, D] and K [B, Hkv, T, D] (post-rotary, as attention reads them) become extra graph outputs
 * of a copy, and onnxruntime-node runs the copy on the window.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { builtinPasses } from '../../passes/index.js';
import type { DetectAttentionData } from '../../passes/detect-attention/index.js';
import type { AttentionSite, UnprovenSite } from '../attention/site.js';
import { fail } from '../errors.js';
import type { Value } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import { DataType } from '../onnx/codec.js';
import { loadModel } from '../onnx/load.js';
import { TEMP_PREFIX } from '../onnx/atomic.js';
import { allInitializers, encodeModel, saveModel } from '../onnx/save.js';
import { PassRegistry, runPasses } from '../pipeline/manager.js';
import { generateInputs, inputFacts } from '../verify/inputs.js';
import { toFloat64, type NamedTensor } from '../verify/tensors.js';
import { onnxRuntime } from '../runtime.js';
import type { CapturedQK } from './layouts.js';

export interface AttentionCapture {
  sites: AttentionSite[];
  unproven: UnprovenSite[];
  /** by site id */
  qk: Map<string, CapturedQK>;
  /** token ids the model embeds (rows of its embedding table; 100 when unknown) */
  vocab: number;
}

/** Rows of the token embedding, and the longest window a learned position table allows (if any). */
export function windowLimits(modelPath: string): { vocab: number; maxPositions: number | undefined } {
  const loaded = loadModel(modelPath);
  try {
    const facts = inputFacts(Model.lift(loaded).graph, true);
    return { vocab: facts.vocab, maxPositions: facts.maxPositions };
  } finally {
    loaded.external.close();
  }
}

export async function captureAttention(modelPath: string, tokens: Int32Array, registry = new PassRegistry(builtinPasses)): Promise<AttentionCapture> {
  const loaded = loadModel(modelPath);
  try {
    const model = Model.lift(loaded);
    const runs = await runPasses(model, registry.plan(['detect-attention']));
    const { sites, unproven } = runs.at(-1)!.result.data as DetectAttentionData;
    const facts = inputFacts(model.graph, sites.some((s) => s.causal));
    // generated values for every input (mask of ones, positions, empty caches); the window's tokens replace the ids
    const inputs = generateInputs(model.graph, facts, { name: 'window', batch: 1, seq: tokens.length, past: 0 }, 1);
    const ids = inputs.find((t) => /input_ids/i.test(t.name)) ?? fail('usage', `${modelPath} has no 'input_ids' input; the report feeds token ids to it.`);
    ids.data = ids.dtype === 'int64' ? BigInt64Array.from(tokens, (t) => BigInt(t)) : Int32Array.from(tokens);
    const outputs = new Map<string, { q: string; k: string }>();
    for (const site of sites) {
      const { q, k } = site.materializeInputs();
      outputs.set(site.id, { q: exposeAsOutput(model, q), k: exposeAsOutput(model, k) });
    }
    const results = await runProbe(model, modelPath, inputs);
    const qk = new Map<string, CapturedQK>();
    for (const [id, names] of outputs) qk.set(id, { q: floatTensor(results, names.q), k: floatTensor(results, names.k) });
    return { sites, unproven, qk, vocab: facts.vocab };
  } finally {
    loaded.external.close();
  }
}

function exposeAsOutput(model: Model, v: Value): string {
  if (!v.type) v.type = { elemType: DataType.FLOAT, shape: undefined };
  if (!v.isGraphOutput) model.graph.outputs.push(v);
  return v.name;
}

function floatTensor(results: Map<string, NamedTensor>, name: string): CapturedQK['q'] {
  const t = results.get(name) ?? fail('invalid-model', `onnxruntime did not return the probed value '${name}'.`);
  return { data: toFloat64(t), dims: t.dims };
}

/** Runs the probed copy: from memory, or (external weights) as a temporary file beside the original. */
async function runProbe(model: Model, modelPath: string, inputs: NamedTensor[]): Promise<Map<string, NamedTensor>> {
  const proto = model.lower();
  const external = allInitializers(proto).some((t) => t.dataLocation === 1);
  const tempPath = external ? join(dirname(modelPath), `${TEMP_PREFIX}${process.pid}-probe.onnx`) : undefined;
  let session: ort.InferenceSession;
  try {
    if (tempPath) saveModel(proto, tempPath, { external: model.external, externalData: 'reference' });
    const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic' };
    const { InferenceSession } = await onnxRuntime();
    session = tempPath ? await InferenceSession.create(tempPath, options) : await InferenceSession.create(encodeModel(proto), options);
  } catch (err) {
    if (tempPath) rmSync(tempPath, { force: true });
    fail('verify-failed', `${modelPath}: onnxruntime could not load the copy with Q and K as outputs: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  try {
    const { Tensor } = await onnxRuntime();
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) if (session.inputNames.includes(t.name)) feeds[t.name] = new Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
    const out = await session.run(feeds);
    return new Map(Object.entries(out).map(([name, t]) => [name, { name, dtype: t.type, dims: [...t.dims], data: t.data as NamedTensor['data'] }]));
  } finally {
    await session.release();
    if (tempPath) rmSync(tempPath, { force: true });
  }
}
