/**
 * The splicing contract end to end: on every fixture, every site's materializeInputs() + replaceOutput()
 * with a plain reference attention built from standard ONNX ops gives a model that onnxruntime-node runs
 * with the outputs recorded in io.json (within 1e-4), and the replaced nodes are gone.
 *
 * Two references: (1) the returned mask plus a Trilu causal triangle when the site is causal — what a
 * kernel with `causal` and a mask computes; compared on the rows of real query tokens, because a padding
 * query whose keys are all masked has an exporter-specific garbage row (the fixture script reports its
 * own torch diffs the same way); (2) the returned mask alone (the triangle only when no mask is returned):
 * the materialized mask must reproduce every row exactly.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { openModel } from '../../src/index.js';
import { inferModel } from '../../src/ir/infer.js';
import { detectAttention } from '../../src/attention/detect.js';
import { assertValid } from '../../src/validate/index.js';
import { fixtureNames, loadCases, maxDiff, maxDiffValid, modelPath, session, spliceReference, toOrt, validQueryRows } from './support.js';

const names = fixtureNames();

async function check(name: string, triangle: boolean): Promise<void> {
  const model = openModel(modelPath(name));
  inferModel(model);
  const { sites, unproven } = detectAttention(model);
  expect(unproven).toEqual([]);
  const anchors = sites.map((s) => s.anchor);
  const replaced = sites.flatMap((s) => s.nodes);
  for (const site of sites) spliceReference(site, { triangle: triangle || !site.maskIncludesCausal });
  for (const a of anchors) expect(model.graph.nodes.includes(a), `${a.describe()} is still in the graph`).toBe(false);
  for (const n of replaced) expect(model.graph.nodes.includes(n), `${n.describe()} is still in the graph`).toBe(false);
  assertValid(model, { context: `${name} after splicing` });
  const sess = await session(model.lower());
  const cases = loadCases(name);
  expect(cases.length).toBeGreaterThan(0);
  for (const c of cases) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of c.inputs) feeds[t.name] = toOrt(t);
    const out = await sess.run(feeds);
    const rows = triangle ? validQueryRows(c) : undefined;
    for (const t of c.outputs) {
      const got = out[t.name];
      expect(got, `${c.name}: output ${t.name}`).toBeDefined();
      expect(got!.dims, `${c.name}: ${t.name} shape`).toEqual(t.shape);
      const d = triangle ? maxDiffValid(got!, toOrt(t), rows) : maxDiff(got!, toOrt(t));
      expect(d, `${c.name}: ${t.name} differs by ${d}`).toBeLessThanOrEqual(1e-4);
    }
  }
}

describe.skipIf(names.length === 0)('splicing a reference attention (mask + causal triangle) into every fixture', () => {
  it.each(names)('%s', (name) => check(name, true));
});

describe.skipIf(names.length === 0)('splicing a reference attention (materialized mask alone) into every fixture', () => {
  it.each(names)('%s', (name) => check(name, false));
});
