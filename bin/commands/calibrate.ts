import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Argv } from 'yargs';
import { fail } from '../../src/errors.js';
import { AtomicFile, writeAtomically } from '../../src/onnx/atomic.js';
import { calibrate, CALIBRATE_PASSES, type CalibrationResult } from '../../src/quality/calibrate.js';
import type { ErrorMetric } from '../../src/quality/metrics.js';
import { modelFacts } from '../../src/quality/model-facts.js';
import { evalWindows, loadEvalText, randomText, type EvalText } from '../../src/quality/text.js';
import { terminalProgress } from '../progress.js';

interface CalibrateArgs {
  model: string;
  output?: string;
  pass: string;
  targetError?: number;
  metric: ErrorMetric;
  text?: string;
  randomTokens: boolean;
  seqLen: number;
  windows: number;
  densities?: number[];
  report?: string;
  json: boolean;
  quiet?: boolean;
}

export const calibrateCommand = {
  command: 'calibrate <model>',
  describe: 'Pick, per attention layer, the lowest density whose error on sample text stays under a target, and write the model with those settings',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'input .onnx file: a causal language model (input_ids → logits)' })
      .option('output', { alias: 'o', type: 'string', describe: 'output .onnx file (default: out/<name>.<pass>.calibrated.onnx)' })
      .option('pass', { type: 'string', default: 'ast', choices: [...CALIBRATE_PASSES], describe: 'operator whose per-layer density is chosen (span: its local window; spans stay for the caller to feed, none by default)' })
      .option('target-error', { type: 'number', describe: 'largest error allowed, in the --metric unit (required)' })
      .option('metric', { type: 'string', default: 'kl', choices: ['kl', 'top1'], describe: 'error: mean KL(dense ‖ rewritten) in nats per token, or top-1 disagreement (1 − agreement)' })
      .option('text', { type: 'string', describe: 'evaluation text, raw bytes read one token per byte (default: eval.bin beside the model)' })
      .option('random-tokens', { type: 'boolean', default: false, describe: 'uniform random tokens instead of text (for models that learned nothing, e.g. the fixtures)' })
      .option('seq-len', { type: 'number', default: 2048, describe: 'tokens per window; densities are costed at this length' })
      .option('windows', { type: 'number', default: 4, describe: 'text windows per measurement (each costs one model run per candidate setting)' })
      .option('densities', { type: 'array', number: true, describe: 'densities to choose from (default 0.05 0.075 0.1 0.15 0.2 0.3 0.4 0.5 0.7 1)' })
      .option('report', { type: 'string', describe: 'also write the result as JSON to this file' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .example('$0 calibrate fixtures/trained/model.onnx -o cal.onnx --pass ast --target-error 0.05', 'per-layer densities with mean KL ≤ 0.05 nats on fixtures/trained/eval.bin')
      .example('$0 calibrate model.onnx --pass att --target-error 0.02 --metric top1 --text eval.bin', 'at most 2% of next-token argmaxes may change'),
  handler: async (args: CalibrateArgs) => {
    if (args.targetError === undefined) fail('usage', `give the error to stay under with --target-error, e.g. --target-error 0.05 (mean KL in nats; with --metric top1, a fraction of positions).`);
    const output = args.output ?? defaultOutput(args.model, args.pass);
    const facts = modelFacts(args.model);
    const text = evaluationText(args, facts.vocab);
    const windows = evalWindows(text, args.seqLen, args.windows);
    const progress = terminalProgress(args.quiet === true);
    let result: CalibrationResult;
    try {
      result = await calibrate({
        model: args.model,
        output,
        pass: args.pass,
        targetError: args.targetError,
        metric: args.metric,
        windows,
        seqLen: args.seqLen,
        densities: args.densities,
        progress: (line) => progress(0, 0, line),
      });
    } finally {
      progress.done();
    }
    if (args.report) writeJson(args.report, { text: text.source, ...result });
    process.stdout.write(args.json ? `${JSON.stringify({ text: text.source, ...result }, null, 2)}\n` : `${formatCalibration(result, text.source)}\n`);
  },
};

/** out/<folder>-<name>.<pass>.calibrated.onnx (out/ is created) */
function defaultOutput(model: string, pass: string): string {
  mkdirSync('out', { recursive: true });
  return `out/${model.replace(/\\/g, '/').split('/').slice(-2).join('-').replace(/\.onnx$/, '')}.${pass}.calibrated.onnx`;
}

function evaluationText(args: CalibrateArgs, vocab: number | undefined): EvalText {
  if (args.randomTokens) {
    if (vocab === undefined) fail('usage', `${args.model}: the logits' vocabulary size is not stated in the graph, so random tokens cannot be drawn; give --text FILE.`);
    return randomText(vocab, args.seqLen * args.windows);
  }
  const path = args.text ?? join(dirname(args.model), 'eval.bin');
  if (!args.text && !existsSync(path)) fail('usage', `no evaluation text: give --text FILE (raw bytes, one token per byte), put eval.bin beside the model, or use --random-tokens for a model that learned nothing.`);
  return loadEvalText(path, vocab ?? 256);
}

function writeJson(path: string, value: unknown): void {
  const file = new AtomicFile(path);
  writeAtomically([file], () => file.write(Buffer.from(`${JSON.stringify(value, null, 2)}\n`)));
}

export function formatCalibration(r: CalibrationResult, textSource: string): string {
  const unit = r.metric === 'kl' ? 'mean KL (nats)' : 'top-1 disagreement';
  const fmt = (e: number) => (r.metric === 'kl' ? e.toExponential(2) : `${(e * 100).toFixed(2)}%`);
  const lines = [
    `${r.model} → ${r.output}`,
    `pass ${r.pass}, per layer (the operators' settings are per node, one node per layer); ${unit} ≤ ${fmt(r.targetError)} on ${r.windows} window(s) of ${r.seqLen} tokens of ${textSource}`,
    '',
    `${'layer'.padStart(5)}  ${'density'.padStart(7)}  ${'rel. FLOPs'.padStart(10)}  ${'error alone'.padStart(11)}  options`,
  ];
  for (const l of r.layers) {
    const opts = Object.entries(l.options).map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : v}`).join(', ');
    lines.push(`${String(l.layer).padStart(5)}  ${l.density.toFixed(3).padStart(7)}  ${`${(l.relativeFlops * 100).toFixed(1)}%`.padStart(10)}  ${fmt(l.error).padStart(11)}  ${opts}`);
  }
  const c = r.combined;
  lines.push('');
  lines.push(`all layers together: error ${fmt(c.error)} (target ${fmt(r.targetError)}), top-1 agreement ${(c.metrics.top1Agreement * 100).toFixed(2)}%, perplexity ${c.metrics.perplexityRewritten.toFixed(4)} vs dense ${c.metrics.perplexityDense.toFixed(4)}`);
  lines.push(`attention FLOPs ${(c.relativeFlops * 100).toFixed(1)}% of dense, K/V bytes ${(c.relativeKvBytes * 100).toFixed(1)}% (cost model, seq-len ${r.seqLen}); ${r.evaluations} models measured${r.tightenSteps ? `, ${r.tightenSteps} tightening step(s) after the per-layer search` : ''}`);
  return lines.join('\n');
}
