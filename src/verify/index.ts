/**
 * `verify`: runs the original and the rewritten model in onnxruntime-node on the same inputs (given,
 * or generated at several shapes: batch 1 and 3, short and long, with padding, with a KV cache where
 * the model has one) and compares every output.
 */
import * as ort from 'onnxruntime-node';
import { fail } from '../errors.js';
import type { Model } from '../ir/model.js';
import { openModel } from '../index.js';
import { inferModel } from '../ir/infer.js';
import { describeAttention } from '../attention-report.js';
import { compareOutputs, type OutputComparison, type RowFilter } from './compare.js';
import { defaultCases, generateInputs, inputFacts, type CaseShape } from './inputs.js';
import { readIoFile, toFloat64, type IoCase, type NamedTensor } from './tensors.js';
import { SPANS_INPUT, SPAN_END_ALL } from '../../passes/span/index.js';

export interface VerifyOptions {
  original: string;
  rewritten: string;
  inputsFile?: string;
  seqLens?: number[];
  seed?: number;
  tolerance?: number;
  progress?: (done: number, total: number, label?: string) => void;
}

export interface CaseResult {
  name: string;
  outputs: OutputComparison[];
  /** why the case was not compared: the ORIGINAL model cannot run it (e.g. a fused op's own limits) */
  skipped?: string;
}

export interface VerifyReport {
  seed: number;
  tolerance: number;
  cases: CaseResult[];
  worstRelative: number;
  minTop1: number | undefined;
  maxMeanKl: number | undefined;
  passed: boolean;
}

/** Decoders (any causal attention) are padded on the left, encoders on the right. */
function isCausalModel(model: Model): boolean {
  return describeAttention(model).attentionSites.some((s) => (s as { causal?: boolean }).causal === true);
}

/**
 * Rows of [B, S, ...] outputs that hold real tokens, from the attention mask's last S columns. Padding
 * rows carry no meaning (exporters themselves disagree with PyTorch there), so errors are judged on real
 * rows and reported for all rows too. Encoder-decoder models are compared on every row.
 */
function realTokenRows(inputs: NamedTensor[]): RowFilter {
  const masks = inputs.filter((t) => /attention_mask/i.test(t.name));
  if (masks.length !== 1 || inputs.some((t) => /decoder_input_ids/i.test(t.name)) || masks[0]!.dims.length !== 2) return undefined;
  const [batch, length] = masks[0]!.dims as [number, number];
  const values = toFloat64(masks[0]!);
  return (dims) => {
    if (dims.length < 3 || dims[0] !== batch || dims[1]! > length) return undefined;
    const seq = dims[1]!;
    return (row) => values[Math.floor(row / seq) * length + (length - seq) + (row % seq)] !== 0;
  };
}

async function runModel(session: ort.InferenceSession, inputs: NamedTensor[]): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) if (session.inputNames.includes(t.name)) feeds[t.name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
  // a span model written with --default-spans required: read every key (the spans a caller would feed are unknown here)
  if (session.inputNames.includes(SPANS_INPUT) && !(SPANS_INPUT in feeds)) feeds[SPANS_INPUT] = new ort.Tensor('int64', BigInt64Array.of(0n, BigInt(SPAN_END_ALL)), [1, 1, 2]);
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) fail('usage', `no value for model input(s) ${missing.join(', ')}; give them with --inputs FILE.`);
  const results = await session.run(feeds);
  return session.outputNames.map((name) => {
    const t = results[name]!;
    return { name, dtype: t.type, dims: [...t.dims], data: t.data as NamedTensor['data'] };
  });
}

async function createSession(path: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, { graphOptimizationLevel: 'basic' });
  } catch (err) {
    fail('verify-failed', `${path}: onnxruntime could not load the model: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

export async function verifyModels(options: VerifyOptions): Promise<VerifyReport> {
  const tolerance = options.tolerance ?? 1e-4;
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const original = openModel(options.original);
  inferModel(original);
  const cases: IoCase[] = options.inputsFile
    ? readIoFile(options.inputsFile)
    : (() => {
        const facts = inputFacts(original.graph, isCausalModel(original));
        return defaultCases(facts, options.seqLens ?? [7, 150]).map((shape: CaseShape, i) => ({ name: shape.name, inputs: generateInputs(original.graph, facts, shape, seed + i) }));
      })();
  const [a, b] = [await createSession(options.original), await createSession(options.rewritten)];
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    options.progress?.(i, cases.length, `case ${c.name}`);
    let ref: NamedTensor[];
    try {
      ref = await runModel(a, c.inputs);
    } catch (err) {
      results.push({ name: c.name, outputs: [], skipped: `the original model cannot run this case: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` });
      continue;
    }
    let got: NamedTensor[];
    try {
      got = await runModel(b, c.inputs);
    } catch (err) {
      fail('verify-failed', `the rewritten model failed on case ${c.name}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    const rows = realTokenRows(c.inputs);
    results.push({ name: c.name, outputs: ref.map((r) => compareOutputs(r, got.find((g) => g.name === r.name) ?? fail('verify-failed', `the rewritten model has no output '${r.name}'.`), rows)) });
  }
  await a.release();
  await b.release();
  if (results.every((r) => r.skipped)) {
    fail('verify-failed', `the original model ran none of the cases (${results[0]?.skipped ?? 'no cases'}). Give inputs it accepts with --inputs FILE.`);
  }
  const all = results.flatMap((r) => r.outputs);
  const worstRelative = Math.max(0, ...all.map((o) => (o.nan ? Infinity : o.relative)));
  const top1 = all.filter((o) => o.top1Agreement !== undefined).map((o) => o.top1Agreement!);
  const kl = all.filter((o) => o.meanKl !== undefined).map((o) => o.meanKl!);
  return {
    seed,
    tolerance,
    cases: results,
    worstRelative,
    minTop1: top1.length ? Math.min(...top1) : undefined,
    maxMeanKl: kl.length ? Math.max(...kl) : undefined,
    passed: worstRelative <= tolerance && !all.some((o) => o.nan),
  };
}

export function formatVerify(r: VerifyReport): string {
  const lines = [`seed ${r.seed}   tolerance ${r.tolerance} (relative, on rows that hold real tokens; padding rows shown apart)`, ''];
  lines.push(`${'case'.padEnd(22)} ${'output'.padEnd(28)} ${'max abs'.padStart(10)} ${'relative'.padStart(10)} ${'(all rows)'.padStart(12)} ${'top-1'.padStart(7)} ${'mean KL'.padStart(10)}`);
  for (const c of r.cases) {
    if (c.skipped) lines.push(`${c.name.padEnd(22)} skipped: ${c.skipped}`);
    for (const o of c.outputs) {
      lines.push(
        `${c.name.padEnd(22)} ${o.name.slice(0, 28).padEnd(28)} ${o.maxAbs.toExponential(2).padStart(10)} ${(o.nan ? 'NaN' : o.relative.toExponential(2)).padStart(10)} ${o.relativeAllRows.toExponential(2).padStart(12)} ${(o.top1Agreement === undefined ? '' : `${(o.top1Agreement * 100).toFixed(1)}%`).padStart(7)} ${(o.meanKl === undefined ? '' : o.meanKl.toExponential(2)).padStart(10)}`,
      );
    }
  }
  lines.push('');
  lines.push(`worst relative error ${r.worstRelative.toExponential(3)}${r.minTop1 !== undefined ? `   min top-1 agreement ${(r.minTop1 * 100).toFixed(2)}%   max mean KL ${r.maxMeanKl!.toExponential(3)}` : ''}`);
  lines.push(r.passed ? 'PASS: within tolerance' : `FAIL: relative error ${r.worstRelative.toExponential(3)} exceeds tolerance ${r.tolerance}`);
  return lines.join('\n');
}
