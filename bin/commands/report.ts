import type { Argv } from 'yargs';
import type { PassRegistry } from '../../src/pipeline/manager.js';
import { DEFAULT_DENSITIES, DEFAULT_SWEEP_PASSES, generateReport, picturesFolder } from '../../src/report/index.js';
import { terminalProgress } from '../progress.js';

interface ReportArgs {
  original: string;
  rewritten: string;
  output: string;
  text?: string;
  seqLen?: number;
  windows: number;
  sweep: boolean;
  sweepPasses: string[];
  densities: number[];
  quiet?: boolean;
}

export function reportCommand(registry: PassRegistry) {
  return {
    command: 'report <original> <rewritten>',
    describe: 'Write an HTML page showing what the rewritten model\'s attention operators do, per layer and head, with cost and error',
    builder: (y: Argv) =>
      y
        .positional('original', { type: 'string', demandOption: true, describe: 'the model before conversion' })
        .positional('rewritten', { type: 'string', demandOption: true, describe: "the converted model (output of 'attnpass convert')" })
        .option('output', { alias: 'o', type: 'string', default: 'report.html', describe: 'the HTML file; its pictures also go to <name>-files/ beside it' })
        .option('text', { type: 'string', describe: 'evaluation text: raw bytes read as byte-level tokens (e.g. fixtures/trained/eval.bin); default: deterministic random tokens' })
        .option('seq-len', { type: 'number', describe: 'tokens per evaluation window, also the length costs are estimated at (default 512, less where learned positions end)' })
        .option('windows', { type: 'number', default: 4, describe: 'evaluation windows for the error measurements (layouts use the first)' })
        .option('sweep', { type: 'boolean', default: true, describe: 'measure error vs density for each operator (--no-sweep skips it)' })
        .option('sweep-passes', { type: 'array', string: true, default: DEFAULT_SWEEP_PASSES, describe: 'passes the sweep converts with' })
        .option('densities', { type: 'array', number: true, default: DEFAULT_DENSITIES, describe: 'densities (shares of dense attention FLOPs) the sweep measures' })
        .example('$0 report model.onnx model.ast.onnx -o report.html --text eval.bin', 'layouts on real text, with a sweep')
        .example('$0 report model.onnx model.att.onnx --no-sweep', 'only the layouts and costs (seconds)'),
    handler: async (args: ReportArgs) => {
      const progress = terminalProgress(args.quiet === true);
      let result;
      try {
        result = await generateReport({
          original: args.original,
          rewritten: args.rewritten,
          output: args.output,
          text: args.text,
          seqLen: args.seqLen,
          windows: args.windows,
          sweep: args.sweep,
          sweepPasses: args.sweepPasses.map(String),
          densities: args.densities.map(Number),
          registry,
          progress,
        });
      } finally {
        progress.done();
      }
      if (!args.quiet) {
        process.stdout.write(`${result.html}: ${result.data.layers.length} layer(s), ${result.pictures.length} picture(s) (also in ${picturesFolder(result.html)}/)\n`);
      }
    },
  };
}
