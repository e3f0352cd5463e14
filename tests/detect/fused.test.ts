/**
 * Fused attention ops (ONNX Attention, com.microsoft Attention / MultiHeadAttention / GroupQueryAttention):
 * proven from attributes checked against shapes, and their materialized Q/K/V/mask/present reproduce the
 * op exactly in onnxruntime when a reference attention is spliced in.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { G, F32, I32, I64, BOOL } from './graphs.js';
import { detectProto, feedsFor, run, type Feeds } from './support-run.js';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { detectAttention } from '../../src/attention/detect.js';
import { maxDiff, spliceReference } from './support.js';
import type { ModelProto } from '../../src/onnx/codec.js';
import { summarizeSite, type AttentionSiteSummary } from '../../src/attention-report.js';

type IO = [string, number, Array<number | string>];

function single(op: string, domain: string, attrs: Record<string, number | { f: number }>, inputs: Array<IO | undefined>, outputs: IO[], opset: Record<string, number>): ModelProto {
  const g = new G();
  const names = inputs.map((i) => (i ? g.input(i[0], i[1], i[2]) : ''));
  g.ops(op, names, attrs, { domain, names: outputs.map((o) => o[0]) });
  for (const o of outputs) g.output(o[0], o[1], o[2]);
  return g.model(opset);
}

async function spliced(proto: ModelProto, feeds: Feeds): Promise<{ diff: number; sites: AttentionSiteSummary[] }> {
  const before = await run(proto, feeds);
  const model = Model.lift(proto);
  inferModel(model);
  const { sites, unproven } = detectAttention(model);
  expect(unproven).toEqual([]);
  const facts = sites.map(summarizeSite); // before splicing: rerouting graph outputs renames the old values
  for (const s of sites) spliceReference(s, { triangle: true });
  const after = await run(model.lower(), feeds);
  let diff = 0;
  for (const k of Object.keys(before)) diff = Math.max(diff, maxDiff(after[k]!, before[k]!));
  return { diff, sites: facts };
}

const ms = { '': 17, 'com.microsoft': 1 };
const i32 = (vals: number[], dims: number[]) => new ort.Tensor('int32', Int32Array.from(vals), dims);

describe('ONNX Attention (opset 23)', () => {
  it('4-D with past_key/past_value and is_causal: bottom-right causal, present = Concat(past, new)', async () => {
    const proto = single('Attention', '', { is_causal: 1, scale: { f: 0.3 } }, [['Q', F32, ['b', 4, 's', 8]], ['K', F32, ['b', 2, 's', 8]], ['V', F32, ['b', 2, 's', 8]], undefined, ['pk', F32, ['b', 2, 'p', 8]], ['pv', F32, ['b', 2, 'p', 8]]], [['Y', F32, ['b', 4, 's', 8]], ['presk', F32, ['b', 2, 't', 8]], ['presv', F32, ['b', 2, 't', 8]]], { '': 23 });
    const { diff, sites } = await spliced(proto, feedsFor(proto, { b: 2, s: 3, p: 4 }));
    expect(sites.map((s) => [s.heads, s.kvHeads, s.headDim, s.scale, s.causal, s.kvCache?.pastKey, s.kvCache?.presentKey])).toEqual([[4, 2, 8, expect.closeTo(0.3, 6), true, 'pk', 'presk']]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('3-D GQA inside the op with an additive float mask', async () => {
    const proto = single('Attention', '', { q_num_heads: 4, kv_num_heads: 2 }, [['Q', F32, ['b', 's', 32]], ['K', F32, ['b', 's', 16]], ['V', F32, ['b', 's', 16]], ['M', F32, ['b', 1, 's', 's']]], [['Y', F32, ['b', 's', 32]]], { '': 23 });
    const { diff, sites } = await spliced(proto, feedsFor(proto, { b: 2, s: 5 }));
    expect(sites.map((s) => [s.heads, s.kvHeads, s.headDim, s.scale, s.causal])).toEqual([[4, 2, 8, expect.closeTo(1 / Math.sqrt(8), 6), false]]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('a boolean mask with fully masked rows (zeros, as onnxruntime computes them)', async () => {
    const proto = single('Attention', '', {}, [['Q', F32, ['b', 2, 's', 8]], ['K', F32, ['b', 2, 's', 8]], ['V', F32, ['b', 2, 's', 8]], ['M', BOOL, ['b', 1, 's', 's']]], [['Y', F32, ['b', 2, 's', 8]]], { '': 23 });
    const feeds = feedsFor(proto, { b: 2, s: 3 });
    feeds.M = new ort.Tensor('bool', Uint8Array.from([0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1]), [2, 1, 3, 3]);
    const { diff } = await spliced(proto, feeds);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });
});

describe('com.microsoft.Attention (packed QKV weights)', () => {
  it('with past, unidirectional and a raw 2-D mask', async () => {
    const g = new G();
    const x = g.input('x', F32, ['b', 's', 16]);
    g.ops('Attention', [x, g.weight([16, 48]), g.weight([48]), g.input('mask', I32, ['b', 't']), g.input('past', F32, [2, 'b', 2, 'p', 8])], { num_heads: 2, unidirectional: 1 }, { domain: 'com.microsoft', names: ['y', 'present'] });
    g.output('y', F32, ['b', 's', 16]);
    g.output('present', F32, [2, 'b', 2, 't', 8]);
    const proto = g.model(ms);
    const feeds = feedsFor(proto, { b: 2, s: 3, p: 4, t: 7 });
    const { diff, sites } = await spliced(proto, feeds);
    expect(sites.map((s) => [s.heads, s.kvHeads, s.headDim, s.causal, s.mask?.parts, s.kvCache?.presentKey])).toEqual([[2, 2, 8, true, 1, 'present']]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('with an attention bias and a 3-D mask', async () => {
    const g = new G();
    const x = g.input('x', F32, ['b', 's', 16]);
    g.ops('Attention', [x, g.weight([16, 48]), g.weight([48]), g.input('mask', I32, ['b', 's', 's']), '', g.input('bias', F32, [1, 2, 's', 's'])], { num_heads: 2, scale: { f: 0.2 } }, { domain: 'com.microsoft', names: ['y'] });
    g.output('y', F32, ['b', 's', 16]);
    const proto = g.model(ms);
    const feeds = feedsFor(proto, { b: 2, s: 3 });
    feeds.mask = i32([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1], [2, 3, 3]);
    const { diff, sites } = await spliced(proto, feeds);
    expect(sites.map((s) => [s.scale, s.mask?.parts])).toEqual([[expect.closeTo(0.2, 6), 2]]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('with 1-D key lengths and uneven q/k/v hidden sizes', async () => {
    const g = new G();
    const x = g.input('x', F32, ['b', 's', 16]);
    g.ops('Attention', [x, g.weight([16, 40]), g.weight([40]), g.input('lens', I32, ['b'])], { num_heads: 2, qkv_hidden_sizes: [16, 16, 8] }, { domain: 'com.microsoft', names: ['y'] });
    g.output('y', F32, ['b', 's', 8]);
    const proto = g.model(ms);
    const feeds = feedsFor(proto, { b: 2, s: 5 });
    feeds.lens = i32([5, 3], [2]);
    const { diff, sites } = await spliced(proto, feeds);
    expect(sites.map((s) => [s.heads, s.headDim, s.valueHeadDim])).toEqual([[2, 8, 4]]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });
});

describe('com.microsoft.MultiHeadAttention', () => {
  it('separate Q/K/V with bias, a key padding mask and a past', async () => {
    const proto = single('MultiHeadAttention', 'com.microsoft', { num_heads: 2 }, [['q', F32, ['b', 's', 16]], ['k', F32, ['b', 's', 16]], ['v', F32, ['b', 's', 16]], ['bias', F32, [48]], ['kpm', I32, ['b', 't']], undefined, ['pk', F32, ['b', 2, 'p', 8]], ['pv', F32, ['b', 2, 'p', 8]]], [['y', F32, ['b', 's', 16]], ['presk', F32, ['b', 2, 't', 8]], ['presv', F32, ['b', 2, 't', 8]]], ms);
    const { diff, sites } = await spliced(proto, feedsFor(proto, { b: 2, s: 3, p: 4, t: 7 }));
    expect(sites.map((s) => [s.heads, s.headDim, s.causal, s.kvCache?.pastKey, s.kvCache?.presentValue])).toEqual([[2, 8, false, 'pk', 'presv']]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });

  it('cross-attention on [B, H, L, D] keys and values', async () => {
    const proto = single('MultiHeadAttention', 'com.microsoft', { num_heads: 2 }, [['q', F32, ['b', 's', 16]], ['k', F32, ['b', 2, 'l', 8]], ['v', F32, ['b', 2, 'l', 8]]], [['y', F32, ['b', 's', 16]]], ms);
    const { diff, sites } = await spliced(proto, feedsFor(proto, { b: 2, s: 3, l: 6 }));
    expect(sites.map((s) => [s.heads, s.headDim, s.kind])).toEqual([[2, 8, 'cross']]);
    expect(diff).toBeLessThanOrEqual(1e-4);
  });
});

describe('com.microsoft.GroupQueryAttention', () => {
  const gqa = (attrs: Record<string, number>, packed: boolean, rotary: boolean): ModelProto => {
    const g = new G();
    const D = rotary ? 16 : 8;
    const ins: string[] = [
      g.input('q', F32, ['b', 's', (packed ? 8 : 4) * D]),
      packed ? '' : g.input('k', F32, ['b', 's', 2 * D]),
      packed ? '' : g.input('v', F32, ['b', 's', 2 * D]),
      g.input('pk', F32, ['b', 2, 'p', D]),
      g.input('pv', F32, ['b', 2, 'p', D]),
      g.input('seqlens_k', I32, ['b']),
      g.input('total', I32, []),
    ];
    if (rotary) {
      const pos = g.op('Unsqueeze', [g.op('Cast', [g.op('Range', [g.i64([0], []), g.i64([32], []), g.i64([1], [])])], { to: F32 }), g.i64([1])]);
      const freq = g.op('MatMul', [pos, g.f32([1, 0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001], [1, 8])]);
      ins.push(g.op('Cos', [freq]), g.op('Sin', [freq]));
    }
    g.ops('GroupQueryAttention', ins, { num_heads: 4, kv_num_heads: 2, ...attrs, ...(rotary ? { do_rotary: 1 } : {}) }, { domain: 'com.microsoft', names: ['y', 'presk', 'presv'] });
    g.output('y', F32, ['b', 's', 4 * D]);
    g.output('presk', F32, ['b', 2, 't', D]);
    g.output('presv', F32, ['b', 2, 't', D]);
    return g.model(ms);
  };
  const feeds = (proto: ModelProto, b: number, s: number, p: number): Feeds => {
    const f = feedsFor(proto, { b, s, p });
    f.seqlens_k = i32(Array.from({ length: b }, () => p + s - 1), [b]);
    f.total = i32([p + s], []);
    return f;
  };
  for (const [name, attrs, packed, rotary] of [
    ['separate Q/K/V', {}, false, false],
    ['packed QKV', {}, true, false],
    ['a local window', { local_window_size: 2 }, false, false],
    ['rotary inside the op', {}, false, true],
  ] as const) {
    it(`${name}: decode (S=1) and prompt continuation (S=3)`, async () => {
      const proto = gqa(attrs, packed, rotary);
      for (const [b, s, p] of [[2, 1, 5], [1, 3, 4]] as const) {
        const { diff, sites } = await spliced(proto, feeds(proto, b, s, p));
        expect(sites.map((x) => [x.heads, x.kvHeads, x.headDim, x.causal, x.slidingWindow ?? undefined])).toEqual([[4, 2, rotary ? 16 : 8, true, 'local_window_size' in attrs ? 2 : undefined]]);
        expect(diff, `b${b} s${s} p${p}`).toBeLessThanOrEqual(1e-4);
      }
    });
  }
});

describe('attribute-given head counts are checked against shapes', () => {
  it('an ONNX Attention whose q_num_heads contradicts its 4-D Q', () => {
    const d = detectProto(single('Attention', '', { q_num_heads: 3 }, [['Q', F32, ['b', 4, 's', 8]], ['K', F32, ['b', 4, 's', 8]], ['V', F32, ['b', 4, 's', 8]]], [['Y', F32, ['b', 4, 's', 8]]], { '': 23 }));
    expect(d.unproven[0]?.reason).toMatch(/q_num_heads=3 but the Q shape has 4 heads/);
  });
});

void I64;
