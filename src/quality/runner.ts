/**
 * Running a causal language model on token windows in onnxruntime-node: input_ids [1, S], an all-ones
 * attention_mask, position_ids 0…S−1 where the model takes them, plus any extra feeds (e.g. the span
 * pass's `attnpass_spans`). Returns the logits [S, vocab] of each window.
 */
import type * as ort from 'onnxruntime-node';
import { fail } from '../errors.js';
import { loadModel } from '../onnx/load.js';
import { encodeModel } from '../onnx/save.js';
import { isExternal } from '../onnx/external.js';
import { onnxRuntime } from '../runtime.js';

export type Feeds = Record<string, unknown>;

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic', logSeverityLevel: 3 };

/**
 * onnxruntime-node (1.30) silently ignores a feed for an input that has a default (an initializer of the
 * same name, as the span pass's `attnpass_spans` has). To feed one, the model is opened without that
 * default, from memory.
 */
async function createSession(path: string, fed: readonly string[]): Promise<{ session: ort.InferenceSession; inputNames: string[] }> {
  const loaded = loadModel(path);
  try {
    const graph = loaded.proto.graph;
    const inputNames = (graph?.input ?? []).map((v) => v.name ?? '');
    const defaults = (graph?.initializer ?? []).filter((t) => fed.includes(t.name ?? '') && inputNames.includes(t.name ?? ''));
    let source: string | Uint8Array = path;
    if (defaults.length > 0 && graph) {
      if ((graph.initializer ?? []).some(isExternal)) fail('unsupported', `${path}: feeding ${defaults.map((t) => t.name).join(', ')} means opening the model from memory, which cannot read its external data. Feed models with embedded weights.`);
      graph.initializer = graph.initializer!.filter((t) => !defaults.includes(t));
      source = encodeModel(loaded.proto);
    }
    try {
      const { InferenceSession } = await onnxRuntime();
      // two calls: the overloads take a path or bytes, not either
      const session = typeof source === 'string' ? await InferenceSession.create(source, SESSION_OPTIONS) : await InferenceSession.create(source, SESSION_OPTIONS);
      return { session, inputNames };
    } catch (err) {
      fail('verify-failed', `${path}: onnxruntime could not load the model: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  } finally {
    loaded.external.close();
  }
}

export class LogitsRunner {
  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
    private readonly logitsName: string,
    /** the graph's inputs: those the session requires, and those the caller feeds */
    private readonly inputNames: string[],
    private readonly extra: Feeds,
  ) {}

  /** `feeds`: extra inputs given to every run, for those of the model's inputs they name */
  static async open(path: string, feeds: Feeds = {}): Promise<LogitsRunner> {
    const { session, inputNames } = await createSession(path, Object.keys(feeds));
    const logitsName = session.outputNames.find((n) => /logits/i.test(n)) ?? session.outputNames[0];
    if (!logitsName) fail('usage', `${path}: the model has no outputs.`);
    const fedOrRequired = inputNames.filter((n) => n in feeds || session.inputNames.includes(n));
    return new LogitsRunner(path, session, logitsName, fedOrRequired, feeds);
  }

  /** The logits of one window, [seqLen × vocab] (batch 1), and the vocabulary size. */
  async logits(tokens: Int32Array): Promise<{ data: Float32Array; vocab: number }> {
    const seqLen = tokens.length;
    const { Tensor } = await onnxRuntime();
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      if (name in this.extra) feeds[name] = toOrtTensor(Tensor, this.extra[name], name);
      else if (/input_ids/i.test(name)) feeds[name] = new Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, seqLen]);
      else if (/attention_mask/i.test(name)) feeds[name] = new Tensor('int64', new BigInt64Array(seqLen).fill(1n), [1, seqLen]);
      else if (/position_ids/i.test(name)) feeds[name] = new Tensor('int64', BigInt64Array.from({ length: seqLen }, (_, i) => BigInt(i)), [1, seqLen]);
      else fail('usage', `${this.path}: no value for input '${name}'. Quality runs feed input_ids, attention_mask and position_ids only; give other inputs in the feeds option.`);
    }
    const results = await this.session.run(feeds);
    const out = results[this.logitsName]!;
    const dims = out.dims;
    if (out.type !== 'float32' || dims.length !== 3 || dims[0] !== 1 || dims[1] !== seqLen) {
      fail('usage', `${this.path}: output '${this.logitsName}' is ${out.type} [${dims.join(', ')}]; expected float32 logits [1, ${seqLen}, vocab] from a causal language model.`);
    }
    return { data: out.data as Float32Array, vocab: dims[2]! };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** An ort.Tensor, or a plain { dtype|type, dims, data } record, as an ort.Tensor. */
function toOrtTensor(Tensor: typeof ort.Tensor, value: unknown, name: string): ort.Tensor {
  if (value instanceof Tensor) return value;
  const v = value as { dtype?: string; type?: string; dims?: number[]; data?: unknown } | null;
  const type = v?.dtype ?? v?.type;
  if (!v || typeof type !== 'string' || !Array.isArray(v.dims) || !ArrayBuffer.isView(v.data)) {
    fail('usage', `feed '${name}' must be an onnxruntime Tensor or { dtype, dims, data } with a typed array.`);
  }
  return new Tensor(type as 'float32', v.data as Float32Array, v.dims);
}
