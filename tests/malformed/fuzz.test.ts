/**
 * A short run of the mutation fuzzer (bench/fuzz/run.mjs, over dist/): a few hundred mutants of the
 * fixtures and the models built there go through load → lift → infer → validate → (detect) → lower → save.
 * Anything thrown that is not an AttnpassError, a hang, a crashed worker or a file written outside the
 * output folder fails the test. The long run is by hand: node bench/fuzz/run.mjs --mutants 10000.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../onnx/models.js';

const built = existsSync(join(REPO, 'dist/src/onnx/load.js'));

describe.skipIf(!built)('fuzz (short run)', () => {
  it('300 mutants: no bug, hang, crash or write outside the output folder, under 60 s', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(REPO, 'bench/fuzz/run.mjs'), '--mutants', '300', '--seed', '20240607', '--timeout', '10000', '--json'], { encoding: 'utf8', timeout: 120_000 });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.error).toBeUndefined();
    const summary = JSON.parse(r.stdout) as { mutants: number; bugs: number; hangs: number; crashes: number; escapes: number; problems: unknown[]; outcomes: Record<string, number> };
    expect(summary.mutants).toBe(300);
    expect(summary.problems, JSON.stringify(summary.problems, null, 2)).toEqual([]);
    expect([summary.bugs, summary.hangs, summary.crashes, summary.escapes]).toEqual([0, 0, 0, 0]);
    // the mutants must exercise both sides: files refused at load and models that get through to save
    expect(summary.outcomes.rejected ?? 0).toBeGreaterThan(30);
    expect((summary.outcomes['saved-valid'] ?? 0) + (summary.outcomes['saved-invalid'] ?? 0)).toBeGreaterThan(30);
    expect(r.status).toBe(0);
    expect(seconds).toBeLessThan(60);
  });
});
