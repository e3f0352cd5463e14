/**
 * A density sweep: for each pass and density, convert the model at the setting that spends that
 * fraction of dense attention cost (./density.ts) and compare it with the dense model on text windows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { DenseReference } from './compare.js';
import { settingForDensity } from './density.js';
import type { QualityMetrics } from './metrics.js';
import { modelFacts } from './model-facts.js';
import { relativeCost } from './model-cost.js';
import { convertAt } from './convert-at.js';

export interface SweepPoint {
  pass: string;
  density: number;
  /** the pass options the density maps to (plus `spans` for the span pass: the [start, end) rows fed) */
  options: Record<string, unknown>;
  relativeFlops: number;
  relativeKvBytes: number;
  metrics: QualityMetrics;
}

export interface SweepOptions {
  passes: string[];
  densities: number[];
  windows: Int32Array[];
  seqLen: number;
  /** where the converted models are written while measured (default: a fresh temporary folder, removed after) */
  workDir?: string;
  progress?: (line: string) => void;
}

export async function densitySweep(modelPath: string, options: SweepOptions): Promise<SweepPoint[]> {
  const { windows, seqLen } = options;
  if (windows.length === 0) fail('usage', 'a density sweep needs at least one text window.');
  const wrong = windows.find((w) => w.length !== seqLen);
  if (wrong) fail('usage', `every window must hold seqLen = ${seqLen} tokens (the densities are costed at that length); one holds ${wrong.length}.`);
  const { sites, causal } = modelFacts(modelPath);
  const settings = options.passes.flatMap((pass) => options.densities.map((density) => settingForDensity(pass, density, seqLen, causal)));
  const ownDir = options.workDir === undefined;
  const dir = options.workDir ?? mkdtempSync(join(tmpdir(), 'attnpass-sweep-'));
  const say = options.progress ?? (() => {});
  try {
    say(`dense model on ${windows.length} window(s) of ${seqLen} tokens`);
    const dense = await DenseReference.compute(modelPath, windows);
    const points: SweepPoint[] = [];
    for (const [i, setting] of settings.entries()) {
      say(`[${i + 1}/${settings.length}] ${setting.pass} at density ${setting.density}`);
      const output = join(dir, `${setting.pass}-${setting.density}.onnx`);
      await convertAt(modelPath, output, setting.pass, { ...setting.passOptions, ...setting.options }, seqLen);
      const metrics = await dense.compare(output, { feeds: setting.feeds });
      const cost = relativeCost(sites, () => setting.cost, seqLen);
      const spans = setting.feeds?.attnpass_spans;
      points.push({
        pass: setting.pass,
        density: setting.density,
        options: { ...setting.passOptions, ...setting.options, ...(spans ? { spans: pairs(spans.data as BigInt64Array) } : {}) },
        ...cost,
        metrics,
      });
      rmSync(output, { force: true });
    }
    return points;
  } finally {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}

function pairs(data: BigInt64Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 1 < data.length; i += 2) out.push([Number(data[i]), Number(data[i + 1])]);
  return out;
}
