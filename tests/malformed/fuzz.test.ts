/**
 * A short run of the mutation fuzzer (bench/fuzz/run.mjs, over dist/): 300 mutants of the fixtures and
 * the models built there each go through what `inspect` computes and through the real `convertModel` with
 * a rewrite pass chosen per mutant (att, ast, span, window), and the converted model is loaded and
 * validated again. Anything thrown that is not an AttnpassError, a hang, a crashed worker, a converted
 * model that does not reload, or a file written outside the output folder fails the test.
 * The long run is by hand: node bench/fuzz/run.mjs --mutants 10000 (bench/results/fuzz-10000.json).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FIXTURES, REPO, tmp } from '../onnx/models.js';

const built = existsSync(join(REPO, 'dist/src/onnx/load.js'));

interface Summary {
  mutants: number;
  bugs: number;
  hangs: number;
  crashes: number;
  escapes: number;
  problems: unknown[];
  outcomes: Record<string, number>;
  passes: Record<string, { mutants: number; converted: number; sitesRewritten: number }>;
  inspected: number;
  convertedWithRewrites: number;
}

describe.skipIf(!built)('fuzz (short run)', () => {
  it('300 mutants: no bug, hang, crash or write outside the output folder, under 60 s', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(REPO, 'bench/fuzz/run.mjs'), '--mutants', '300', '--seed', '20240607', '--timeout', '10000', '--json'], { encoding: 'utf8', timeout: 120_000 });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.error).toBeUndefined();
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.mutants).toBe(300);
    expect(summary.problems, JSON.stringify(summary.problems, null, 2)).toEqual([]);
    expect([summary.bugs, summary.hangs, summary.crashes, summary.escapes]).toEqual([0, 0, 0, 0]);
    // the mutants must exercise both sides: files refused early and models that get through a whole conversion
    expect(summary.outcomes.rejected ?? 0).toBeGreaterThan(30);
    expect(summary.outcomes.converted ?? 0).toBeGreaterThan(30);
    expect(summary.inspected).toBeGreaterThan(30);
    // ... and the rewrite passes really run: sites rewritten by each of the four passes
    expect(summary.convertedWithRewrites).toBeGreaterThan(20);
    for (const pass of ['att', 'ast', 'span', 'window']) expect(summary.passes[pass]?.sitesRewritten ?? 0, pass).toBeGreaterThan(0);
    expect(r.status).toBe(0);
    expect(seconds).toBeLessThan(60);
  });
});

/** Runs one job in a fresh fuzz worker and returns its report. */
async function runWorkerJob(job: Record<string, unknown>): Promise<{ outcome: string; outside: Array<{ op: string; path: string }> }> {
  const worker = new Worker(join(REPO, 'bench/fuzz/worker.mjs'), { workerData: { dist: pathToFileURL(join(REPO, 'dist')).href } });
  try {
    return await new Promise((resolveJob, reject) => {
      worker.on('error', reject);
      worker.on('message', (m: { ready?: boolean }) => (m.ready ? worker.postMessage(job) : resolveJob(m as never)));
    });
  } finally {
    await worker.terminate();
  }
}

describe.skipIf(!built)('the fuzz worker', () => {
  it('sees the files a conversion writes: output outside the folder it was given is an escape', async () => {
    const dir = tmp('attnpass-fuzz-worker-');
    mkdirSync(join(dir, 'out'));
    mkdirSync(join(dir, 'allowed'));
    copyFileSync(join(FIXTURES, 'llama-gqa-dynamo/model.onnx'), join(dir, 'model.onnx'));
    const result = await runWorkerJob({ index: 0, path: join(dir, 'model.onnx'), pass: 'ast', passOptions: {}, out: join(dir, 'out', 'model.onnx'), outDir: join(dir, 'allowed') });
    expect(result.outcome).toBe('converted');
    expect(result.outside.map((w) => w.op)).toContain('renameSync');
    expect(result.outside.some((w) => w.path === join(dir, 'out', 'model.onnx'))).toBe(true);
  });
});
