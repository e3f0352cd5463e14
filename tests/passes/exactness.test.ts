// Every rewrite pass at its exact setting gives a model equal to the original: recorded inputs and
// generated ones (batch 1 and 3, short and longer than one block, padded, with a KV cache where the
// fixture has one), relative error ≤ 1e-4.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinPasses, REWRITE_PASSES } from '../../passes/index.js';
import { convertModel } from '../../src/convert.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { verifyModels } from '../../src/verify/index.js';
import { fixtures } from '../support/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-exact-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const registry = new PassRegistry(builtinPasses);
/** exact setting, with blocks small enough that the longer cases span several of them */
const exactOptions = (pass: string) => (pass === 'ast' || pass === 'att' ? { exact: true, 'block-size': 16 } : { exact: true });
const all = fixtures().filter((f) => f.meta.expected_sites.length > 0);

describe.each(all.map((f) => [f.name, f] as const))('%s', (_name, fixture) => {
  it.each(REWRITE_PASSES.map((p) => [p]))('%s --exact equals the original', async (pass) => {
    const out = join(work, `${fixture.name}.${pass}.onnx`);
    const report = await convertModel({ input: fixture.model, output: out, pass, passOptions: { [pass]: exactOptions(pass) }, registry });
    expect(report.sitesRewritten).toBe(fixture.meta.expected_sites.length);
    const recorded = await verifyModels({ original: fixture.model, rewritten: out, inputsFile: fixture.io, tolerance: 1e-4 });
    expect(recorded.worstRelative).toBeLessThanOrEqual(1e-4);
    expect(recorded.passed).toBe(true);
    const generated = await verifyModels({ original: fixture.model, rewritten: out, seqLens: [7, 150], tolerance: 1e-4 });
    expect(generated.cases.length).toBeGreaterThanOrEqual(4);
    expect(generated.worstRelative, `seed ${generated.seed}`).toBeLessThanOrEqual(1e-4);
  });
});

it('has fixtures to test', () => {
  expect(all.length).toBeGreaterThan(0);
});
