// At default (sparse) settings the rewritten models run in onnxruntime-node at any batch and length
// and produce finite outputs whose error verify reports.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinPasses, REWRITE_PASSES } from '../../passes/index.js';
import { convertModel } from '../../src/convert.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { verifyModels } from '../../src/verify/index.js';
import { fixtures } from '../support/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-sparse-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const registry = new PassRegistry(builtinPasses);
const decoders = fixtures().filter((f) => f.meta.expected_sites.length > 0);

describe.each(decoders.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
  it.each(REWRITE_PASSES.map((p) => [p]))('%s at default settings runs and stays finite', async (pass) => {
    const out = join(work, `${fixture.name}.${pass}.onnx`);
    // small blocks so that sequences of 150 tokens really are sparse
    const options = pass === 'span' ? { 'default-spans': 'none', 'local-window': 32 } : pass === 'window' ? { 'local-window': 32 } : { 'block-size': 16 };
    await convertModel({ input: fixture.model, output: out, pass, passOptions: { [pass]: options }, registry });
    const report = await verifyModels({ original: fixture.model, rewritten: out, seqLens: [7, 150], tolerance: Infinity });
    for (const c of report.cases) for (const o of c.outputs) expect(o.nan, `${c.name} ${o.name}`).toBe(false);
    expect(Number.isFinite(report.worstRelative)).toBe(true);
  });
});
