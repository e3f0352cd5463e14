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
import { compareOutputs, type OutputComparison } from './compare.js';
import { defaultCases, generateInputs, inputFacts, type CaseShape } from './inputs.js';
import { readIoFile, type IoCase, type NamedTensor } from './tensors.js';

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

function isCausalModel(model: Model): boolean {
  // decoders take position ids or past keys, or say so in their names; encoders are padded on the right
  return model.graph.inputs.some((v) => /past|position_ids|cache|decoder/i.test(v.name)) || /gpt|llama|decoder|causal/i.test(model.graph.name);
}

async function runModel(session: ort.InferenceSession, inputs: NamedTensor[]): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) if (session.inputNames.includes(t.name)) feeds[t.name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
  const missing = session.inputNames.filter((n) => !(n in feeds) && !n.startsWith('attnpass_'));
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
        return defaultCases(facts.hasPast, options.seqLens ?? [7, 150]).map((shape: CaseShape, i) => ({ name: shape.name, inputs: generateInputs(original.graph, facts, shape, seed + i) }));
      })();
  const [a, b] = [await createSession(options.original), await createSession(options.rewritten)];
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    options.progress?.(i, cases.length, `case ${c.name}`);
    const ref = await runModel(a, c.inputs);
    let got: NamedTensor[];
    try {
      got = await runModel(b, c.inputs);
    } catch (err) {
      fail('verify-failed', `the rewritten model failed on case ${c.name}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    results.push({ name: c.name, outputs: ref.map((r) => compareOutputs(r, got.find((g) => g.name === r.name) ?? fail('verify-failed', `the rewritten model has no output '${r.name}'.`))) });
  }
  await a.release();
  await b.release();
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
  const lines = [`seed ${r.seed}   tolerance ${r.tolerance} (relative)`, ''];
  lines.push(`${'case'.padEnd(22)} ${'output'.padEnd(28)} ${'max abs'.padStart(10)} ${'relative'.padStart(10)} ${'top-1'.padStart(7)} ${'mean KL'.padStart(10)}`);
  for (const c of r.cases) {
    for (const o of c.outputs) {
      lines.push(
        `${c.name.padEnd(22)} ${o.name.slice(0, 28).padEnd(28)} ${o.maxAbs.toExponential(2).padStart(10)} ${(o.nan ? 'NaN' : o.relative.toExponential(2)).padStart(10)} ${(o.top1Agreement === undefined ? '' : `${(o.top1Agreement * 100).toFixed(1)}%`).padStart(7)} ${(o.meanKl === undefined ? '' : o.meanKl.toExponential(2)).padStart(10)}`,
      );
    }
  }
  lines.push('');
  lines.push(`worst relative error ${r.worstRelative.toExponential(3)}${r.minTop1 !== undefined ? `   min top-1 agreement ${(r.minTop1 * 100).toFixed(2)}%   max mean KL ${r.maxMeanKl!.toExponential(3)}` : ''}`);
  lines.push(r.passed ? 'PASS: within tolerance' : `FAIL: relative error ${r.worstRelative.toExponential(3)} exceeds tolerance ${r.tolerance}`);
  return lines.join('\n');
}
