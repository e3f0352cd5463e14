// How well each sparse operator approximates dense attention on real text, at the same cost.
//   npm run build && node bench/quality/run.mjs [--model M] [--text T | --random-tokens] [--seq-len 2048]
//        [--windows 6] [--calibration-windows 2] [--passes ast,att,window,span] [--densities 0.5,0.25,0.1]
//        [--calibrate ast,att,window] [--cost 0.25] [--metric kl]
// Default model: fixtures/trained/model.onnx with its eval.bin when present, else the llama-gqa fixture on
// random tokens. Density = the fraction of dense attention FLOPs the cost model says a setting spends
// (src/quality/density.ts says how each operator's options are chosen for it).
// Part 1: every operator at every density on the evaluation windows.
// Part 2: per operator, `calibrate` with its target searched so the model's attention cost is ~--cost,
// on calibration windows disjoint from the evaluation windows; then the calibrated model and the
// uniform setting at the same cost, both on the evaluation windows.
// Prints tables and writes bench/results/quality-<date>.json.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { calibrate, densitySweep, DenseReference, evalWindows, loadEvalText, modelFacts, randomText } from '../../dist/src/quality/index.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    text: { type: 'string' },
    'random-tokens': { type: 'boolean', default: false },
    'seq-len': { type: 'string', default: '2048' },
    windows: { type: 'string', default: '6' },
    'calibration-windows': { type: 'string', default: '2' },
    passes: { type: 'string', default: 'ast,att,window,span' },
    densities: { type: 'string', default: '0.5,0.25,0.1' },
    calibrate: { type: 'string', default: 'ast,att,window' },
    cost: { type: 'string', default: '0.25' },
    metric: { type: 'string', default: 'kl' },
  },
});

const trained = 'fixtures/trained/model.onnx';
const model = args.model ?? (existsSync(trained) ? trained : 'fixtures/models/llama-gqa-dynamo/model.onnx');
const seqLen = Number(args['seq-len']);
const evalCount = Number(args.windows);
const calibrationCount = Number(args['calibration-windows']);
const targetCost = Number(args.cost);
const metric = args.metric;
const facts = modelFacts(model);
const textPath = args.text ?? (model === trained ? 'fixtures/trained/eval.bin' : undefined);
const text = args['random-tokens'] || !textPath ? randomText(facts.vocab, seqLen * (evalCount + calibrationCount)) : loadEvalText(textPath, facts.vocab);
// evaluation and calibration windows interleave over the text and never overlap
const all = evalWindows(text, seqLen, evalCount + calibrationCount);
const evaluation = all.filter((_, i) => i % 2 === 0 || i >= 2 * calibrationCount).slice(0, evalCount);
const calibration = all.filter((w) => !evaluation.includes(w));

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(0);
const log = (line) => process.stderr.write(`[${seconds()} s] ${line}\n`);
const work = mkdtempSync(join(tmpdir(), 'attnpass-quality-'));
const errorOf = (m) => (metric === 'kl' ? m.meanKl : 1 - m.top1Agreement);

console.log(`model ${model}: ${facts.sites.length} attention layers, vocab ${facts.vocab}`);
console.log(`text ${text.source}: ${evaluation.length} evaluation + ${calibration.length} calibration window(s) of ${seqLen} tokens`);

// Part 1
const t1 = performance.now();
const sweep = await densitySweep(model, { passes: args.passes.split(','), densities: args.densities.split(',').map(Number), windows: evaluation, seqLen, progress: log });
const sweepSeconds = (performance.now() - t1) / 1000;
const row = (label, density, cost, m) =>
  `${label.padEnd(18)} ${density.padStart(7)} ${`${(cost * 100).toFixed(1)}%`.padStart(9)} ${`${(m.top1Agreement * 100).toFixed(2)}%`.padStart(8)} ${m.meanKl.toExponential(3).padStart(10)} ${m.perplexityDense.toFixed(4).padStart(9)} ${m.perplexityRewritten.toFixed(4).padStart(9)}`;
const header = `${'operator'.padEnd(18)} ${'density'.padStart(7)} ${'rel.FLOPs'.padStart(9)} ${'top-1'.padStart(8)} ${'mean KL'.padStart(10)} ${'ppl dense'.padStart(9)} ${'ppl rewr.'.padStart(9)}`;
console.log(`\nevery operator at the same densities (${evaluation.length} windows, ${evaluation.length * (seqLen - 1)} positions)\n${header}`);
for (const p of sweep) console.log(row(p.pass, p.density.toFixed(2), p.relativeFlops, p.metrics) + (Math.abs(p.relativeFlops - p.density) > 0.02 ? '  (cost floor of this operator)' : ''));

// Part 2
const calibrated = [];
const dense = await DenseReference.compute(model, evaluation);
for (const pass of args.calibrate.split(',').filter(Boolean)) {
  const t2 = performance.now();
  const aloneErrors = new Map();
  const uniformAtTarget = sweep.find((p) => p.pass === pass && Math.abs(p.density - targetCost) < 1e-9);
  // geometric search over the target error for a calibrated cost near targetCost
  let target = uniformAtTarget ? Math.max(errorOf(uniformAtTarget.metrics), 1e-6) : 0.05;
  let lo = 0;
  let hi = Infinity;
  let best;
  const tries = [];
  for (let i = 0; i < 5; i++) {
    const output = join(work, `${pass}-calibrated-${i}.onnx`);
    log(`${pass}: calibrating at target ${target.toExponential(2)}`);
    const result = await calibrate({ model, output, pass, targetError: target, metric, windows: calibration, seqLen, aloneErrors });
    tries.push({ target, relativeFlops: result.combined.relativeFlops, densities: result.layers.map((l) => l.density) });
    if (!best || Math.abs(result.combined.relativeFlops - targetCost) < Math.abs(best.result.combined.relativeFlops - targetCost)) best = { result, output };
    if (Math.abs(result.combined.relativeFlops - targetCost) <= 0.02) break;
    if (result.combined.relativeFlops > targetCost) lo = target;
    else hi = target;
    target = hi === Infinity ? target * 4 : lo === 0 ? target / 4 : Math.sqrt(lo * hi);
  }
  const { result, output } = best;
  const metrics = await dense.compare(output);
  const [uniform] = await densitySweep(model, { passes: [pass], densities: [result.combined.relativeFlops], windows: evaluation, seqLen });
  calibrated.push({ pass, target: result.targetError, tries, layers: result.layers, calibrationError: result.combined.error, relativeFlops: result.combined.relativeFlops, metrics, uniform, seconds: (performance.now() - t2) / 1000 });
}
if (calibrated.length) {
  console.log(`\ncalibrated per layer vs uniform at the same cost (calibrated on ${calibration.length} other window(s); ${metric} target searched for ~${(targetCost * 100).toFixed(0)}% cost)\n${header}  per-layer densities`);
  for (const c of calibrated) {
    console.log(`${row(`${c.pass} calibrated`, '-', c.relativeFlops, c.metrics)}  ${c.layers.map((l) => l.density).join(' / ')}`);
    console.log(row(`${c.pass} uniform`, c.uniform.density.toFixed(3), c.uniform.relativeFlops, c.uniform.metrics));
  }
}
const total = (performance.now() - started) / 1000;
console.log(`\nruntime ${total.toFixed(0)} s (sweep ${sweepSeconds.toFixed(0)} s${calibrated.map((c) => `, ${c.pass} calibration ${c.seconds.toFixed(0)} s`).join('')})`);

mkdirSync('bench/results', { recursive: true });
const file = `bench/results/quality-${new Date().toISOString().slice(0, 10)}.json`;
writeFileSync(file, `${JSON.stringify({ model, text: text.source, seqLen, metric, evaluationWindows: evaluation.length, calibrationWindows: calibration.length, targetCost, sweep, calibrated, seconds: { total, sweep: sweepSeconds } }, null, 2)}\n`);
console.log(`wrote ${file}`);
rmSync(work, { recursive: true, force: true });
