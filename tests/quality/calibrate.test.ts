// Quality on the small Llama fixture: exact settings measure as no error at all; calibrate gives a layer
// that cannot matter the cheapest setting and a layer that does a dearer one, and writes a valid model
// with those per-layer settings; per-layer options reach the emitted nodes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPasses } from '../../passes/index.js';
import { convertModel } from '../../src/convert.js';
import { openModel } from '../../src/index.js';
import { describeAttention } from '../../src/attention-report.js';
import { isAttnpassOp } from '../../kernels/registry.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { saveModel } from '../../src/onnx/save.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { assertValid } from '../../src/validate/index.js';
import { calibrate } from '../../src/quality/calibrate.js';
import { compareOnText } from '../../src/quality/compare.js';
import { evalWindows, randomText } from '../../src/quality/text.js';
import type { Model } from '../../src/ir/model.js';

const LLAMA = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'llama-gqa-dynamo', 'model.onnx');
const work = mkdtempSync(join(tmpdir(), 'attnpass-calibrate-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const registry = new PassRegistry(builtinPasses);
const SEQ = 128;
const windows = evalWindows(randomText(128, 2 * SEQ, 5), SEQ, 2);

/** Emitted attnpass nodes' attributes, by layer (from the site metadata). */
function emittedByLayer(model: Model): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  for (const n of model.graph.nodes.filter((n) => isAttnpassOp(n.domain, n.opType))) {
    const site = n.proto.metadataProps?.find((m) => m.key === 'attnpass.site')?.value ?? '';
    const attributes: Record<string, number> = {};
    for (const k of n.attributes.keys()) attributes[k] = n.attrFloat(k) ?? n.attrInt(k) ?? 0;
    out.set(Number(/(\d+)/.exec(site)?.[1]), attributes);
  }
  return out;
}

describe('exact settings', () => {
  it.each([['ast'], ['att'], ['window']])('%s --exact measures KL ≈ 0 and top-1 = 1 on text windows', async (pass) => {
    const out = join(work, `${pass}-exact.onnx`);
    await convertModel({ input: LLAMA, output: out, pass, passOptions: { [pass]: { exact: true, ...(pass === 'window' ? {} : { 'block-size': 16 }) } }, registry });
    const m = await compareOnText(LLAMA, out, windows);
    expect(m.positions).toBe(2 * (SEQ - 1));
    expect(m.meanKl).toBeLessThan(1e-9);
    expect(m.top1Agreement).toBe(1);
    expect(Math.abs(m.perplexityRewritten / m.perplexityDense - 1)).toBeLessThan(1e-6);
  });

  it('span: fed spans reach the model (one span over every key is exact, none leaves sinks and window)', async () => {
    const out = join(work, 'span-none.onnx');
    await convertModel({ input: LLAMA, output: out, pass: 'span', passOptions: { span: { 'default-spans': 'none', 'local-window': 8 } }, registry });
    const all = { attnpass_spans: { dtype: 'int64', dims: [1, 1, 2], data: BigInt64Array.of(0n, BigInt(SEQ)) } };
    expect((await compareOnText(LLAMA, out, windows, { feeds: all })).meanKl).toBeLessThan(1e-9);
    expect((await compareOnText(LLAMA, out, windows)).meanKl).toBeGreaterThan(1e-6);
  });

  it('a sparse setting measures a real error', async () => {
    const out = join(work, 'window-8.onnx');
    await convertModel({ input: LLAMA, output: out, pass: 'window', passOptions: { window: { 'local-window': 8 } }, registry });
    expect((await compareOnText(LLAMA, out, windows)).meanKl).toBeGreaterThan(1e-6);
  });
});

describe('layer-options', () => {
  it('gives each layer its own settings', async () => {
    const out = join(work, 'per-layer.onnx');
    const report = await convertModel({ input: LLAMA, output: out, pass: 'ast', passOptions: { ast: { 'layer-options': '{"1":{"density":0.5,"block-size":32}}' } }, registry });
    const emitted = emittedByLayer(openModel(out));
    expect(emitted.get(0)).toMatchObject({ density: 0.25, block_size: 64 });
    expect(emitted.get(1)).toMatchObject({ density: 0.5, block_size: 32 });
    expect(report.layers[1]!.rewrittenCost.flops).toBeGreaterThan(report.layers[0]!.rewrittenCost.flops);
  });

  it.each([
    ['not JSON', '{1:', /not JSON/],
    ['an unknown option', '{"0":{"densty":0.1}}', /'densty', which is not a per-layer option of this pass; use one of .*density/],
    ['a bad layer key', '{"first":{"density":0.1}}', /'first' is not a layer index/],
  ])('refuses %s, naming the fix', async (_what, spec, message) => {
    await expect(convertModel({ input: LLAMA, output: join(work, 'bad.onnx'), pass: 'ast', passOptions: { ast: { 'layer-options': spec } }, registry })).rejects.toThrow(message);
  });
});

describe('calibrate', () => {
  let insensitive: string;
  beforeAll(() => {
    // zero layer 1's value projection: its attention output is 0 whatever keys it reads, so any density is exact there
    const model = openModel(LLAMA);
    const site = describeAttention(model).attentionSites.find((s) => s.layer === 1)!;
    let value = model.graph.lookup(site.v)!;
    while (value.producer && value.producer.opType !== 'MatMul') value = value.producer.inputs[0]!;
    const weight = value.producer!.inputs.find((v) => v?.initializer)!;
    const dims = weight.type!.shape as number[];
    weight.initializer = makeTensor(weight.name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
    insensitive = join(work, 'layer1-insensitive.onnx');
    saveModel(model.lower(), insensitive);
  });

  it('picks the lowest density for a layer that cannot matter and a higher one for a layer that does', async () => {
    const output = join(work, 'calibrated.onnx');
    const target = 1e-6;
    const result = await calibrate({ model: insensitive, output, pass: 'window', targetError: target, metric: 'kl', windows, seqLen: SEQ, densities: [0.1, 0.5] });
    const [layer0, layer1] = result.layers;
    expect(layer1!.density).toBe(0.1);
    expect(layer1!.error).toBeLessThan(1e-12);
    expect(layer0!.density).toBeGreaterThan(0.1);
    expect(result.combined.error).toBeLessThanOrEqual(target);
    expect(result.granularity).toBe('layer');

    const written = openModel(output);
    assertValid(written, { customOps: isAttnpassOp });
    const emitted = emittedByLayer(written);
    expect(emitted.get(1)!.local_window).toBeLessThan(emitted.get(0)!.local_window!);
    // the written model is the one measured
    const measured = await compareOnText(insensitive, output, windows);
    expect(measured.meanKl).toBeCloseTo(result.combined.metrics.meanKl, 12);
  });

  it('names the fix when even exact settings cannot meet the target', async () => {
    await expect(calibrate({ model: LLAMA, output: join(work, 'never.onnx'), pass: 'ast', targetError: 0, metric: 'kl', windows, seqLen: SEQ, densities: [0.5] })).rejects.toThrow(/Raise --target-error/);
  });
});
