import type { Argv } from 'yargs';
import { AttnpassError } from '../../src/errors.js';
import { terminalProgress } from '../progress.js';

export const verifyCommand = {
  command: 'verify <original> <rewritten>',
  describe: 'Run the original and the rewritten model on the same inputs and compare every output',
  builder: (y: Argv) =>
    y
      .positional('original', { type: 'string', demandOption: true, describe: 'the model before conversion' })
      .positional('rewritten', { type: 'string', demandOption: true, describe: 'the converted model' })
      .option('inputs', { type: 'string', describe: 'io.json with the inputs to use ({ cases: [{ name, inputs: [{ name, dtype, shape, data_b64 }] }] }); default: generated' })
      .option('seq-lens', { type: 'array', number: true, default: [7, 150], describe: 'sequence (or past) lengths of the generated cases; each runs at batch 1 and 3, with padding' })
      .option('seed', { type: 'number', describe: 'seed of the generated inputs (default: fresh; printed)' })
      .option('tolerance', { type: 'number', default: 1e-4, describe: 'largest relative output error that passes' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
      .example('$0 verify model.onnx model.ast.onnx', 'compare on generated inputs')
      .example('$0 verify model.onnx sparse.onnx --tolerance 0.05', 'a sparse setting: report the error'),
  handler: async (args: { original: string; rewritten: string; inputs?: string; seqLens: number[]; seed?: number; tolerance: number; json: boolean; quiet?: boolean }) => {
    // loaded here, not at start-up: it brings in ONNX Runtime, which no other command needs
    const { formatVerify, verifyModels } = await import('../../src/verify/index.js');
    const progress = terminalProgress(args.quiet === true);
    const report = await verifyModels({ original: args.original, rewritten: args.rewritten, inputsFile: args.inputs, seqLens: args.seqLens, seed: args.seed, tolerance: args.tolerance, progress });
    progress.done();
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatVerify(report)}\n`);
    if (!report.passed) throw new AttnpassError('verify-failed', `the rewritten model differs from the original by ${report.worstRelative.toExponential(3)} (relative), over the tolerance ${args.tolerance}.`);
  },
};
