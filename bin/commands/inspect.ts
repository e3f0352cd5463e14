import type { Argv } from 'yargs';
import { Model } from '../../src/ir/model.js';
import { loadModelAsync } from '../../src/onnx/load.js';
import { formatSummary, summarizeModel } from '../../src/inspect.js';
import { assertValid } from '../../src/validate/index.js';
import { describeAttention, formatAttention } from '../../src/attention-report.js';

export const inspectCommand = {
  command: 'inspect <model>',
  describe: 'Show a model: IR version, opsets, inputs and outputs with symbolic shapes, op histogram, weights, external data, and every attention site found',
  builder: (y: Argv) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'path to an .onnx file' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object instead of text' })
      .example('$0 inspect model.onnx', 'summary and attention-layer table')
      .example('$0 inspect model.onnx --json | jq .attentionSites', 'machine-readable sites'),
  handler: async (args: { model: string; json: boolean }) => {
    // large embedded weights stay in the file: inspecting needs their sizes, not their bytes
    const loaded = await loadModelAsync(args.model, { deferPayloads: true });
    try {
      const model = Model.lift(loaded);
      // a broken model gets its problems (each naming graph, node, value and the fix) and exit code 1; validating infers its types
      assertValid(model, { context: args.model });
      const summary = summarizeModel(model);
      const attention = describeAttention(model);
      if (args.json) process.stdout.write(`${JSON.stringify({ ...summary, ...attention }, null, 2)}\n`);
      else process.stdout.write(`${formatSummary(summary)}\n${formatAttention(attention)}\n`);
    } finally {
      loaded.external.close();
    }
  },
};
