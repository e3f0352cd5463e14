// "Density" is one thing for every operator: the cost model's fraction of dense attention FLOPs. The
// mapping from a density to each pass's options must land on it, the cost model must count what the
// operators admit (checked against a brute-force count of OPERATORS.md's rules), and the options must
// reach the emitted nodes unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertAt } from '../../src/quality/convert-at.js';
import { settingForDensity, stridedSpans } from '../../src/quality/density.js';
import { keptFraction } from '../../src/report/cost.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-density-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const LLAMA = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'llama-gqa-dynamo', 'model.onnx');

/** Causal prefill pairs admitted by SpanAttention (sinks, window, spans), counted key by key. */
function spanPairs(seqLen: number, sinks: number, window: number, spans: Array<[number, number]>): number {
  let n = 0;
  for (let p = 0; p < seqLen; p++) for (let j = 0; j <= p; j++) if (j < sinks || p - j < window || spans.some(([a, b]) => j >= a && j < b)) n++;
  return n;
}

/** Causal prefill pairs admitted by BlockSparseAttention when every block scores the same (ties: lower block first). */
function blockSparsePairs(seqLen: number, bs: number, density: number, sinks: number, local: number): number {
  let n = 0;
  const nb = Math.ceil(seqLen / bs);
  for (let qb = 0; qb < nb; qb++) {
    const candidates = [...Array(qb + 1).keys()];
    const forced = candidates.filter((kb) => kb < sinks || (kb > qb - local && kb <= qb));
    const rest = candidates.filter((kb) => !forced.includes(kb));
    const kept = [...forced, ...rest.slice(0, Math.max(0, Math.ceil(Math.fround(density) * candidates.length) - forced.length))];
    for (let i = qb * bs; i < Math.min(seqLen, (qb + 1) * bs); i++) for (const kb of kept) for (let j = kb * bs; j < Math.min(seqLen, (kb + 1) * bs); j++) if (j <= i) n++;
  }
  return n;
}

describe('cost model', () => {
  const S = 300;
  const dense = (S * (S + 1)) / 2;

  it.each([
    [4, 16, []],
    [0, 1, []],
    [4, 64, [[100, 140], [200, 230]]],
    [2, 400, []],
  ] as Array<[number, number, Array<[number, number]>]>)('SpanAttention with %i sinks and window %i counts the admitted pairs', (sinks, window, spans) => {
    const share = spans.reduce((a, [x, y]) => a + y - x, 0) / S;
    const counted = spanPairs(S, sinks, window, spans) / dense;
    const estimated = keptFraction({ op: 'SpanAttention', attributes: { sink_tokens: sinks, local_window: window, span_fraction: share } }, S, true);
    // spans are costed by their share of the keys outside the window; exact without spans
    expect(Math.abs(estimated - counted)).toBeLessThan(spans.length ? 0.03 : 1e-12);
  });

  it.each([
    [16, 0.3, 1, 1],
    [32, 0.5, 1, 2],
    [16, 0.05, 0, 1],
    [64, 1, 1, 1],
  ])('BlockSparseAttention at block %i, density %f counts the admitted pairs', (bs, density, sinks, local) => {
    const counted = blockSparsePairs(S, bs, density, sinks, local) / dense;
    const estimated = keptFraction({ op: 'BlockSparseAttention', attributes: { block_size: bs, density: Math.fround(density), sink_blocks: sinks, local_blocks: local } }, S, true);
    expect(estimated).toBeCloseTo(counted, 12);
  });

  it('TiledAttention with every block fine is dense, and pooling costs less', () => {
    const tiled = (fine: number, medium: number) => keptFraction({ op: 'TiledAttention', attributes: { block_size: 32, fine_fraction: fine, medium_fraction: medium, medium_tile: 8 } }, S, true);
    expect(tiled(1, 0)).toBeCloseTo(1, 12);
    expect(tiled(0.5, 0.5)).toBeLessThan(tiled(1, 0));
    expect(tiled(0.25, 0)).toBeLessThan(tiled(0.25, 0.25));
  });
});

describe('settingForDensity', () => {
  const seqLen = 2048;
  it.each(['ast', 'att', 'window', 'span'].flatMap((pass) => [0.5, 0.25, 0.1].map((d) => [pass, d] as const)))('%s at density %f costs that fraction of dense FLOPs', (pass, density) => {
    const setting = settingForDensity(pass, density, seqLen);
    expect(Math.abs(keptFraction(setting.cost, seqLen, true) - density)).toBeLessThan(0.015);
  });

  it('density 1 is each operator exact setting', () => {
    expect(settingForDensity('ast', 1, seqLen).options.density).toBe(1);
    expect(settingForDensity('att', 1, seqLen).options['fine-fraction']).toBe(1);
    expect(settingForDensity('window', 1, seqLen).options['local-window']).toBeGreaterThanOrEqual(2 ** 30);
    const spans = settingForDensity('span', 1, seqLen).feeds!.attnpass_spans!;
    expect(spans.dims).toEqual([1, seqLen / 64, 2]);
  });

  it('feeds the span pass strided chunks covering the share the cost model is told', () => {
    const setting = settingForDensity('span', 0.25, seqLen);
    const data = [...(setting.feeds!.attnpass_spans!.data as BigInt64Array)].map(Number);
    const covered = data.reduce((a, x, i) => (i % 2 ? a + x - data[i - 1]! : a), 0) / seqLen;
    expect(covered).toBeCloseTo(setting.cost.attributes.span_fraction!, 12);
    expect(stridedSpans(1024, 0.25)).toEqual([[192, 256], [448, 512], [704, 768], [960, 1024]]);
  });

  it('refuses densities outside (0, 1] and passes it does not know', () => {
    expect(() => settingForDensity('ast', 0, seqLen)).toThrow(/\(0, 1\]/);
    expect(() => settingForDensity('dense', 0.5, seqLen)).toThrow(/ast, att, window, span/);
  });

  it.each(['ast', 'att', 'window'])('%s: the converted model carries the options, so its report costs the same', async (pass) => {
    const setting = settingForDensity(pass, 0.25, seqLen);
    const report = await convertAt(LLAMA, join(work, `${pass}.onnx`), pass, setting.options, seqLen);
    expect(report.totals.rewrittenFlops / report.totals.denseFlops).toBeCloseTo(keptFraction(setting.cost, seqLen, true), 6);
  });
});
