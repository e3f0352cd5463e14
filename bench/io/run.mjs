#!/usr/bin/env node
// Load / lift / lower / save: wall time and memory for every fixture and for a large generated model.
//
//   npm run build
//   node bench/io/run.mjs                      # fixtures (7 runs each) + GPT-2-small-shaped model, 6 layers (3 runs)
//   node bench/io/run.mjs --runs 5 --big-runs 3 --layers 12 --dir /tmp/attnpass-io --keep
//   node bench/io/run.mjs --only gpt2-legacy,big --json
//
// Each measurement runs in a fresh child process (so peak memory belongs to that run alone): it loads the
// model (read + decode; raw_data stays views into the file's bytes), lifts it into the IR, lowers it back,
// and saves it atomically into a temporary folder. Stage times use performance.now(); memory is
// process.memoryUsage().rss after each stage and process.resourceUsage().maxRSS (the peak) at the end.
// The table shows medians over --runs runs (one warm-up run first, not counted). The large model is
// generated once by bench/models/generate.mjs (GPT-2-small shape, weights embedded as raw_data) into --dir,
// never into the repository. Floors for it: `cp` of the file, and a bare read of it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const dist = join(repo, 'dist');

const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    floor: { type: 'string' },
    runs: { type: 'string', default: '7' },
    'big-runs': { type: 'string', default: '3' },
    layers: { type: 'string', default: '6' },
    dir: { type: 'string' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'no-big': { type: 'boolean', default: false },
  },
});

// ---------------------------------------------------------------- child: one measured run
if (args.child) {
  const url = (p) => pathToFileURL(join(dist, p)).href;
  const { loadModel } = await import(url('src/onnx/load.js'));
  const { saveModel } = await import(url('src/onnx/save.js'));
  const { Model } = await import(url('src/ir/model.js'));
  const baseline = process.memoryUsage().rss;
  const out = mkdtempSync(join(tmpdir(), 'attnpass-io-out-'));
  const rss = {};
  const ms = {};
  let t = performance.now();
  const loaded = loadModel(args.child);
  ms.load = performance.now() - t;
  rss.load = process.memoryUsage().rss;
  t = performance.now();
  const model = Model.lift(loaded);
  ms.lift = performance.now() - t;
  rss.lift = process.memoryUsage().rss;
  t = performance.now();
  const lowered = model.lower();
  ms.lower = performance.now() - t;
  rss.lower = process.memoryUsage().rss;
  t = performance.now();
  const saved = saveModel(lowered, join(out, 'model.onnx'), { external: loaded.external });
  ms.save = performance.now() - t;
  rss.save = process.memoryUsage().rss;
  const maxRss = process.resourceUsage().maxRSS * 1024; // before the check below reads the output back
  const identical = Buffer.compare(readFileSync(join(out, 'model.onnx')), loaded.bytes) === 0;
  loaded.external.close();
  rmSync(out, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ ms, rss, baseline, maxRss, bytes: saved.bytes, identical }));
  process.exit(0);
}

// ---------------------------------------------------------------- child: floors (cp, bare read)
if (args.floor) {
  const dir = mkdtempSync(join(tmpdir(), 'attnpass-io-cp-'));
  let t = performance.now();
  copyFileSync(args.floor, join(dir, 'copy.onnx'));
  const cp = performance.now() - t;
  t = performance.now();
  const bytes = readFileSync(args.floor);
  const read = performance.now() - t;
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ cp, read, size: bytes.length, maxRss: process.resourceUsage().maxRSS * 1024 }));
  process.exit(0);
}

// ---------------------------------------------------------------- parent
if (!existsSync(join(dist, 'src/onnx/load.js'))) {
  process.stderr.write('bench/io: run `npm run build` first (dist/ is missing).\n');
  process.exit(2);
}
const only = args.only ? new Set(args.only.split(',')) : undefined;
const runs = Math.max(1, Number(args.runs));
const bigRuns = Math.max(1, Number(args['big-runs']));
const say = (line) => {
  if (!args.json) process.stderr.write(`${line}\n`);
};

function measure(file, n, mode = 'child') {
  const results = [];
  for (let i = 0; i <= n; i++) {
    const r = spawnSync(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), `--${mode}`, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`bench/io: measuring ${file} failed:\n${r.stderr}`);
    if (i > 0) results.push(JSON.parse(r.stdout)); // run 0 warms the page cache
  }
  return results;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function summarize(name, file, results) {
  const stage = (k) => median(results.map((r) => r.ms[k]));
  return {
    name,
    file,
    bytes: statSync(file).size,
    runs: results.length,
    ms: { load: stage('load'), lift: stage('lift'), lower: stage('lower'), save: stage('save'), total: median(results.map((r) => r.ms.load + r.ms.lift + r.ms.lower + r.ms.save)) },
    rss: {
      baseline: median(results.map((r) => r.baseline)),
      afterLoad: median(results.map((r) => r.rss.load)),
      afterLift: median(results.map((r) => r.rss.lift)),
      afterLower: median(results.map((r) => r.rss.lower)),
      afterSave: median(results.map((r) => r.rss.save)),
      peak: median(results.map((r) => r.maxRss)),
    },
    identical: results.every((r) => r.identical),
  };
}

const rows = [];
const fixtureRoot = join(repo, 'fixtures/models');
const fixtureNames = existsSync(fixtureRoot) ? readdirSync(fixtureRoot).filter((n) => existsSync(join(fixtureRoot, n, 'model.onnx'))).sort() : [];
for (const name of fixtureNames) {
  if (only && !only.has(name)) continue;
  const file = join(fixtureRoot, name, 'model.onnx');
  rows.push(summarize(name, file, measure(file, runs)));
  say(`  ${name}: ${rows.at(-1).ms.total.toFixed(1)} ms`);
}

let floor;
if (!args['no-big'] && (!only || only.has('big'))) {
  const dir = resolve(args.dir ?? join(tmpdir(), 'attnpass-io'));
  const bigDir = join(dir, `gpt2-${args.layers}l`);
  const bigFile = join(bigDir, 'model.onnx');
  if (!existsSync(bigFile)) {
    say(`generating a GPT-2-small-shaped model (${args.layers} layers, embedded weights) in ${bigDir} ...`);
    const { generate } = await import(pathToFileURL(join(repo, 'bench/models/generate.mjs')).href);
    mkdirSync(bigDir, { recursive: true });
    generate('gpt2', bigDir, { layers: Number(args.layers) });
  }
  const name = `gpt2-small-shaped, ${args.layers} layers (generated)`;
  rows.push(summarize(name, bigFile, measure(bigFile, bigRuns)));
  const f = measure(bigFile, bigRuns, 'floor');
  floor = { cp: median(f.map((r) => r.cp)), read: median(f.map((r) => r.read)), size: f[0].size };
  say(`  ${name}: ${rows.at(-1).ms.total.toFixed(0)} ms`);
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
}

const mib = (b) => (b / (1 << 20)).toFixed(b < 10 << 20 ? 2 : 0);
const fmtMs = (x) => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0));
if (args.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, rows, floor }, null, 2)}\n`);
} else {
  const header = ['model', 'MiB', 'load ms', 'lift ms', 'lower ms', 'save ms', 'total ms', 'peak RSS MiB', 'RSS after load', 'same bytes'];
  const table = rows.map((r) => [
    r.name,
    mib(r.bytes),
    fmtMs(r.ms.load),
    fmtMs(r.ms.lift),
    fmtMs(r.ms.lower),
    fmtMs(r.ms.save),
    fmtMs(r.ms.total),
    mib(r.rss.peak),
    mib(r.rss.afterLoad),
    r.identical ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const out = [`bench/io — node ${process.version}, medians of ${runs} runs (fixtures) / ${bigRuns} runs (generated), each in a fresh process after a warm-up`, line(header), line(widths.map((w) => '-'.repeat(w))), ...table.map(line)];
  const base = rows.length ? median(rows.map((r) => r.rss.baseline)) : 0;
  out.push(`node baseline RSS before loading: ${mib(base)} MiB. 'same bytes': the saved file equals the input byte for byte.`);
  if (floor) out.push(`floors for the generated model (${mib(floor.size)} MiB): cp ${fmtMs(floor.cp)} ms, bare read ${fmtMs(floor.read)} ms.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
