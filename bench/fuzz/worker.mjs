// Fuzz worker: runs one mutant at a time, in-process, through what the CLI does with it:
//   inspect  load → lift → infer → validate → summary + detect-attention report (text and JSON)
//   convert  the real convertModel (src/convert.ts): validate → detect-attention → rewrite pass → cleanup →
//            validate → lower → atomic save; then the output is loaded, lifted and validated again.
// and reports what happened. Every file the library opens for writing, renames, links or removes is
// recorded (fs is wrapped before the library is imported) so the parent can flag writes outside the
// mutant's output folder.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { isAbsolute, relative, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const writes = [];
const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_APPEND;
function isWriteFlag(flags) {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') return (flags & WRITE_FLAGS) !== 0;
  return /[wa+]/.test(String(flags));
}
/** The path a call names, or undefined where it names a file descriptor or handle instead. */
function pathArg(p) {
  if (typeof p === 'string' || Buffer.isBuffer(p)) return String(p);
  if (p instanceof URL) return p.pathname;
  return undefined;
}
function wrap(target, name, pathsOf) {
  const real = target[name];
  if (typeof real !== 'function') return;
  target[name] = function wrapped(...args) {
    for (const p of pathsOf(args).map(pathArg)) if (p !== undefined) writes.push({ op: name, path: resolve(p) });
    return real.apply(this, args);
  };
}
// the same calls in their sync, callback and promise forms
for (const [target, suffix] of [[fs, 'Sync'], [fs, ''], [fs.promises, '']]) {
  wrap(target, `open${suffix}`, (a) => (isWriteFlag(a[1]) ? [a[0]] : []));
  wrap(target, `writeFile${suffix}`, (a) => [a[0]]);
  wrap(target, `appendFile${suffix}`, (a) => [a[0]]);
  wrap(target, `rename${suffix}`, (a) => [a[0], a[1]]);
  wrap(target, `copyFile${suffix}`, (a) => [a[1]]);
  wrap(target, `cp${suffix}`, (a) => [a[1]]);
  wrap(target, `rm${suffix}`, (a) => [a[0]]);
  wrap(target, `rmdir${suffix}`, (a) => [a[0]]);
  wrap(target, `unlink${suffix}`, (a) => [a[0]]);
  wrap(target, `mkdir${suffix}`, (a) => [a[0]]);
  wrap(target, `symlink${suffix}`, (a) => [a[1]]);
  wrap(target, `link${suffix}`, (a) => [a[1]]);
  wrap(target, `truncate${suffix}`, (a) => [a[0]]);
  wrap(target, `chmod${suffix}`, (a) => [a[0]]);
  wrap(target, `utimes${suffix}`, (a) => [a[0]]);
}
wrap(fs, 'createWriteStream', (a) => [a[0]]);
syncBuiltinESMExports();

const dist = workerData.dist;
const { loadModel } = await import(`${dist}/src/onnx/load.js`);
const { Model } = await import(`${dist}/src/ir/model.js`);
const { inferModel } = await import(`${dist}/src/ir/infer.js`);
const { assertValid } = await import(`${dist}/src/validate/index.js`);
const { AttnpassError } = await import(`${dist}/src/errors.js`);
const { summarizeModel, formatSummary } = await import(`${dist}/src/inspect.js`);
const { describeAttention, formatAttention } = await import(`${dist}/src/attention-report.js`);
const { convertModel } = await import(`${dist}/src/convert.js`);
const { PassRegistry } = await import(`${dist}/src/pipeline/manager.js`);
const { builtinPasses } = await import(`${dist}/passes/index.js`);
const { isAttnpassOp } = await import(`${dist}/kernels/registry.js`);

const registry = new PassRegistry(builtinPasses);

/** Loads and lifts `path`, runs `use(model)`, and always closes the external data files. */
function withModel(path, use) {
  const loaded = loadModel(path);
  try {
    return use(Model.lift(loaded));
  } finally {
    loaded.external.close();
  }
}

/** What `attnpass inspect [--json]` computes. */
function inspect(path) {
  return withModel(path, (model) => {
    inferModel(model);
    assertValid(model, { context: path });
    const summary = summarizeModel(model);
    const attention = describeAttention(model);
    formatSummary(summary);
    formatAttention(attention);
    JSON.stringify({ ...summary, ...attention });
    return { sites: attention.attentionSites.length, unproven: attention.unprovenSites.length };
  });
}

/** The converted model must load, lift and validate again, its attnpass operators included. */
function reload(path) {
  withModel(path, (model) => assertValid(model, { context: `reloaded ${path}`, customOps: isAttnpassOp }));
}

/**
 * An AttnpassError is a clean rejection, except where it stands for a bug: the pass manager wraps any
 * exception a pass throws as 'pass-failed', and a valid input that a rewrite turns invalid is the rewrite's
 * fault even though convert refuses to write it.
 */
function classify(err, stage) {
  const text = (e) => String(e?.message ?? e);
  const stack = (e) => String(e?.stack ?? '').split('\n').slice(0, 8).join('\n');
  if (!(err instanceof AttnpassError)) return { outcome: 'bug', stage, name: err?.name, message: text(err).slice(0, 500), stack: stack(err) };
  if (err.code === 'pass-failed' && err.cause !== undefined && !(err.cause instanceof AttnpassError)) {
    return { outcome: 'bug', stage, name: `pass threw ${err.cause?.name}`, message: text(err).slice(0, 500), stack: stack(err.cause) };
  }
  if (err.code === 'invalid-model' && err.message.startsWith('after conversion of')) {
    return { outcome: 'bug', stage, name: 'invalid-after-passes', message: err.message.slice(0, 800), stack: '' };
  }
  return { outcome: 'rejected', code: err.code, stage, message: err.message.slice(0, 300) };
}

async function convert(job) {
  const report = await convertModel({ input: job.path, output: job.out, pass: job.pass, passOptions: { [job.pass]: job.passOptions }, registry });
  return { sites: report.sitesFound, rewritten: report.sitesRewritten };
}

async function runJob(job) {
  const result = {};
  try {
    result.inspect = inspect(job.path);
  } catch (err) {
    const c = classify(err, 'inspect');
    if (c.outcome === 'bug') return c;
    result.inspect = { rejected: c.code };
  }
  try {
    result.convert = await convert(job);
  } catch (err) {
    const c = classify(err, 'convert');
    if (c.outcome === 'bug') return c;
    const left = fs.readdirSync(job.outDir);
    if (left.length) return { outcome: 'bug', stage: 'convert', name: 'partial-output', message: `convert failed (${c.message.slice(0, 200)}) but left ${left.join(', ')} in the output folder` };
    return { ...result, ...c };
  }
  if (result.inspect.sites !== undefined && result.inspect.sites !== result.convert.sites) {
    return { outcome: 'bug', stage: 'convert', name: 'inspect-convert-disagree', message: `inspect found ${result.inspect.sites} attention site(s), convert ${result.convert.sites}` };
  }
  try {
    reload(job.out);
  } catch (err) {
    const c = classify(err, 'reload');
    return c.outcome === 'bug' ? c : { outcome: 'bug', stage: 'reload', name: 'unusable-output', message: `the converted model does not load and validate again: ${c.message}` };
  }
  return { ...result, outcome: 'converted' };
}

function inside(dir, path) {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

parentPort.on('message', async (job) => {
  writes.length = 0;
  const t0 = performance.now();
  const result = await runJob(job);
  const outside = writes.filter((w) => !inside(job.outDir, w.path));
  parentPort.postMessage({ index: job.index, ms: performance.now() - t0, ...result, outside });
});
parentPort.postMessage({ ready: true });
