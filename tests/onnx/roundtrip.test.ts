/**
 * Every fixture (fixtures/models/<name>/model.onnx, real exporter output) and every model built here
 * round-trips:
 *   load → save                   byte-identical to the file
 *   load → lift → lower → save    byte-identical too, and runs in onnxruntime-node with the recorded outputs
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/onnx/load.js';
import { encodeModel, saveModel } from '../../src/onnx/save.js';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { validateModel } from '../../src/validate/index.js';
import { attentionModel, controlFlowModel, encode, fixtures, floatFeed, maxAbsDiff, ort, rng, runModel, tensorFromIo, tmp, writeModel } from './models.js';

const real = fixtures();

interface Subject {
  name: string;
  path: string;
  feeds: () => Promise<Array<{ inputs: Record<string, import('onnxruntime-node').Tensor>; outputs?: Record<string, { dims: number[]; data: unknown; type: string }> }>>;
}

const synthDir = tmp('attnpass-roundtrip-');
const synthetic: Subject[] = [
  {
    name: 'attention block (built in tests)',
    path: writeModel(synthDir, 'attention.onnx', attentionModel({ mask: true })),
    feeds: async () => {
      const { Tensor } = await ort();
      const r = rng(9);
      return [
        { inputs: { x: new Tensor('float32', floatFeed(r, [1, 5, 16]), [1, 5, 16]), mask: new Tensor('float32', new Float32Array(5), [1, 1, 1, 5]) } },
        { inputs: { x: new Tensor('float32', floatFeed(r, [3, 2, 16]), [3, 2, 16]), mask: new Tensor('float32', Float32Array.from([0, -1e9, 0, 0, -1e9, 0]), [3, 1, 1, 2]) } },
      ];
    },
  },
  {
    name: 'If + model-local function (built in tests)',
    path: writeModel(synthDir, 'cf.onnx', controlFlowModel()),
    feeds: async () => {
      const { Tensor } = await ort();
      return [{ inputs: { x: new Tensor('float32', Float32Array.from([1, 2, 3, -4, 5, 6]), [2, 3]) } }, { inputs: { x: new Tensor('float32', Float32Array.from([-1, -2, -3, -4, 5, 0]), [2, 3]) } }];
    },
  },
];

const fromFixtures: Subject[] = real.map((f) => ({
  name: f.name,
  path: f.path,
  feeds: async () =>
    Promise.all(
      f.cases.map(async (c) => {
        const inputs: Record<string, import('onnxruntime-node').Tensor> = {};
        for (const t of c.inputs) inputs[t.name] = await tensorFromIo(t);
        const outputs: Record<string, { dims: number[]; data: unknown; type: string }> = {};
        for (const t of c.outputs) {
          const tensor = await tensorFromIo(t);
          outputs[t.name] = { dims: [...tensor.dims], data: tensor.data, type: tensor.type };
        }
        return { inputs, outputs };
      }),
    ),
}));

describe.each([...fromFixtures, ...synthetic])('$name', (subject) => {
  it('load → save is byte-identical', () => {
    const bytes = readFileSync(subject.path);
    const loaded = loadModel(subject.path);
    expect(Buffer.from(encodeModel(loaded.proto)).equals(bytes)).toBe(true);
  });

  it('load → lift → lower → save is byte-identical', () => {
    const bytes = readFileSync(subject.path);
    const out = join(tmp(), 'lowered.onnx');
    saveModel(Model.lift(loadModel(subject.path)).lower(), out);
    const lowered = readFileSync(out);
    if (!lowered.equals(bytes)) {
      let i = 0;
      while (i < bytes.length && bytes[i] === lowered[i]) i++;
      expect.fail(`lowered model differs from the file at byte ${i} (sizes ${lowered.length} vs ${bytes.length})`);
    }
  });

  it('is valid after inference (no false alarms on real exports)', () => {
    const m = Model.lift(loadModel(subject.path));
    inferModel(m);
    expect(validateModel(m)).toEqual([]);
  });

  it('load → lift → lower → save runs in onnxruntime with the recorded outputs', async () => {
    const out = join(tmp(), 'lowered.onnx');
    const m = Model.lift(loadModel(subject.path));
    inferModel(m); // inference must not change what is written
    saveModel(m.lower(), out);
    const cases = await subject.feeds();
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) {
      const original = await runModel(subject.path, c.inputs);
      const lowered = await runModel(out, c.inputs);
      for (const [name, value] of Object.entries(original)) {
        expect(maxAbsDiff(lowered[name]!, value), `output ${name}`).toBe(0);
        const recorded = c.outputs?.[name];
        if (recorded) {
          const scale = Math.max(1, ...Array.from(recorded.data as ArrayLike<number>, (x) => (typeof x === 'number' ? Math.abs(x) : 0)));
          expect(maxAbsDiff(lowered[name]!, recorded), `output ${name} vs io.json`).toBeLessThanOrEqual(1e-4 * scale);
        }
      }
    }
  });
});

it('fixtures present (informational: the real-exporter set is produced separately)', () => {
  // When fixtures/models is empty only the models built here are checked above.
  expect(real.length + synthetic.length).toBeGreaterThan(0);
  void encode;
});
