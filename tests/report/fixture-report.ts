/** Converting a small fixture and writing its report, as the report tests need it. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { builtinPasses } from '../../passes/index.js';
import { convertModel, type ConvertReport } from '../../src/convert.js';
import { PassRegistry } from '../../src/pipeline/manager.js';
import { generateReport, type ReportResult } from '../../src/report/index.js';
import { FIXTURE_ROOT } from '../support/fixtures.js';

export const SEQ_LEN = 64;

export interface FixtureReport {
  model: string;
  converted: ConvertReport;
  report: ReportResult;
}

/**
 * `fixture` converted with `pass` (small blocks, so a 64-token window has several) and reported on
 * one or two random windows; `sweep` runs a one-point sweep.
 */
export async function fixtureReport(dir: string, fixture: string, pass: string, options: Record<string, unknown>, sweep = false): Promise<FixtureReport> {
  mkdirSync(dir, { recursive: true });
  const registry = new PassRegistry(builtinPasses);
  const model = join(FIXTURE_ROOT, fixture, 'model.onnx');
  const rewritten = join(dir, `${fixture}.${pass}.onnx`);
  const converted = await convertModel({ input: model, output: rewritten, pass, passOptions: { [pass]: options }, registry, seqLen: SEQ_LEN });
  const report = await generateReport({
    original: model,
    rewritten,
    output: join(dir, `${fixture}-${pass}.html`),
    seqLen: SEQ_LEN,
    windows: sweep ? 2 : 1,
    sweep,
    sweepPasses: ['ast', 'window'],
    densities: [0.5, 1],
    registry,
  });
  return { model, converted, report };
}
