/**
 * Every real export in fixtures/models: one site per attention layer, each agreeing field by field with
 * meta.json's expected_sites, and nothing left unproven. Also checks what the sites promise to the
 * rewrite passes: removable nodes, a canonical layout for Q/K/V, and the KV cache of decode graphs.
 */
import { describe, expect, it } from 'vitest';
import { openModel } from '../../src/index.js';
import { inferModel } from '../../src/ir/infer.js';
import { detectAttention } from '../../src/attention/detect.js';
import { detectAttentionPass } from '../../passes/detect-attention/index.js';
import { runPasses } from '../../src/pipeline/manager.js';
import { fixtureNames, loadMeta, modelPath } from './support.js';

const names = fixtureNames();

const FUSED_RULES: Record<string, RegExp> = {
  softmax: /^softmax-chain/,
  Attention: /^onnx-attention/,
  'com.microsoft.Attention': /^com\.microsoft\.Attention/,
  'com.microsoft.MultiHeadAttention': /^com\.microsoft\.MultiHeadAttention/,
  'com.microsoft.GroupQueryAttention': /^com\.microsoft\.GroupQueryAttention/,
};

describe.skipIf(names.length === 0)('attention sites of every fixture match meta.json', () => {
  it.each(names)('%s', (name) => {
    const meta = loadMeta(name);
    const model = openModel(modelPath(name));
    inferModel(model);
    const { sites, unproven } = detectAttention(model);
    expect(unproven, unproven.map((u) => u.reason).join('\n')).toEqual([]);
    expect(sites.length).toBe(meta.expected_sites.length);
    sites.forEach((site, i) => {
      const want = meta.expected_sites[i]!;
      const at = `${name} layer ${i}`;
      // meta's `layer` counts within a stack (T5: encoder, then decoder); a site's layer is its order in the graph
      expect(site.layer, at).toBe(i);
      expect(site.kind, `${at} kind`).toBe(want.kind);
      expect(site.causal, `${at} causal`).toBe(want.causal);
      expect(site.heads, `${at} heads`).toBe(want.heads);
      expect(site.kvHeads, `${at} kvHeads`).toBe(want.kvHeads);
      expect(site.headDim, `${at} headDim`).toBe(want.headDim);
      expect(Math.abs(site.scale - want.scale), `${at} scale ${site.scale} vs ${want.scale}`).toBeLessThanOrEqual(1e-6 * Math.abs(want.scale));
      expect(site.slidingWindow ?? null, `${at} slidingWindow`).toBe(want.slidingWindow ?? null);
      expect(site.rule, `${at} rule`).toMatch(FUSED_RULES[want.op ?? ''] ?? /./);
      // what the rewrite passes rely on
      expect(site.nodes.length, `${at} nodes`).toBeGreaterThan(0);
      expect(site.nodes.includes(site.anchor), `${at}: the anchor is among the replaced nodes`).toBe(true);
      const doomed = new Set(site.nodes);
      const rerouted = new Set([site.output, site.kvCache?.presentKey, site.kvCache?.presentValue]);
      for (const n of site.nodes) {
        for (const o of n.outputs) {
          if (!o || rerouted.has(o)) continue;
          expect(o.isGraphOutput, `${at}: ${o} of a replaced node is a graph output`).toBe(false);
          for (const u of o.uses()) expect(doomed.has(u.node), `${at}: ${o} is used by ${u.node.describe()} outside the site`).toBe(true);
        }
      }
      expect(site.id).toBe(`layer${i}.${site.kind}`);
    });
    const layers = sites.map((s) => model.graph.nodes.indexOf(s.anchor));
    expect([...layers].sort((a, b) => a - b)).toEqual(layers);
  });

  it.each(names.filter((n) => n.includes('decode')))('%s keeps its KV cache on every site', (name) => {
    const model = openModel(modelPath(name));
    inferModel(model);
    const { sites } = detectAttention(model);
    for (const s of sites) {
      expect(s.kvCache?.pastKey?.isGraphInput, `${s.id} past key`).toBe(true);
      expect(s.kvCache?.pastValue?.isGraphInput, `${s.id} past value`).toBe(true);
      expect(s.kvCache?.presentKey?.isGraphOutput, `${s.id} present key`).toBe(true);
      expect(s.kvCache?.presentValue?.isGraphOutput, `${s.id} present value`).toBe(true);
    }
  });
});

describe.skipIf(names.length === 0)('the detect-attention pass', () => {
  it('reports sites and counts and changes nothing', async () => {
    const name = names.find((n) => n === 'llama-gqa-decode-legacy') ?? names[0]!;
    const model = openModel(modelPath(name));
    const before = model.graph.nodes.length;
    const lines: string[] = [];
    const [run] = await runPasses(model, [detectAttentionPass], { report: (l) => lines.push(l) });
    expect(run!.result.modified).toBe(false);
    const data = run!.result.data as { sites: unknown[]; unproven: unknown[] };
    expect(data.sites.length).toBe(loadMeta(name).expected_sites.length);
    expect(data.unproven).toEqual([]);
    expect(run!.result.counts?.sites).toBe(data.sites.length);
    expect(model.graph.nodes.length).toBe(before);
    expect(lines.length).toBe(data.sites.length);
  });
});
