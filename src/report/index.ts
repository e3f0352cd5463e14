/**
 * `attnpass report`: what the rewritten model's operators do, as one self-contained HTML page with
 * its pictures also written as PNGs in a folder beside it. Per layer the operator's choices on an
 * evaluation window (from the original model's real Q and K), the estimated cost, the rewritten
 * model's error on the windows, and a density-vs-error sweep of every operator.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { builtinPasses } from '../../passes/index.js';
import type { AttentionSite } from '../attention/site.js';
import { fail } from '../errors.js';
import { AtomicFile, writeAtomically } from '../onnx/atomic.js';
import { PassRegistry } from '../pipeline/manager.js';
import { compareOnText, densitySweep, evalWindows, loadEvalText, type EvalText } from '../quality/index.js';
import { rng } from '../verify/inputs.js';
import type { BlockSparseAttributes } from '../../kernels/reference/block-sparse.js';
import type { SpanAttributes } from '../../kernels/reference/span.js';
import type { TiledAttributes } from '../../kernels/reference/tiled.js';
import { captureAttention, windowLimits } from './capture.js';
import { siteCost } from './cost.js';
import type { LayerSection, ReportData } from './data.js';
import { emittedOperators, type EmittedOperator } from './emitted.js';
import { renderReport } from './html.js';
import { blockSparseLayouts, spanLayout, tiledLayouts, type CapturedQK } from './layouts.js';
import { BLOCK_SPARSE_PALETTE, SPAN_PALETTE, TILED_PALETTE } from './palette.js';
import { blockSparsePictures, spanPicture, tiledPictures } from './pictures.js';

export interface ReportOptions {
  original: string;
  rewritten: string;
  /** the HTML file; the PNGs go to `<name>-files/` beside it */
  output: string;
  /** evaluation text (raw bytes, byte-level tokens); without it, deterministic random windows */
  text?: string;
  /** window length, also the length the costs are estimated at (default 512, or less where learned positions end) */
  seqLen?: number;
  /** evaluation windows (default 4) */
  windows?: number;
  sweep?: boolean;
  sweepPasses?: string[];
  densities?: number[];
  registry?: PassRegistry;
  progress?: (done: number, total: number, label?: string) => void;
}

export interface ReportResult {
  html: string;
  pictures: string[];
  data: ReportData;
}

export const DEFAULT_SWEEP_PASSES = ['ast', 'att', 'window', 'span'];
export const DEFAULT_DENSITIES = [0.125, 0.25, 0.5, 1];
const DEFAULT_SEQ_LEN = 512;
const DEFAULT_WINDOWS = 4;

/** The folder of pictures beside `report.html`: `report-files/`. */
export function picturesFolder(htmlPath: string): string {
  return join(dirname(htmlPath), `${basename(htmlPath, extname(htmlPath))}-files`);
}

export async function generateReport(options: ReportOptions): Promise<ReportResult> {
  const say = (label: string) => options.progress?.(0, 0, label);
  const limits = windowLimits(options.original);
  const seqLen = chooseSeqLen(options.seqLen, limits.maxPositions, options.original);
  const count = options.windows ?? DEFAULT_WINDOWS;
  const text = options.text ? loadEvalText(options.text, limits.vocab) : randomText(limits.vocab, seqLen * count);
  const windows = evalWindows(text, seqLen, count);

  say(`reading the operators of ${options.rewritten}`);
  const emitted = emittedOperators(options.rewritten);
  if (emitted.size === 0) fail('usage', `${options.rewritten} holds no ai.attnpass operator tagged with its attention site; give a model written by 'attnpass convert'.`);
  say(`running ${options.original} on the first window for each layer's Q and K`);
  const capture = await captureAttention(options.original, windows[0]!, options.registry ?? new PassRegistry(builtinPasses));
  const known = new Set(capture.sites.map((s) => s.id));
  const stray = [...emitted.keys()].filter((id) => !known.has(id));
  if (stray.length) {
    fail('usage', `${options.rewritten} has operators for attention site(s) ${stray.join(', ')}, which ${options.original} does not have (it has ${[...known].join(', ') || 'none'}). Give the model that ${options.rewritten} was converted from.`);
  }
  const layers = capture.sites.map((site, i) => {
    options.progress?.(i, capture.sites.length, 'computing the layouts');
    return layerSection(site, emitted.get(site.id), capture.qk.get(site.id)!, seqLen);
  });

  say(`comparing ${options.rewritten} with the original on ${count} window(s)`);
  const quality = await compareOnText(options.original, options.rewritten, windows, { progress: (done, total) => options.progress?.(done, total, 'comparing on the windows') });
  const sweep = options.sweep === false ? { skipped: 'The sweep was not run (--no-sweep).' } : { points: await densitySweep(options.original, { passes: options.sweepPasses ?? DEFAULT_SWEEP_PASSES, densities: options.densities ?? DEFAULT_DENSITIES, windows, seqLen, progress: say }) };

  const data: ReportData = {
    original: options.original,
    rewritten: options.rewritten,
    generator: 'attnpass report',
    evaluation: { source: text.source, synthetic: !options.text, seqLen, windows: count },
    quality,
    sweep,
    totals: {
      denseFlops: sum(layers, (l) => l.cost.dense.flops),
      rewrittenFlops: sum(layers, (l) => l.cost.rewritten.flops),
      denseKvBytes: sum(layers, (l) => l.cost.dense.kvBytes),
      rewrittenKvBytes: sum(layers, (l) => l.cost.rewritten.kvBytes),
    },
    layers,
    unproven: capture.unproven.map((u) => ({ anchor: u.anchor, reason: u.reason })),
  };
  say(`writing ${options.output}`);
  return { ...writeReport(data, options.output), data };
}

function chooseSeqLen(asked: number | undefined, maxPositions: number | undefined, model: string): number {
  const limit = maxPositions ?? Infinity;
  if (asked === undefined) return Math.min(DEFAULT_SEQ_LEN, limit);
  if (!Number.isInteger(asked) || asked < 2) fail('usage', `--seq-len must be an integer ≥ 2; got ${asked}.`);
  if (asked > limit) fail('usage', `--seq-len ${asked} is longer than ${model}'s learned position table (${limit} positions); use --seq-len ${limit} or less.`);
  return asked;
}

/** A stand-in text when none is given: uniform random tokens, the same every run. */
function randomText(vocab: number, length: number): EvalText {
  const random = rng(1);
  return { tokens: Int32Array.from({ length }, () => Math.floor(random() * vocab)), source: `random tokens (vocabulary ${vocab}, seed 1)` };
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((a, t) => a + f(t), 0);
}

function layerSection(site: AttentionSite, op: EmittedOperator | undefined, qk: CapturedQK, seqLen: number): LayerSection {
  const section: LayerSection = {
    layer: site.layer,
    site: site.id,
    shape: `${site.heads} query heads, ${site.kvHeads} key/value heads, head dim ${site.headDim}, ${site.causal ? 'causal' : 'not causal'}; Q [${qk.q.dims.join(', ')}], K [${qk.k.dims.join(', ')}] on the window`,
    op: op?.op ?? null,
    node: op?.node,
    attributes: op?.attributes ?? {},
    cost: { dense: siteCost(site, seqLen), rewritten: siteCost(site, seqLen, op?.cost) },
    pictures: [],
    notes: [],
  };
  if (!op) {
    section.notes.push('This site was not rewritten: it computes dense attention.');
    return section;
  }
  const a = op.attributes;
  switch (op.op) {
    case 'BlockSparseAttention':
      section.legend = { palette: BLOCK_SPARSE_PALETTE };
      section.pictures = blockSparsePictures(site.layer, blockSparseLayouts(qk, a as unknown as BlockSparseAttributes), a.block_size!);
      break;
    case 'TiledAttention':
      if (a.scorer === 2 && !op.scorer) {
        section.notes.push('The learned scorer weights are not a constant of the model, so the tiling cannot be shown.');
        break;
      }
      section.legend = { palette: TILED_PALETTE, scale: { label: 'block importance R(kb)', low: 'low', high: 'high' } };
      section.pictures = tiledPictures(site.layer, tiledLayouts(qk, a as unknown as TiledAttributes, op.scorer), a.block_size!);
      if (site.heads !== site.kvHeads) section.notes.push('The query heads of a key/value group share one tiling: one picture per key/value head.');
      break;
    case 'SpanAttention':
      if (!op.spans) {
        section.notes.push('The spans input has no default in the model (it is fed at run time), so the picture cannot show them.');
        break;
      }
      section.legend = { palette: SPAN_PALETTE };
      section.pictures = [spanPicture(site.layer, spanLayout(qk, a as unknown as SpanAttributes, op.spans.tensor))];
      section.notes.push(`Spans: ${op.spans.source}.`);
      break;
    default:
      section.notes.push(`No picture for operator ${op.op}.`);
  }
  return section;
}

/** Writes the PNGs and the page together (all or nothing), then drops pictures of an earlier report that this one does not have. */
function writeReport(data: ReportData, htmlPath: string): { html: string; pictures: string[] } {
  const folder = picturesFolder(htmlPath);
  mkdirSync(folder, { recursive: true });
  const pictures = data.layers.flatMap((l) => l.pictures);
  const files = pictures.map((p) => new AtomicFile(join(folder, p.file)));
  const page = new AtomicFile(htmlPath);
  writeAtomically([...files, page], () => {
    pictures.forEach((p, i) => files[i]!.write(p.png));
    page.write(Buffer.from(renderReport(data), 'utf8'));
  });
  const written = new Set(pictures.map((p) => p.file));
  for (const name of readdirSync(folder)) if (/^layer\d+-.*\.png$/.test(name) && !written.has(name)) rmSync(join(folder, name), { force: true });
  return { html: htmlPath, pictures: pictures.map((p) => join(folder, p.file)) };
}
