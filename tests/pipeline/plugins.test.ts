// The README's plugin example loads, its passes have the built-in shape, and they run in a conversion.
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinPasses } from '../../passes/index.js';
import { loadPlugin } from '../../src/pipeline/plugins.js';
import { PassRegistry, runPasses } from '../../src/pipeline/manager.js';
import { AttnpassError } from '../../src/errors.js';
import { Graph, Model, onnx } from '../../src/index.js';

const example = join(import.meta.dirname, '..', '..', 'passes', 'examples', 'drop-identity.mjs');
const work = mkdtempSync(join(tmpdir(), 'attnpass-plugin-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function identityChain(): Model {
  const proto = onnx.ModelProto.create({
    irVersion: 8 as never,
    opsetImport: [{ domain: '', version: 17 as never }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 as never }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      node: [
        { opType: 'Identity', input: ['x'], output: ['a'], name: 'id1' },
        { opType: 'Relu', input: ['a'], output: ['b'], name: 'relu' },
        { opType: 'Identity', input: ['b'], output: ['y'], name: 'id2' },
      ],
    },
  });
  return Model.lift(proto);
}

describe('plugins', () => {
  it('loads the README example and runs its pass', async () => {
    const passes = await loadPlugin(example);
    expect(passes.map((p) => p.name)).toEqual(['drop-identity', 'attention-summary']);
    const registry = new PassRegistry(builtinPasses);
    passes.forEach((p) => registry.add(p, example));
    const model = identityChain();
    const runs = await runPasses(model, registry.plan(['drop-identity']), { validateEach: true });
    expect(runs[0]!.result.counts).toEqual({ removed: 1 });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Relu', 'Identity']);
    expect((model.graph as Graph).nodes[0]!.input(0).name).toBe('x');
  });

  it('refuses a module that exports no pass, naming the file', async () => {
    const bad = join(work, 'empty.mjs');
    writeFileSync(bad, 'export const nothing = 1;\n');
    await expect(loadPlugin(bad)).rejects.toThrow(/exports no passes/);
  });

  it('refuses a pass without run(), naming the pass', async () => {
    const bad = join(work, 'norun.mjs');
    writeFileSync(bad, "export default { name: 'x', passes: [{ name: 'broken', description: 'd' }] };\n");
    await expect(loadPlugin(bad)).rejects.toThrow(AttnpassError);
    await expect(loadPlugin(bad)).rejects.toThrow(/'broken' needs a run/);
  });

  it('refuses a plugin pass that clashes with a built-in name', () => {
    const registry = new PassRegistry(builtinPasses);
    expect(() => registry.add({ name: 'ast', description: 'mine', run: () => ({ modified: false }) }, 'plugin p.mjs')).toThrow(/already exists/);
  });
});
