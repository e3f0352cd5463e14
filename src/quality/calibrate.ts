/**
 * Calibration: per attention layer, the lowest density whose error on sample text stays under a target.
 *
 * 1. Each layer alone (every other layer dense): binary search over a grid of densities for the lowest
 *    one whose error is ≤ the target (error is taken to fall as density rises; density 1 is exact).
 * 2. All layers at their choices together. Errors of several layers add up, so while the combined
 *    error passes the target, the layer with the largest error alone moves one grid step up.
 * 3. The model is written with those per-layer settings (`layer-options`).
 *
 * Settings are per layer, not per head: the operators' attributes are per node, one node per layer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { ConvertReport } from '../convert.js';
import { DenseReference } from './compare.js';
import { convertAt } from './convert-at.js';
import { settingForDensity, type DensitySetting } from './density.js';
import { errorOf, type ErrorMetric, type QualityMetrics } from './metrics.js';
import { modelFacts } from './model-facts.js';
import { relativeCost, type RelativeCost } from './model-cost.js';

export const CALIBRATE_PASSES = ['ast', 'att', 'span', 'window'] as const;
export const DEFAULT_DENSITY_GRID = [0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1];

export interface CalibrateOptions {
  model: string;
  output: string;
  pass: string;
  targetError: number;
  metric: ErrorMetric;
  windows: Int32Array[];
  seqLen: number;
  /** densities to choose from, ascending; 1 (exact) is always added */
  densities?: number[];
  /**
   * errors with one layer rewritten alone, by `layer@density`, kept across calls that share the model,
   * pass, windows and metric (a search over targets measures each setting once)
   */
  aloneErrors?: Map<string, number>;
  progress?: (line: string) => void;
}

export interface LayerChoice {
  layer: number;
  density: number;
  /** the pass options written for this layer */
  options: Record<string, unknown>;
  /** error with only this layer rewritten, at its chosen density */
  error: number;
  relativeFlops: number;
}

export interface CalibrationResult {
  model: string;
  output: string;
  pass: string;
  metric: ErrorMetric;
  targetError: number;
  seqLen: number;
  windows: number;
  granularity: 'layer';
  layers: LayerChoice[];
  /** the written model, all layers at their choices */
  combined: { error: number; metrics: QualityMetrics } & RelativeCost;
  /** grid steps added after the per-layer search to bring the combined error under the target */
  tightenSteps: number;
  /** models converted and measured */
  evaluations: number;
  conversion: Pick<ConvertReport, 'sitesFound' | 'sitesRewritten' | 'totals'>;
}

export async function calibrate(options: CalibrateOptions): Promise<CalibrationResult> {
  const { pass, seqLen, metric, targetError } = options;
  if (!(CALIBRATE_PASSES as readonly string[]).includes(pass)) fail('usage', `calibrate sets per-layer options of ${CALIBRATE_PASSES.join(', ')}; got --pass ${pass}.`);
  if (!(targetError >= 0) || !Number.isFinite(targetError)) fail('usage', `--target-error must be a number ≥ 0; got ${targetError}.`);
  if (options.windows.some((w) => w.length !== seqLen)) fail('usage', `every text window must hold --seq-len ${seqLen} tokens.`);
  const grid = densityGrid(options.densities);
  const facts = modelFacts(options.model);
  const say = options.progress ?? (() => {});
  const setting = (density: number): DensitySetting => settingForDensity(pass, density, seqLen, facts.causal, 'none');
  const dir = mkdtempSync(join(tmpdir(), 'attnpass-calibrate-'));
  let evaluations = 0;
  try {
    say(`dense model on ${options.windows.length} window(s) of ${seqLen} tokens`);
    const dense = await DenseReference.compute(options.model, options.windows);
    /** converts with `levels` (grid index by layer; layers not listed stay dense) */
    const convert = (levels: ReadonlyMap<number, number>, output: string): Promise<ConvertReport> => {
      const layerOptions: Record<string, Record<string, unknown>> = {};
      for (const [layer, level] of levels) layerOptions[layer] = setting(grid[level]!).options;
      const passOptions = { ...setting(1).passOptions, layers: [...levels.keys()].join(','), 'layer-options': layerOptions };
      return convertAt(options.model, output, pass, passOptions, seqLen);
    };
    const measure = async (levels: ReadonlyMap<number, number>): Promise<QualityMetrics> => {
      const output = join(dir, `m${evaluations++}.onnx`);
      await convert(levels, output);
      const metrics = await dense.compare(output);
      rmSync(output, { force: true });
      return metrics;
    };

    const aloneError = options.aloneErrors ?? new Map<string, number>();
    const errorAlone = async (layer: number, level: number): Promise<number> => {
      const key = `${layer}@${grid[level]}`;
      if (!aloneError.has(key)) {
        say(`layer ${layer} alone at density ${grid[level]}`);
        aloneError.set(key, errorOf(await measure(new Map([[layer, level]])), metric));
      }
      return aloneError.get(key)!;
    };

    const levels = new Map<number, number>();
    for (const layer of facts.layers) {
      // lowest level whose error is within the target; the top level (exact) always is
      let lo = 0;
      let hi = grid.length - 1;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if ((await errorAlone(layer, mid)) <= targetError) hi = mid;
        else lo = mid + 1;
      }
      levels.set(layer, lo);
      say(`layer ${layer}: density ${grid[lo]}`);
    }

    let tightenSteps = 0;
    let combined = await measure(levels);
    while (errorOf(combined, metric) > targetError) {
      const movable = facts.layers.filter((l) => levels.get(l)! < grid.length - 1);
      if (movable.length === 0) {
        fail('usage', `with every layer at its exact setting the error is still ${errorOf(combined, metric).toExponential(3)}, over --target-error ${targetError}: that is numerical noise, not sparsity. Raise --target-error above it.`);
      }
      let worst = movable[0]!;
      for (const l of movable) if ((await errorAlone(l, levels.get(l)!)) > (await errorAlone(worst, levels.get(worst)!))) worst = l;
      levels.set(worst, levels.get(worst)! + 1);
      tightenSteps++;
      say(`combined error ${errorOf(combined, metric).toExponential(2)} > target: layer ${worst} up to density ${grid[levels.get(worst)!]}`);
      combined = await measure(levels);
    }

    say(`writing ${options.output}`);
    const written = await convert(levels, options.output);
    const settingOf = (layer: number) => setting(grid[levels.get(layer)!]!);
    const layers: LayerChoice[] = [];
    for (const layer of facts.layers) {
      layers.push({
        layer,
        density: grid[levels.get(layer)!]!,
        options: settingOf(layer).options,
        error: await errorAlone(layer, levels.get(layer)!),
        relativeFlops: relativeCost(facts.sites.filter((s) => s.layer === layer), () => settingOf(layer).cost, seqLen).relativeFlops,
      });
    }
    return {
      model: options.model,
      output: options.output,
      pass,
      metric,
      targetError,
      seqLen,
      windows: options.windows.length,
      granularity: 'layer',
      layers,
      combined: { error: errorOf(combined, metric), metrics: combined, ...relativeCost(facts.sites, (l) => settingOf(l).cost, seqLen) },
      tightenSteps,
      evaluations,
      conversion: { sitesFound: written.sitesFound, sitesRewritten: written.sitesRewritten, totals: written.totals },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function densityGrid(given: number[] | undefined): number[] {
  const grid = [...new Set([...(given ?? DEFAULT_DENSITY_GRID), 1])].sort((a, b) => a - b);
  const bad = grid.find((d) => !(d > 0 && d <= 1));
  if (bad !== undefined) fail('usage', `densities must lie in (0, 1]; got ${bad}.`);
  return grid;
}
