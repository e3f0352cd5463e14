// How a caller feeds `attnpass_spans` from onnxruntime-node. ORT sessions in Node cannot override an input
// that has a default (an initializer of the same name): the feed is dropped without a word. So the span
// pass offers --default-spans required, and this checks both halves: with a default the input is hidden
// from Node (if this starts failing, ORT changed and the README's advice can change too), and without one
// the fed spans really decide what is read.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinPasses } from '../../passes/index.js';
import { SPAN_END_ALL, SPANS_INPUT } from '../../passes/span/index.js';
import { convertModel } from '../../src/convert.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { fixtures } from '../support/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-span-feed-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const registry = new PassRegistry(builtinPasses);
const fixture = fixtures().find((f) => f.name === 'llama-gqa-dynamo')!;
const T = 60;

async function convert(defaultSpans: string): Promise<ort.InferenceSession> {
  const out = join(work, `span-${defaultSpans}.onnx`);
  await convertModel({ input: fixture.model, output: out, pass: 'span', passOptions: { span: { 'default-spans': defaultSpans, 'local-window': 8 } }, registry });
  return ort.InferenceSession.create(out);
}

function feeds(spans?: bigint[]): Record<string, ort.Tensor> {
  const ids = BigInt64Array.from({ length: T }, (_, i) => BigInt(3 + ((i * 37) % 120)));
  const f: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [1, T]), attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]) };
  if (spans) f[SPANS_INPUT] = new ort.Tensor('int64', BigInt64Array.from(spans), [1, spans.length / 2, 2]);
  return f;
}

async function logits(session: ort.InferenceSession, spans?: bigint[]): Promise<Float32Array> {
  return (await session.run(feeds(spans))).logits!.data as Float32Array;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('feeding attnpass_spans from onnxruntime-node', () => {
  it('with a default (the pass default), Node cannot see the input, so feeds change nothing', async () => {
    const session = await convert('all');
    expect(session.inputNames).not.toContain(SPANS_INPUT);
    expect(maxDiff(await logits(session), await logits(session, [0n, 1n]))).toBe(0);
  });

  it('with --default-spans required, the fed spans decide what is read', async () => {
    const session = await convert('required');
    expect(session.inputNames).toContain(SPANS_INPUT);
    await expect(session.run(feeds())).rejects.toThrow(/attnpass_spans/);
    const all = await logits(session, [0n, BigInt(SPAN_END_ALL)]);
    const early = await logits(session, [0n, 20n]);
    const late = await logits(session, [20n, 40n]);
    for (const x of [all, early, late]) expect(x.every(Number.isFinite)).toBe(true);
    expect(maxDiff(all, early)).toBeGreaterThan(1e-3);
    expect(maxDiff(early, late)).toBeGreaterThan(1e-3);
  });
});
