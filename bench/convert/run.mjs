#!/usr/bin/env node
// Wall time and peak RSS of `inspect` and `convert` on large generated models, against a plain copy.
//
//   npm run build && node bench/convert/run.mjs [--runs 5] [--dir /tmp/attnpass-bench] [--passes att,ast,span,window]
//                                               [--copy-layers 2] [--copy-model llama7b] [--copy-runs 3] [--skip-2gb] [--keep]
//
// Every measurement is its own child process (so peak RSS is per run: process.resourceUsage().maxRSS, read
// at exit by bench/convert/trace-io.mjs, which also counts the bytes each run reads from every file) and the
// table shows the median of --runs runs after one warm-up run. Models are generated into --dir (a temporary
// folder, never the repository) by bench/models/generate.mjs:
//   llama7b  Llama-7B-shaped (32 layers, hidden 4096, 32 q / 8 kv heads, eager attention as the TorchScript
//            exporter writes it), weights in a sparse external data file (23.7 GB apparent): converted with
//            --external-data reference (output beside the input); the data file must not be read at all.
//   gpt2     GPT-2-small-shaped (12 layers, hidden 768, 12 heads, vocab 50257), weights embedded (~650 MB).
//   llama7b, --copy-layers layers  the same shape cut to N layers (2 layers: ~2.5 GB of data), converted once
//            with --external-data copy into another folder: the data is streamed in bounded chunks.
// Floors: `cp` of the model file (of the data file too for the copy run) and copy + parse (copyFileSync then
// our loader's read + decode) in one node process. The floor's parse is `loadModel`, which reads the whole
// file; convert and inspect read the structure only and leave embedded weights in the file
// (src/onnx/skim.ts), so convert reads and writes each weight byte once, as the floor's copy does, and skips
// the floor's second full read. (cp of the sparse llama data file reads nothing: it finds the file is all
// hole and writes zeros; the conversion reads every byte.)
// A real >2 GB check closes the run: a model with 2.4 GB of embedded initializers built in memory (views of one
// 268 MB buffer) is saved — externalised automatically — then loaded and run by onnxruntime-node.
// Results: a table on stdout, JSON in bench/results/convert.json.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cliPath = join(root, 'bin', 'attnpass.js');
const tracer = join(root, 'bench', 'convert', 'trace-io.mjs');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const [k, v] = a.includes('=') ? a.slice(2).split('=') : [a.slice(2), argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[++i] : 'true'];
    out[k] = v;
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (args.help === 'true' || process.argv.includes('-h')) {
  // the usage is the comment at the top of this file
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(text.slice(1, text.findIndex((l) => l.startsWith('import'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const RUNS = Number(args.runs ?? 5);
const DIR = resolve(args.dir ?? join(tmpdir(), 'attnpass-bench'));
const PASSES = (args.passes ?? 'att,ast,span,window').split(',');
const COPY_LAYERS = Number(args['copy-layers'] ?? 2);
const COPY_MODEL = args['copy-model'] ?? 'llama7b';
const COPY_RUNS = Number(args['copy-runs'] ?? 3);
const SKIP_2GB = args['skip-2gb'] === 'true';
const KEEP = args.keep === 'true';
const ONLY = args.models ? new Set(args.models.split(',')) : undefined;

if (!existsSync(join(root, 'dist', 'bin', 'main.js'))) {
  console.error('run `npm run build` first');
  process.exit(2);
}
if (DIR.startsWith(root + '/')) {
  console.error(`--dir ${DIR} is inside the repository; generated models must go elsewhere`);
  process.exit(2);
}
mkdirSync(DIR, { recursive: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mib = (b) => b / 2 ** 20;
const fmtBytes = (b) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${mib(b).toFixed(1)} MiB`);

/** Flushes dirty pages left by the previous run so that they do not slow down the next one. */
function settle() {
  spawnSync('sync');
}

/** Runs a node child with the I/O tracer; returns wall ms (spawn to exit), peak RSS, per-file reads. */
function nodeRun(argv, { cwd = root, env = {} } = {}) {
  const traceOut = join(DIR, `.trace-${process.pid}.json`);
  rmSync(traceOut, { force: true });
  settle();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', tracer, ...argv], { cwd, env: { ...process.env, ...env, ATTNPASS_TRACE_OUT: traceOut }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = performance.now() - t0;
  let trace = { maxRssBytes: NaN, files: {}, io: {} };
  if (existsSync(traceOut)) trace = JSON.parse(readFileSync(traceOut, 'utf8'));
  rmSync(traceOut, { force: true });
  return { ok: r.status === 0, status: r.status, stdout: r.stdout, stderr: r.stderr, wallMs, maxRssBytes: trace.maxRssBytes, files: trace.files, io: trace.io };
}

/** A non-node command under /usr/bin/time (wall and peak RSS from the kernel). */
function timedRun(cmd, argv) {
  settle();
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...argv], { encoding: 'utf8' });
  const wallMs = performance.now() - t0;
  const rssKb = Number((r.stderr.trim().split('\n').pop() ?? '').trim());
  return { ok: r.status === 0, status: r.status, stdout: r.stdout, stderr: r.stderr, wallMs, maxRssBytes: rssKb * 1024, files: {} };
}

const results = [];

/** Runs `make()` once to warm up, then RUNS times; keeps the medians and the worst data-file reads. */
function measure(row, make, runs = RUNS, { cleanup, dataFile } = {}) {
  const samples = [];
  let failure;
  for (let i = 0; i <= runs; i++) {
    const r = make();
    cleanup?.();
    if (!r.ok) {
      failure = (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ');
      break;
    }
    if (i > 0 || runs === 1) samples.push(r);
    if (runs === 1 && i === 0) break;
  }
  const dataReads = dataFile ? samples.map((s) => s.files[dataFile] ?? { opens: 0, reads: 0, bytesRead: 0, maxRead: 0 }) : [];
  const rec = {
    ...row,
    runs: samples.length,
    wallMs: median(samples.map((s) => s.wallMs)),
    wallMsAll: samples.map((s) => Math.round(s.wallMs)),
    maxRssBytes: median(samples.map((s) => s.maxRssBytes)),
    dataFileBytesRead: dataFile ? Math.max(0, ...dataReads.map((d) => d.bytesRead)) : undefined,
    dataFileOpens: dataFile ? Math.max(0, ...dataReads.map((d) => d.opens)) : undefined,
    dataFileMaxRead: dataFile ? Math.max(0, ...dataReads.map((d) => d.maxRead)) : undefined,
    error: failure,
    extra: samples[0]?.extra,
  };
  results.push(rec);
  const status = failure ? `FAILED: ${failure}` : `${(rec.wallMs / 1000).toFixed(2)} s, ${fmtBytes(rec.maxRssBytes)}`;
  process.stderr.write(`  ${row.model} ${row.step}: ${status}\n`);
  return rec;
}

function generate(name, dir, extra = []) {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'models', 'generate.mjs'), name, '--out', dir, ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`generating ${name} failed: ${r.stderr}`);
  process.stderr.write(r.stdout);
}

const parseScript = `
import { closeSync, copyFileSync, fsyncSync, openSync } from 'node:fs';
import { loadModel } from ${JSON.stringify(join(root, 'dist/src/onnx/load.js'))};
const [src, dst] = process.argv.slice(-2);
copyFileSync(src, dst);
if (process.env.FLOOR_FSYNC) { const fd = openSync(dst, 'r+'); fsyncSync(fd); closeSync(fd); }
const m = loadModel(src);
if (!m.proto.graph) process.exit(1);
`;

function convertArgs(model, out, pass, extra = []) {
  return [cliPath, 'convert', model, '-o', out, '--pass', pass, '--quiet', ...extra];
}

function removeOutput(out) {
  for (const p of [out, `${out}.data`]) rmSync(p, { force: true });
}

function modelRows(name, modelPath, { dataFile, convertExtra = [] } = {}) {
  const size = statSync(modelPath).size;
  const dataBytes = dataFile ? statSync(dataFile).size : 0;
  const base = { model: name, modelBytes: size, dataBytes };
  const cpOut = join(dirname(modelPath), 'copy.onnx');
  measure({ ...base, step: 'cp (model file)' }, () => timedRun('cp', [modelPath, cpOut]), RUNS, { cleanup: () => rmSync(cpOut, { force: true }) });
  // convert writes durably (fsync before the rename, src/onnx/atomic.ts); cp does not: both floors are shown
  measure({ ...base, step: 'cp + fsync (model file)' }, () => timedRun('sh', ['-c', 'cp "$0" "$1" && sync "$1"', modelPath, cpOut]), RUNS, { cleanup: () => rmSync(cpOut, { force: true }) });
  measure({ ...base, step: 'copy + parse (floor)' }, () => nodeRun(['--input-type=module', '-e', parseScript, modelPath, cpOut]), RUNS, { cleanup: () => rmSync(cpOut, { force: true }), dataFile });
  measure({ ...base, step: 'copy + fsync + parse (floor)' }, () => nodeRun(['--input-type=module', '-e', parseScript, modelPath, cpOut], { env: { FLOOR_FSYNC: '1' } }), RUNS, { cleanup: () => rmSync(cpOut, { force: true }), dataFile });
  const inspect = measure({ ...base, step: 'inspect' }, () => {
    const r = nodeRun([cliPath, 'inspect', modelPath, '--json']);
    if (r.ok) {
      try {
        const j = JSON.parse(r.stdout);
        r.extra = { attentionSites: j.attentionSites?.length ?? 0, unprovenSites: j.unprovenSites?.length ?? 0 };
      } catch {
        r.extra = { attentionSites: 'unparsed' };
      }
    }
    return r;
  }, RUNS, { dataFile });
  for (const pass of PASSES) {
    const out = join(dirname(modelPath), `out.${pass}.onnx`);
    const report = join(DIR, `report.${name}.${pass}.json`);
    measure({ ...base, step: `convert --pass ${pass}${convertExtra.length ? ` ${convertExtra.join(' ')}` : ''}` }, () => {
      const r = nodeRun([...convertArgs(modelPath, out, pass, convertExtra), '--report', report]);
      // with no attention found, convert still does all the work and writes the output, then exits 1
      if (!r.ok && /no attention was found/.test(r.stderr) && existsSync(report)) r.ok = true;
      if (r.ok && existsSync(report)) {
        const j = JSON.parse(readFileSync(report, 'utf8'));
        r.extra = { sitesFound: j.sitesFound, sitesRewritten: j.sitesRewritten, outputBytes: j.written?.bytes, passes: j.passes?.map((p) => `${p.name} ${Math.round(p.millis)}ms`).join(', ') };
      }
      return r;
    }, RUNS, { cleanup: () => { removeOutput(out); rmSync(report, { force: true }); }, dataFile });
  }
  return inspect;
}

process.stderr.write(`attnpass convert benchmark: ${RUNS} runs (+1 warm-up) each, models in ${DIR}\n`);
// load averages (1, 5, 15 min) at the start and the end: on a shared 2-core machine a compile running beside the
// benchmark shows up here, and its numbers should then be taken again
const load = () => loadavg().map((l) => +l.toFixed(2));
const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, dir: DIR, loadAtStart: load() };

// 1. Llama-7B-shaped, external data, --external-data reference
if (!ONLY || ONLY.has('llama7b')) {
  const dir = join(DIR, 'llama7b');
  generate('llama7b', dir);
  modelRows('llama7b', join(dir, 'model.onnx'), { dataFile: join(dir, 'model.onnx_data'), convertExtra: ['--external-data', 'reference'] });
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
}

// 2. GPT-2-small-shaped, embedded weights
if (!ONLY || ONLY.has('gpt2')) {
  const dir = join(DIR, 'gpt2');
  generate('gpt2', dir);
  modelRows('gpt2', join(dir, 'model.onnx'));
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
}

// 3. one --external-data copy run: the data streamed into a new folder
if (!ONLY || ONLY.has('copy')) {
  const name = `${COPY_MODEL}${COPY_LAYERS ? `-${COPY_LAYERS}L` : ''}`;
  const dir = join(DIR, name);
  const outDir = join(DIR, `${name}-out`);
  mkdirSync(outDir, { recursive: true });
  generate(COPY_MODEL, dir, COPY_LAYERS ? ['--layers', String(COPY_LAYERS)] : []);
  const modelPath = join(dir, 'model.onnx');
  const dataFile = join(dir, 'model.onnx_data');
  const base = { model: name, modelBytes: statSync(modelPath).size, dataBytes: statSync(dataFile).size };
  const out = join(outDir, 'out.onnx');
  // the data file is sparse: --sparse=never makes cp read and write every byte, as the conversion does
  const resetOut = () => {
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
  };
  measure({ ...base, step: 'cp --sparse=never (model + data)' }, () => timedRun('cp', ['--sparse=never', modelPath, dataFile, outDir]), COPY_RUNS, { cleanup: resetOut });
  measure({ ...base, step: 'cp --sparse=never + fsync (model + data)' }, () => timedRun('sh', ['-c', 'cp --sparse=never "$0" "$1" "$2" && sync "$2"/*', modelPath, dataFile, outDir]), COPY_RUNS, { cleanup: resetOut });
  measure({ ...base, step: 'convert --pass ast --external-data copy' }, () => {
    const report = join(DIR, 'report.copy.json');
    const r = nodeRun([...convertArgs(modelPath, out, 'ast', ['--external-data', 'copy']), '--report', report]);
    if (!r.ok && /no attention was found/.test(r.stderr) && existsSync(report)) r.ok = true;
    if (r.ok && existsSync(report)) {
      const j = JSON.parse(readFileSync(report, 'utf8'));
      r.extra = { sitesFound: j.sitesFound, sitesRewritten: j.sitesRewritten, dataWritten: j.written?.dataBytes };
    }
    rmSync(report, { force: true });
    return r;
  }, COPY_RUNS, {
    cleanup: () => removeOutput(out),
    dataFile,
  });
  if (!KEEP) rmSync(dir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
}

// 4. a real > 2 GB output: externalised automatically, loads and runs in onnxruntime-node
if (!SKIP_2GB && (!ONLY || ONLY.has('2gb'))) {
  const dir = join(DIR, 'big2gb');
  mkdirSync(dir, { recursive: true });
  const saveScript = `
import { saveModel } from ${JSON.stringify(join(root, 'dist/src/onnx/save.js'))};
import { onnx, Long } from ${JSON.stringify(join(root, 'dist/src/onnx/codec.js'))};
const N = 8192, LAYERS = 9;
const eye = new Float32Array(N * N);
for (let i = 0; i < N; i++) eye[i * N + i] = 1;
const bytes = new Uint8Array(eye.buffer);
const dims = [Long.fromNumber(N), Long.fromNumber(N)];
const init = [], node = [];
let x = 'x';
for (let i = 0; i < LAYERS; i++) {
  init.push(onnx.TensorProto.create({ name: 'w' + i, dims, dataType: 1, rawData: bytes }));
  node.push(onnx.NodeProto.create({ opType: 'MatMul', input: [x, 'w' + i], output: [i === LAYERS - 1 ? 'y' : 'h' + i], name: 'mm' + i }));
  x = 'h' + i;
}
const vi = (name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: Long.fromNumber(1) }, { dimValue: Long.fromNumber(N) }] } } } });
const proto = onnx.ModelProto.create({ irVersion: Long.fromNumber(8), opsetImport: [{ domain: '', version: Long.fromNumber(17) }],
  graph: onnx.GraphProto.create({ name: 'big', node, initializer: init, input: [vi('x')], output: [vi('y')] }) });
const r = saveModel(proto, process.argv.at(-1));
console.log(JSON.stringify({ embeddedBytes: LAYERS * bytes.length, ...r }));
`;
  const ortScript = `
import * as ort from 'onnxruntime-node';
const s = await ort.InferenceSession.create(process.argv.at(-1));
const N = 8192;
const x = Float32Array.from({ length: N }, (_, i) => (i % 97) / 97);
const y = (await s.run({ x: new ort.Tensor('float32', x, [1, N]) })).y.data;
let maxErr = 0;
for (let i = 0; i < N; i++) maxErr = Math.max(maxErr, Math.abs(y[i] - x[i]));
console.log(JSON.stringify({ maxErr }));
if (maxErr !== 0) process.exit(1);
`;
  const out = join(dir, 'big.onnx');
  const saved = measure({ model: 'big2gb', modelBytes: 0, dataBytes: 0, step: 'save 2.4 GB embedded → auto external data' }, () => {
    const r = nodeRun(['--input-type=module', '-e', saveScript, out]);
    if (r.ok) r.extra = JSON.parse(r.stdout.trim().split('\n').pop());
    return r;
  }, 1);
  if (!saved.error) {
    measure({ model: 'big2gb', modelBytes: saved.extra.bytes, dataBytes: saved.extra.dataBytes, step: 'onnxruntime-node loads and runs it' }, () => {
      const r = nodeRun(['--input-type=module', '-e', ortScript, out], { cwd: root });
      if (r.ok) r.extra = JSON.parse(r.stdout.trim().split('\n').pop());
      return r;
    }, 1);
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---------- report ----------
const header = ['model', 'step', 'runs', 'wall s (median)', 'peak RSS', 'data file read', 'notes'];
const rows = results.map((r) => {
  const notes = [];
  if (r.error) notes.push(`FAILED: ${r.error}`);
  if (r.extra?.attentionSites !== undefined) notes.push(`${r.extra.attentionSites} sites${r.extra.unprovenSites ? `, ${r.extra.unprovenSites} unproven` : ''}`);
  if (r.extra?.sitesFound !== undefined) notes.push(`${r.extra.sitesRewritten}/${r.extra.sitesFound} sites rewritten`);
  if (r.extra?.dataWritten !== undefined) notes.push(`${fmtBytes(r.extra.dataWritten)} data written`);
  if (r.extra?.maxErr !== undefined) notes.push(`output max error ${r.extra.maxErr}`);
  if (r.extra?.dataFile) notes.push(`${fmtBytes(r.extra.bytes)} model + ${fmtBytes(r.extra.dataBytes)} data`);
  if (r.wallMsAll?.length > 1) notes.push(`runs ${r.wallMsAll.map((m) => (m / 1000).toFixed(2)).join('/')} s`);
  const dataRead = r.dataFileBytesRead === undefined ? '' : r.dataFileBytesRead === 0 ? 'none' : `${fmtBytes(r.dataFileBytesRead)} (max ${fmtBytes(r.dataFileMaxRead)}/read)`;
  return [r.model, r.step, String(r.runs), r.error ? '-' : (r.wallMs / 1000).toFixed(2), r.error ? '-' : fmtBytes(r.maxRssBytes), dataRead, notes.join('; ')];
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => (i === 2 || i === 3 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
machine.loadAtEnd = load();
console.log(`machine: ${machine.cpus} × ${machine.cpu}, ${machine.memGiB} GiB, node ${machine.node}; models in ${DIR}; load average ${machine.loadAtStart.join(' ')} at the start, ${machine.loadAtEnd.join(' ')} at the end`);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

// targets (issue 6)
const find = (model, step) => results.find((r) => r.model === model && r.step.startsWith(step) && !r.error);
const targets = [];
const llama = results.filter((r) => r.model === 'llama7b' && r.step.startsWith('convert'));
if (llama.length) {
  const worstWall = Math.max(...llama.map((r) => (r.error ? Infinity : r.wallMs)));
  const worstRss = Math.max(...llama.map((r) => (r.error ? Infinity : r.maxRssBytes)));
  targets.push({ target: 'llama7b converts with every pass in < 2 s', measured: `${(worstWall / 1000).toFixed(2)} s (slowest pass)`, met: worstWall < 2000 });
  targets.push({ target: 'llama7b converts with every pass in < 300 MB peak RSS', measured: `${(worstRss / 1e6).toFixed(0)} MB (largest)`, met: worstRss < 300e6 });
  const reads = Math.max(...llama.map((r) => r.dataFileBytesRead ?? 0));
  targets.push({ target: 'llama7b (reference): external data never read', measured: `${reads} bytes read`, met: reads === 0 });
}
const gpt = results.filter((r) => r.model === 'gpt2' && r.step.startsWith('convert'));
const floor = find('gpt2', 'copy + parse');
const floorFsync = find('gpt2', 'copy + fsync + parse');
if (gpt.length && floor) {
  const worstWall = Math.max(...gpt.map((r) => (r.error ? Infinity : r.wallMs)));
  const worstRss = Math.max(...gpt.map((r) => (r.error ? Infinity : r.maxRssBytes)));
  targets.push({ target: 'gpt2 (embedded) converts in ≤ 1.2× copy + parse', measured: `${(worstWall / floor.wallMs).toFixed(2)}× (${(worstWall / 1000).toFixed(2)} s vs ${(floor.wallMs / 1000).toFixed(2)} s)`, met: worstWall <= 1.2 * floor.wallMs });
  if (floorFsync) targets.push({ target: '  (same, against copy + fsync + parse: convert fsyncs its output)', measured: `${(worstWall / floorFsync.wallMs).toFixed(2)}× (${(floorFsync.wallMs / 1000).toFixed(2)} s)`, met: worstWall <= 1.2 * floorFsync.wallMs });
  targets.push({ target: 'gpt2 (embedded) peak RSS < 2× model size', measured: `${(worstRss / gpt[0].modelBytes).toFixed(2)}× (${fmtBytes(worstRss)} for ${fmtBytes(gpt[0].modelBytes)})`, met: worstRss < 2 * gpt[0].modelBytes });
}
if (targets.length) {
  console.log('\ntargets');
  for (const t of targets) console.log(`  ${t.met ? 'met    ' : 'NOT met'}  ${t.target}: ${t.measured}`);
}

mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const json = { date: new Date().toISOString(), command: `node bench/convert/run.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine, runs: RUNS, results, targets };
writeFileSync(join(root, 'bench', 'results', 'convert.json'), `${JSON.stringify(json, null, 2)}\n`);
console.log(`\nwrote bench/results/convert.json`);
