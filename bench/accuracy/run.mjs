// Converts every fixture with every rewrite pass and verifies it against the original: recorded inputs
// (fixtures' io.json) and generated ones (batch 1 and 3, lengths 7 and 150 capped at learned position
// tables, padded, with a KV cache where the fixture has one). Prints one line per (fixture, pass).
//   npm run build && node bench/accuracy/run.mjs [FIXTURES,...|""] [PASSES] [exact|sparse]
// exact: each pass's exact setting (block size 16 for ast/att); sparse: ast/att at block 16 with their
// default density/fractions, span with no spans fed and window 32, window 32.
import { openModel } from '../../dist/src/index.js';
import { runPasses, PassRegistry } from '../../dist/src/pipeline/manager.js';
import { builtinPasses } from '../../dist/passes/index.js';
import { assertValid } from '../../dist/src/validate/index.js';
import { isAttnpassOp } from '../../dist/kernels/registry.js';
import { saveModel } from '../../dist/src/onnx/save.js';
import { verifyModels } from '../../dist/src/verify/index.js';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const work = mkdtempSync(join(tmpdir(), 'attnpass-accuracy-'));
const reg = new PassRegistry(builtinPasses);
const names = process.argv[2] ? process.argv[2].split(',') : readdirSync('fixtures/models').filter((n) => !n.includes('.') && !n.startsWith('_'));
const passes = (process.argv[3] ?? 'ast,att,span,window').split(',');
const exact = process.argv[4] !== 'sparse';
for (const name of names) {
  const meta = JSON.parse(readFileSync(`fixtures/models/${name}/meta.json`, 'utf8'));
  for (const pass of passes) {
    const src = `fixtures/models/${name}/model.onnx`;
    const out = join(work, `${name}-${pass}.onnx`);
    try {
      const m = openModel(src);
      const opts = exact ? { exact: true, ...(pass === 'ast' || pass === 'att' ? { 'block-size': 16 } : {}) } : (pass === 'span' ? { 'default-spans': 'none', 'local-window': 32 } : pass === 'window' ? { 'local-window': 32 } : { 'block-size': 16 });
      const runs = await runPasses(m, reg.plan([pass, 'cleanup']), { options: { [pass]: opts } });
      const det = runs[0].result.data;
      assertValid(m, { customOps: isAttnpassOp });
      saveModel(m.lower(), out);
      const rec = await verifyModels({ original: src, rewritten: out, inputsFile: `fixtures/models/${name}/io.json`, tolerance: exact ? 1e-4 : Infinity });
      const gen = await verifyModels({ original: src, rewritten: out, seqLens: [7, 150], tolerance: exact ? 1e-4 : Infinity, seed: 1 });
      console.log(`${name.padEnd(26)} ${pass.padEnd(7)} sites ${det.sites.length}/${meta.expected_sites.length} unproven ${det.unproven.length} rewritten ${runs[1].result.counts.sitesRewritten} rec ${rec.worstRelative.toExponential(2)} gen ${gen.worstRelative.toExponential(2)} top1 ${gen.minTop1 === undefined ? '-' : (gen.minTop1 * 100).toFixed(1) + '%'} klmax ${gen.maxMeanKl === undefined ? '-' : gen.maxMeanKl.toExponential(1)} skipped ${gen.cases.filter((c) => c.skipped).length}`);
    } catch (e) {
      console.log(`${name.padEnd(26)} ${pass.padEnd(7)} ERROR ${String(e.message).split('\n').slice(0, 3).join(' | ').slice(0, 400)}`);
    }
  }
}
