import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Argv, Options } from 'yargs';
import { convertModel, type ConvertReport } from '../../src/convert.js';
import { fail } from '../../src/errors.js';
import type { PassRegistry } from '../../src/pipeline/manager.js';
import { formatBytes } from '../../src/inspect.js';
import { terminalProgress } from '../progress.js';

const DEFAULT_MODEL = 'fixtures/models/llama-gqa-dynamo/model.onnx';

/**
 * Every option any pass declares, once (the chosen pass reads its own; defaults come from the pass).
 * `hidden` keeps them out of the help text, which yargs lays out after every command, shown or not.
 */
function passOptions(registry: PassRegistry, hidden: boolean): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const pass of registry.list()) {
    for (const [name, spec] of Object.entries(pass.options ?? {})) {
      const prior = out[name];
      const line = `${pass.name}: ${spec.describe}${spec.default !== undefined ? ` (default ${spec.default})` : ''}`;
      out[name] = { type: spec.type, describe: prior ? `${prior.describe}\n${line}` : line, group: 'Pass options:', hidden };
    }
  }
  return out;
}

/** `describeOptions`: whether the help will be shown (a run that does not ask for it skips laying out the pass options). */
export function convertCommand(registry: PassRegistry, { describeOptions = true } = {}) {
  const rewrites = registry.list().filter((p) => p.requires?.includes('detect-attention')).map((p) => p.name);
  return {
    command: 'convert [model]',
    describe: 'Rewrite every attention of a model into an attnpass operator and write the result',
    builder: (y: Argv) =>
      y
        .positional('model', { type: 'string', default: DEFAULT_MODEL, describe: 'input .onnx file (default: a small Llama fixture)' })
        .option('output', { alias: 'o', type: 'string', describe: 'output .onnx file (default: out/<name>.<pass>.onnx)' })
        .option('pass', { type: 'string', default: 'ast', choices: rewrites, describe: 'which operator to rewrite into: att (TiledAttention), ast (BlockSparseAttention), span (SpanAttention), window (fixed-window baseline), or a plugin pass' })
        .option('then', { type: 'array', string: true, default: [], describe: 'extra passes to run after the rewrite (e.g. a plugin pass)' })
        .option('plugin', { type: 'array', string: true, default: [], describe: 'ES module exporting passes (see README "Writing a pass")' })
        .option('seq-len', { type: 'number', default: 4096, describe: 'sequence length for the cost estimate in the report' })
        .option('external-data', { type: 'string', choices: ['reference', 'copy'], describe: "external weights: keep referencing the input's data file (same folder only) or stream a copy beside the output (default: reference when possible)" })
        .option('report', { type: 'string', describe: 'also write the report as JSON to this file' })
        .options(passOptions(registry, !describeOptions))
        .example('$0 convert model.onnx -o model.ast.onnx --pass ast --density 0.2', 'block-sparse, 20% of key blocks')
        .example('$0 convert model.onnx -o exact.onnx --pass att --exact', 'exact setting: proves the rewrite')
        .example('$0 convert model.onnx -o s.onnx --pass span --local-window 128', 'span attention fed at run time'),
    handler: async (args: Record<string, unknown>) => {
      const pass = String(args.pass);
      const model = String(args.model);
      const output = args.output ? String(args.output) : defaultOutput(model, pass);
      // the default folder is ours to make; a folder the user named must already exist
      if (!args.output) mkdirSync(dirname(output), { recursive: true });
      // each pass that runs reads the options it declares
      const extra = ((args.then as string[]) ?? []).map(String);
      const passOptions: Record<string, Record<string, unknown>> = {};
      for (const p of registry.plan([pass, ...extra])) {
        passOptions[p.name] = {};
        for (const name of Object.keys(p.options ?? {})) if (args[name] !== undefined) passOptions[p.name]![name] = args[name];
      }
      const quiet = args.quiet === true;
      const progress = terminalProgress(quiet);
      const lines: string[] = [];
      let report: ConvertReport;
      try {
        report = await convertModel({
          input: model,
          output,
          pass,
          passOptions,
          registry,
          extraPasses: extra,
          seqLen: Number(args['seq-len']),
          externalData: args['external-data'] as 'reference' | 'copy' | undefined,
          report: (line) => lines.push(line),
          progress,
        });
      } finally {
        progress.done(); // clear the progress line, also before an error message
      }
      if (args.report) writeFileSync(String(args.report), `${JSON.stringify(report, null, 2)}\n`);
      if (!quiet) process.stdout.write(`${formatReport(report, lines)}\n`);
      if (report.sitesFound === 0) fail('pass-failed', `no attention was found in ${model}; the output was written unchanged apart from cleanup. Run 'attnpass inspect ${model}' to see why.`);
    },
  };
}

function defaultOutput(model: string, pass: string): string {
  const base = model.replace(/\\/g, '/').split('/').slice(-2).join('-').replace(/\.onnx$/, '');
  return `out/${base}.${pass}.onnx`;
}

function formatReport(r: ConvertReport, lines: string[]): string {
  const out = [`${r.input} → ${r.output} (${formatBytes(r.written.bytes)}${r.written.dataFile ? ` + ${formatBytes(r.written.dataBytes)} external data` : ''})`];
  out.push(`pass ${r.pass}: ${r.sitesRewritten} of ${r.sitesFound} attention sites rewritten${r.unproven.length ? `, ${r.unproven.length} left dense (unproven)` : ''}`);
  out.push(...lines.map((l) => `  ${l}`));
  const t = r.totals;
  const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : '-');
  out.push(`estimated at seq-len ${r.seqLen} (batch 1, prefill): attention FLOPs ${t.rewrittenFlops.toExponential(2)} vs dense ${t.denseFlops.toExponential(2)} (${pct(t.rewrittenFlops, t.denseFlops)}); K/V bytes read ${formatBytes(t.rewrittenKvBytes)} vs ${formatBytes(t.denseKvBytes)} (${pct(t.rewrittenKvBytes, t.denseKvBytes)})`);
  out.push(`passes: ${r.passes.map((p) => `${p.name} ${p.millis.toFixed(0)} ms`).join(', ')}`);
  return out.join('\n');
}
