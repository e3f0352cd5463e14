#!/usr/bin/env node
// Seeded mutation fuzzer over the fixtures (and a few models built here): each mutant goes, in a worker
// thread with a per-mutant time limit, through what `attnpass inspect` computes and through the real
// `convertModel` with a rewrite pass (att, ast, span or window, sometimes exact or on some layers only)
// chosen per mutant, and the converted model is loaded and validated again (see worker.mjs).
// Anything thrown that is not an AttnpassError is a bug (also when the pass manager wraps it); so is a
// valid input that a rewrite turns invalid, inspect and convert finding different numbers of attention
// sites, a failed conversion that leaves a file behind, a converted model that does not load and validate
// again, a mutant that runs past the limit (hang), one that kills its worker (crash / out of memory), and
// any file written, renamed or removed outside the mutant's output folder.
//
//   npm run build
//   node bench/fuzz/run.mjs                       # 300 mutants, seed 1
//   node bench/fuzz/run.mjs --mutants 10000 --seed 7 --workers 4 --timeout 10000
//   node bench/fuzz/run.mjs --seed 7 --only-index 1234 --keep     # reproduce one mutant
//   node bench/fuzz/run.mjs --json                                 # one JSON summary on stdout
//   node bench/fuzz/run.mjs --mutants 10000 --seed 7 --save bench/results/fuzz-10000.json
//
// Bugs are copied to <out>/bugs/<index>.onnx with a line each in <out>/bugs.jsonl. Exit code 1 when any
// bug, hang, crash or escape was found.
import { appendFileSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
if (!existsSync(join(repo, 'dist/src/onnx/load.js'))) {
  process.stderr.write('bench/fuzz: run `npm run build` first (dist/ is missing).\n');
  process.exit(2);
}
const { conversionFor, mutate } = await import('./mutate.mjs');
const { seeds: findSeeds } = await import('./seeds.mjs');

const { values: args } = parseArgs({
  options: {
    mutants: { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: String(Math.max(1, Math.min(4, availableParallelism() - 1))) },
    timeout: { type: 'string', default: '10000' },
    out: { type: 'string' },
    'only-index': { type: 'string' },
    seeds: { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    save: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});
const total = Number(args.mutants);
const seed = Number(args.seed);
const timeoutMs = Number(args.timeout);
const workerCount = Math.max(1, Number(args.workers));
const outDir = resolve(args.out ?? join(tmpdir(), `attnpass-fuzz-${seed}-${process.pid}`));
const workDir = join(outDir, 'work');
mkdirSync(workDir, { recursive: true });
const log = (line) => {
  if (!args.quiet && !args.json) process.stderr.write(`${line}\n`);
};

const seedList = findSeeds(repo, outDir, args.seeds);
const seedBytes = seedList.map((s) => readFileSync(s.path));
const fingerprint = (dir) => {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    const st = lstatSync(p);
    h.update(`${f}:${st.size}:${st.mtimeMs}:${st.isSymbolicLink() ? readlinkSync(p) : ''}\n`);
  }
  return h.digest('hex');
};
const seedPrints = seedList.map((s) => fingerprint(s.dir));

const indices = args['only-index'] !== undefined ? [Number(args['only-index'])] : Array.from({ length: total }, (_, i) => i);

/** Writes mutant i into its own folder (with copies of the seed's data files) and returns the job. */
function prepare(index) {
  const s = index % seedList.length;
  const seedInfo = seedList[s];
  const { bytes, ops } = mutate(seedBytes[s], seed, index);
  const dir = join(workDir, `m${index}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'out'), { recursive: true });
  for (const side of seedInfo.sidecars) {
    const src = join(seedInfo.dir, side);
    if (lstatSync(src).isSymbolicLink()) symlinkSync(readlinkSync(src), join(dir, side));
    else cpSync(src, join(dir, side));
  }
  writeFileSync(join(dir, 'model.onnx'), bytes);
  const { pass, passOptions } = conversionFor(seed, index);
  return { index, seed: seedInfo.name, ops, pass, passOptions, dir, path: join(dir, 'model.onnx'), out: join(dir, 'out', 'model.onnx'), outDir: join(dir, 'out') };
}

const stats = { outcomes: new Map(), codes: new Map(), passes: new Map(), inspected: 0, withSites: 0, withRewrites: 0, sitesRewritten: 0, ops: new Map(), times: [] };
const bump = (map, key, by = 1) => map.set(key, (map.get(key) ?? 0) + by);
const bugs = [];

/** Per rewrite pass: mutants given to it (of them with --exact), converted, and attention sites it rewrote. */
function countPass(job, result) {
  const p = stats.passes.get(job.pass) ?? { mutants: 0, exact: 0, converted: 0, sitesRewritten: 0 };
  p.mutants++;
  if (job.passOptions.exact) p.exact++;
  if (result.outcome === 'converted') p.converted++;
  p.sitesRewritten += result.convert?.rewritten ?? 0;
  stats.passes.set(job.pass, p);
}
mkdirSync(join(outDir, 'bugs'), { recursive: true });

function record(job, result) {
  const outcome = result.outside?.length ? 'escape' : result.outcome;
  bump(stats.outcomes, outcome);
  if (result.code) bump(stats.codes, result.code);
  countPass(job, result);
  if (result.inspect && !result.inspect.rejected) stats.inspected++;
  if (result.convert?.sites > 0) stats.withSites++;
  if (result.convert?.rewritten > 0) stats.withRewrites++;
  stats.sitesRewritten += result.convert?.rewritten ?? 0;
  for (const op of job.ops) bump(stats.ops, op);
  if (typeof result.ms === 'number') stats.times.push(result.ms);
  if (['bug', 'hang', 'crash', 'escape'].includes(outcome)) {
    const copy = join(outDir, 'bugs', `${job.index}.onnx`);
    cpSync(job.path, copy);
    const entry = { index: job.index, seed: job.seed, ops: job.ops, pass: job.pass, passOptions: job.passOptions, outcome, stage: result.stage, name: result.name, message: result.message, stack: result.stack, outside: result.outside, file: copy };
    bugs.push(entry);
    appendFileSync(join(outDir, 'bugs.jsonl'), `${JSON.stringify(entry)}\n`);
    log(`  ${outcome} at mutant ${job.index} (${job.seed}, ${job.ops.join(' ')}, --pass ${job.pass}), stage ${result.stage}: ${result.message ?? ''}${result.outside?.length ? ` wrote ${result.outside.map((w) => `${w.op} ${w.path}`).join(', ')}` : ''}`);
  }
  if (!args.keep) rmSync(job.dir, { recursive: true, force: true });
}

const queue = [...indices];
let done = 0;
const started = performance.now();
let lastReport = started;

function startWorker() {
  return new Promise((resolveWorker) => {
    const worker = new Worker(join(here, 'worker.mjs'), {
      workerData: { dist: pathToFileURL(join(repo, 'dist')).href },
      resourceLimits: { maxOldGenerationSizeMb: 2048 },
      stdout: true,
      stderr: true,
    });
    worker.once('message', () => resolveWorker(worker));
    worker.once('error', (err) => {
      process.stderr.write(`bench/fuzz: worker failed to start: ${err.stack}\n`);
      process.exit(2);
    });
  });
}

async function lane() {
  let worker = await startWorker();
  while (queue.length) {
    const job = prepare(queue.shift());
    const result = await new Promise((resolveJob) => {
      const timer = setTimeout(() => {
        cleanup();
        worker.terminate();
        resolveJob({ outcome: 'hang', message: `no answer within ${timeoutMs} ms`, restart: true });
      }, timeoutMs);
      const onMessage = (m) => {
        if (m.index !== job.index) return;
        cleanup();
        resolveJob(m);
      };
      const onError = (err) => {
        cleanup();
        resolveJob({ outcome: 'crash', name: err?.code ?? err?.name, message: String(err?.message ?? err), stack: String(err?.stack ?? ''), restart: true });
      };
      const onExit = (code) => {
        cleanup();
        resolveJob({ outcome: 'crash', message: `worker exited with code ${code}`, restart: true });
      };
      const cleanup = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.postMessage(job);
    });
    record(job, result);
    done++;
    if (result.restart) {
      await worker.terminate().catch(() => {});
      worker = await startWorker();
    }
    const now = performance.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      log(`  ${done}/${indices.length} mutants, ${((now - started) / 1000).toFixed(0)} s, ${bugs.length} problem(s)`);
    }
  }
  await worker.terminate();
}

log(`attnpass fuzz: ${indices.length} mutant(s) of ${seedList.length} seed(s) (${seedList.map((s) => s.name).join(', ')}), seed ${seed}, ${workerCount} worker(s), ${timeoutMs} ms limit, work in ${outDir}`);
await Promise.all(Array.from({ length: Math.min(workerCount, indices.length) }, () => lane()));
const elapsed = (performance.now() - started) / 1000;

const seedsChanged = seedList.filter((s, i) => fingerprint(s.dir) !== seedPrints[i]).map((s) => s.name);
for (const name of seedsChanged) {
  bugs.push({ outcome: 'escape', seed: name, message: `the seed folder of ${name} changed during the run` });
  bump(stats.outcomes, 'escape');
}

const times = [...stats.times].sort((a, b) => a - b);
const q = (p) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))] : 0);
const count = (k) => stats.outcomes.get(k) ?? 0;
const summary = {
  command: `node bench/fuzz/run.mjs ${process.argv.slice(2).join(' ')}`,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memGiB: Number((totalmem() / 2 ** 30).toFixed(1)), node: process.version },
  mutants: indices.length,
  seed,
  seeds: seedList.map((s) => s.name),
  workers: workerCount,
  timeoutMs,
  seconds: Number(elapsed.toFixed(1)),
  outcomes: Object.fromEntries([...stats.outcomes].sort((a, b) => b[1] - a[1])),
  rejectedBy: Object.fromEntries([...stats.codes].sort((a, b) => b[1] - a[1])),
  passes: Object.fromEntries([...stats.passes].sort()),
  inspected: stats.inspected,
  convertedWithSites: stats.withSites,
  convertedWithRewrites: stats.withRewrites,
  sitesRewritten: stats.sitesRewritten,
  msPerMutant: { median: Number(q(0.5).toFixed(2)), p99: Number(q(0.99).toFixed(1)), max: Number(q(1).toFixed(1)) },
  bugs: count('bug'),
  hangs: count('hang'),
  crashes: count('crash'),
  escapes: count('escape'),
  problems: bugs,
  out: outDir,
};

if (args.save) writeFileSync(args.save, `${JSON.stringify({ ...summary, out: undefined }, null, 2)}\n`);
if (args.json) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const rows = [
    ['inspect succeeded', stats.inspected],
    ['convert rejected it with an AttnpassError', count('rejected')],
    ...[...stats.codes].sort((a, b) => b[1] - a[1]).map(([k, v]) => [`  ${k}`, v]),
    ['converted, output reloads and validates', count('converted')],
    ['  with attention sites found', stats.withSites],
    ['  with sites rewritten', stats.withRewrites],
    ...[...stats.passes].sort().map(([k, p]) => [`  --pass ${k}: converted / sites rewritten`, `${p.converted} / ${p.sitesRewritten}`]),
    ['bug (not an AttnpassError)', count('bug')],
    [`hang (> ${timeoutMs} ms)`, count('hang')],
    ['worker crash / out of memory', count('crash')],
    ['wrote outside the output folder', count('escape')],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = [
    `attnpass fuzz — ${indices.length} mutants, seed ${seed}, ${seedList.length} seeds, inspect + convert`,
    ...rows.map(([k, v]) => `${k.padEnd(w)}  ${String(v).padStart(7)}`),
    `${'time'.padEnd(w)}  ${elapsed.toFixed(1)} s total; per mutant median ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${q(1).toFixed(1)} ms`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (bugs.length) process.stdout.write(`problems: ${bugs.length}, mutants copied to ${join(outDir, 'bugs')} (details in bugs.jsonl)\n`);
}
if (!args.keep && bugs.length === 0) rmSync(outDir, { recursive: true, force: true });
process.exitCode = bugs.length ? 1 : 0;
