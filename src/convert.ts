/**
 * `convert`: load → lift → detect → rewrite → cleanup → validate → lower → write, with a report of what
 * changed and what it saves. The output is written atomically; nothing is written when any step fails.
 */
import type { AttentionSite } from './attention/site.js';
import { fail } from './errors.js';
import { Model } from './ir/model.js';
import { loadModelAsync, type DeferOptions } from './onnx/load.js';
import { saveModelAsync, type ExternalDataMode, type SaveResult } from './onnx/save.js';
import { runPasses, PassRegistry, type PassRun } from './pipeline/manager.js';
import type { Pass } from './pipeline/pass.js';
import { assertValid } from './validate/index.js';
import { siteCost, type CostSettings } from './report/cost.js';
import { isAttnpassOp } from '../kernels/registry.js';

export interface ConvertOptions {
  input: string;
  output: string;
  /** the rewrite pass (att, ast, span, window, or a plugin's) */
  pass: string;
  /** options by pass name */
  passOptions?: Record<string, Record<string, unknown>>;
  registry: PassRegistry;
  /** passes to run after the rewrite (before cleanup) */
  extraPasses?: string[];
  seqLen?: number;
  externalData?: ExternalDataMode;
  report?: (line: string) => void;
  progress?: (done: number, total: number, label?: string) => void;
  /** leave large embedded weights in the input file until they are written (default true; see load.ts) */
  deferPayloads?: boolean | DeferOptions;
}

export interface LayerReport {
  layer: number;
  site: string;
  kind: string;
  rule: string;
  rewritten: boolean;
  op: string | null;
  dense: { flops: number; kvBytes: number };
  rewrittenCost: { flops: number; kvBytes: number };
}

export interface ConvertReport {
  input: string;
  output: string;
  pass: string;
  seqLen: number;
  sitesFound: number;
  sitesRewritten: number;
  unproven: Array<{ anchor: string; reason: string }>;
  layers: LayerReport[];
  totals: { denseFlops: number; rewrittenFlops: number; denseKvBytes: number; rewrittenKvBytes: number };
  passes: Array<{ name: string; millis: number; counts: Record<string, number> }>;
  written: SaveResult;
}

export async function convertModel(options: ConvertOptions): Promise<ConvertReport> {
  const seqLen = options.seqLen ?? 4096;
  const progress = options.progress;
  progress?.(0, 0, `loading ${options.input}`);
  // large embedded weights stay in the input file (read only if a pass needs them) and are copied from file to file when written
  const loaded = await loadModelAsync(options.input, { deferPayloads: options.deferPayloads ?? true });
  try {
    progress?.(0, 0, 'checking the input');
    const model = Model.lift(loaded);
    assertValid(model, { context: `input ${options.input}`, customOps: isAttnpassOp });
    const plan: Pass[] = options.registry.plan([options.pass, ...(options.extraPasses ?? []), 'cleanup']);
    // validation inferred the input's types and runPasses leaves them current: neither needs to infer again
    const runs = await runPasses(model, plan, { options: options.passOptions, report: options.report, progress, inferred: true });
    progress?.(0, 0, 'checking the output');
    assertValid(model, { context: `after conversion of ${options.input}`, customOps: isAttnpassOp, infer: false });
    const report = buildReport(options, model, runs, seqLen);
    progress?.(0, 0, `writing ${options.output}`);
    // large payloads are streamed from their views (src/onnx/stream.ts); the async save lets Ctrl-C stop a long write cleanly
    const mib = (n: number): number => Math.ceil(n / 2 ** 20);
    const written = await saveModelAsync(model.lower(), options.output, {
      external: loaded.external,
      externalData: options.externalData,
      progress: progress && ((done, total, what) => progress(mib(done), mib(total), what === 'data' ? 'copying external data, MiB' : `writing ${options.output}, MiB`)),
    });
    return { ...report, written };
  } finally {
    loaded.external.close();
  }
}

function buildReport(options: ConvertOptions, model: Model, runs: PassRun[], seqLen: number): Omit<ConvertReport, 'written'> {
  const detection = runs.find((r) => r.name === 'detect-attention')?.result.data as { sites: AttentionSite[]; unproven: Array<{ anchor: string; reason: string }> } | undefined;
  if (!detection) fail('pass-failed', `pass '${options.pass}' does not run detect-attention, so there is nothing to report.`);
  const rewrittenIds = new Set(((runs.find((r) => r.name === options.pass)?.result.data as { rewritten?: string[] } | undefined)?.rewritten) ?? []);
  const emitted = new Map<string, CostSettings>();
  for (const n of model.graph.nodes) {
    const site = n.proto.metadataProps?.find((m) => m.key === 'attnpass.site')?.value;
    if (site && n.domain === 'ai.attnpass') {
      const attributes: Record<string, number> = {};
      for (const name of n.attributes.keys()) attributes[name] = n.attrFloat(name) ?? n.attrInt(name) ?? 0;
      emitted.set(site, { op: n.opType, attributes });
    }
  }
  const layers = detection.sites.map((s): LayerReport => {
    const settings = emitted.get(s.id);
    return {
      layer: s.layer,
      site: s.id,
      kind: s.kind,
      rule: s.rule,
      rewritten: rewrittenIds.has(s.id),
      op: settings?.op ?? null,
      dense: siteCost(s, seqLen),
      rewrittenCost: siteCost(s, seqLen, settings),
    };
  });
  const sum = (f: (l: LayerReport) => number) => layers.reduce((a, l) => a + f(l), 0);
  return {
    input: options.input,
    output: options.output,
    pass: options.pass,
    seqLen,
    sitesFound: detection.sites.length,
    sitesRewritten: layers.filter((l) => l.rewritten).length,
    unproven: detection.unproven,
    layers,
    totals: {
      denseFlops: sum((l) => l.dense.flops),
      rewrittenFlops: sum((l) => l.rewrittenCost.flops),
      denseKvBytes: sum((l) => l.dense.kvBytes),
      rewrittenKvBytes: sum((l) => l.rewrittenCost.kvBytes),
    },
    passes: runs.map((r) => ({ name: r.name, millis: r.millis, counts: r.result.counts ?? {} })),
  };
}
