// Fuzz worker: runs one mutant at a time through load → lift → infer → validate → (detect) → lower → save,
// in-process, and reports what happened. Every file the library opens for writing, renames, links or
// removes is recorded (fs is wrapped before the library runs) so the parent can flag writes outside the
// mutant's output folder.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const writes = [];
const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_APPEND;
function isWriteFlag(flags) {
  if (flags === undefined || flags === null) return false;
  if (typeof flags === 'number') return (flags & WRITE_FLAGS) !== 0;
  return /[wa+]/.test(String(flags));
}
function wrap(name, pathsOf) {
  const real = fs[name];
  fs[name] = function wrapped(...args) {
    for (const p of pathsOf(args)) if (p !== undefined) writes.push({ op: name, path: resolve(String(p)) });
    return real.apply(this, args);
  };
}
wrap('openSync', (a) => (isWriteFlag(a[1]) ? [a[0]] : []));
wrap('writeFileSync', (a) => [typeof a[0] === 'number' ? undefined : a[0]]);
wrap('appendFileSync', (a) => [typeof a[0] === 'number' ? undefined : a[0]]);
wrap('renameSync', (a) => [a[0], a[1]]);
wrap('copyFileSync', (a) => [a[1]]);
wrap('rmSync', (a) => [a[0]]);
wrap('unlinkSync', (a) => [a[0]]);
wrap('mkdirSync', (a) => [a[0]]);
wrap('symlinkSync', (a) => [a[1]]);
wrap('truncateSync', (a) => [a[0]]);
wrap('createWriteStream', (a) => [a[0]]);
syncBuiltinESMExports();

const dist = workerData.dist;
const { loadModel } = await import(`${dist}/src/onnx/load.js`);
const { saveModel } = await import(`${dist}/src/onnx/save.js`);
const { Model } = await import(`${dist}/src/ir/model.js`);
const { inferModel } = await import(`${dist}/src/ir/infer.js`);
const { validateModel } = await import(`${dist}/src/validate/index.js`);
const { AttnpassError } = await import(`${dist}/src/errors.js`);
let detect;
if (existsSync(`${new URL(dist).pathname}/src/attention/detect.js`)) {
  try {
    detect = (await import(`${dist}/src/attention/detect.js`)).detectAttention;
  } catch {
    detect = undefined;
  }
}

function inside(dir, path) {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

parentPort.on('message', (job) => {
  writes.length = 0;
  const t0 = performance.now();
  let stage = 'load';
  let result;
  let loaded;
  try {
    loaded = loadModel(job.path);
    stage = 'lift';
    const model = Model.lift(loaded);
    stage = 'infer';
    inferModel(model);
    stage = 'validate';
    const problems = validateModel(model);
    if (problems.length === 0 && detect) {
      stage = 'detect';
      detect(model);
    }
    stage = 'lower';
    const lowered = model.lower();
    stage = 'save';
    saveModel(lowered, job.out, { external: loaded.external });
    stage = 'reload';
    loadModel(job.out);
    result = { outcome: problems.length ? 'saved-invalid' : 'saved-valid', problems: problems.length, rules: [...new Set(problems.map((p) => p.rule))] };
  } catch (err) {
    if (err instanceof AttnpassError && stage === 'reload') {
      result = { outcome: 'bug', stage, name: 'unreadable-output', message: `the saved model does not load again: ${err.message.slice(0, 300)}`, stack: '' };
    } else if (err instanceof AttnpassError) {
      result = { outcome: 'rejected', code: err.code, stage, message: err.message.slice(0, 300) };
    } else {
      result = { outcome: 'bug', stage, name: err?.name, message: String(err?.message ?? err).slice(0, 500), stack: String(err?.stack ?? '').split('\n').slice(0, 8).join('\n') };
    }
  } finally {
    try {
      loaded?.external.close();
    } catch {
      // closing twice is fine
    }
  }
  const outside = writes.filter((w) => !inside(job.outDir, w.path));
  parentPort.postMessage({ index: job.index, ms: performance.now() - t0, ...result, outside, detect: Boolean(detect) });
});
parentPort.postMessage({ ready: true, detect: Boolean(detect) });
