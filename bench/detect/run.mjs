#!/usr/bin/env node
// Recognition time of detect-attention: how long proving every attention site takes, per model.
//
//   npm run build
//   node bench/detect/run.mjs              # generated 32-layer Llama-7B-shaped graphs + every fixture
//   node bench/detect/run.mjs --runs 9 --layers 32,64 --no-fixtures
//
// Generated graphs come from bench/models/generate.mjs (the legacy TorchScript exporter's eager shapes:
// run-time shape chains, rotary, GQA repeat via Expand, an additive causal+padding mask built from
// attention_mask); only the graph is built (no weight bytes), since recognition never reads weights.
// Each row is lifted and shape-inferred once (not timed); detection runs `--runs` times on it and the
// table prints the median (and min/max) of those runs.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => join(root, 'dist', p);
if (!existsSync(dist('src/attention/detect.js'))) {
  console.error('bench/detect: run `npm run build` first');
  process.exit(1);
}
const { Model } = await import(dist('src/ir/model.js'));
const { inferModel } = await import(dist('src/ir/infer.js'));
const { detectAttention } = await import(dist('src/attention/detect.js'));
const { openModel } = await import(dist('src/index.js'));
const { CONFIGS, buildLlama, buildGpt2 } = await import(join(root, 'bench/models/generate.mjs'));

function parseArgs(argv) {
  const out = { runs: 7, layers: '32', fixtures: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') out.runs = Number(argv[++i]);
    else if (a === '--layers') out.layers = argv[++i];
    else if (a === '--no-fixtures') out.fixtures = false;
  }
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function measure(label, model, runs) {
  inferModel(model);
  const times = [];
  let d;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    d = detectAttention(model);
    times.push(performance.now() - t);
  }
  const sites = d.sites;
  const gqa = sites.length ? `${sites[0].heads}/${sites[0].kvHeads}×${sites[0].headDim}` : '-';
  return {
    model: label,
    nodes: model.graph.nodes.length,
    sites: sites.length,
    unproven: d.unproven.length,
    heads: gqa,
    causal: sites.filter((s) => s.causal).length,
    median: median(times),
    min: Math.min(...times),
    max: Math.max(...times),
    perSite: sites.length ? median(times) / sites.length : NaN,
  };
}

function table(rows) {
  const cols = [
    ['model', (r) => r.model],
    ['nodes', (r) => String(r.nodes)],
    ['sites', (r) => String(r.sites)],
    ['unproven', (r) => String(r.unproven)],
    ['heads/kv×dim', (r) => r.heads],
    ['causal', (r) => String(r.causal)],
    ['median ms', (r) => r.median.toFixed(1)],
    ['min ms', (r) => r.min.toFixed(1)],
    ['max ms', (r) => r.max.toFixed(1)],
    ['ms/site', (r) => (Number.isNaN(r.perSite) ? '-' : r.perSite.toFixed(2))],
  ];
  const cells = [cols.map(([h]) => h), ...rows.map((r) => cols.map(([, f]) => f(r)))];
  const w = cols.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const line = (c) => `| ${c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join(' | ')} |`;
  return [line(cells[0]), `|${w.map((x, i) => (i === 0 ? `:${'-'.repeat(x + 1)}` : `${'-'.repeat(x + 1)}:`)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

const args = parseArgs(process.argv.slice(2));
const rows = [];
for (const layers of args.layers.split(',').map(Number)) {
  for (const [name, scale] of [['llama7b', 'div'], ['llama7b', 'mul'], ['gpt2', 'div']]) {
    const cfg = { ...CONFIGS[name], layers };
    const built = cfg.family === 'llama' ? buildLlama(cfg, { scale }) : buildGpt2(cfg, { scale });
    rows.push(measure(`${name}-shape ${layers}L (${scale})`, Model.lift(built.proto), args.runs));
  }
}
console.log(`detect-attention recognition time, median of ${args.runs} runs (node ${process.version}, ${process.arch})\n`);
console.log(table(rows));

if (args.fixtures) {
  const dir = join(root, 'fixtures/models');
  const frows = [];
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name, 'model.onnx');
      if (!existsSync(p)) continue;
      frows.push(measure(name, openModel(p), args.runs));
    }
  }
  if (frows.length) {
    console.log(`\nreal exports (fixtures/models), median of ${args.runs} runs\n`);
    console.log(table(frows));
  }
}
