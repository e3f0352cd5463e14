// `attnpass report` on small fixtures, checked without a browser: one section per layer, every picture
// a valid PNG inline and on disk with the same bytes, charts present, costs equal to convert's report.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { picturesFolder } from '../../src/report/index.js';
import { fixtureReport, type FixtureReport } from './fixture-report.js';
import { decodePng } from './png-decode.js';
import { externalReferences, filePicture, inlinePictures, layerSections } from './support.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-report-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const cases: Array<[string, string, Record<string, unknown>, boolean, RegExp]> = [
  ['llama-gqa-dynamo', 'ast', { 'block-size': 16, density: 0.5 }, true, /^layer\d-head\d-blocks\.png$/],
  ['llama-gqa-dynamo', 'att', { 'block-size': 16 }, false, /^layer\d-kv\d-tiles\.png$/],
  ['gpt2-legacy', 'span', { 'local-window': 8, 'default-spans': 'none' }, false, /^layer\d-spans\.png$/],
];

describe.each(cases)('%s rewritten by %s', (fixture, pass, options, sweep, pictureName) => {
  let r: FixtureReport;
  let html: string;
  beforeAll(async () => {
    r = await fixtureReport(join(work, `${fixture}-${pass}`), fixture, pass, options, sweep);
    html = readFileSync(r.report.html, 'utf8');
  });

  it('has one section per attention layer, in order', () => {
    expect(layerSections(html).map((s) => s.site)).toEqual(r.converted.layers.map((l) => l.site));
  });

  it('writes every picture beside the page, byte for byte the one inline, as a valid PNG', () => {
    const folder = picturesFolder(r.report.html);
    const inline = inlinePictures(html);
    expect(inline.length).toBeGreaterThan(0);
    expect(readdirSync(folder).sort()).toEqual(inline.map((p) => p.file).sort());
    for (const p of inline) {
      expect(p.file).toMatch(pictureName);
      const onDisk = filePicture(folder, p.file);
      expect(onDisk.bytes.equals(p.png)).toBe(true);
      expect([onDisk.decoded.width, onDisk.decoded.height]).toEqual([p.width, p.height]);
    }
  });

  it('draws grids whose size follows the blocks of the window', () => {
    const layer = r.report.data.layers[0]!;
    const picture = layer.pictures[0]!;
    const png = decodePng(picture.png);
    if (pass === 'span') expect(png.width % 64).toBe(0);
    else expect(png.width % (64 / 16)).toBe(0);
    expect(layer.op).toBe(r.converted.layers[0]!.op);
  });

  it("shows convert's cost numbers, per layer and in total", () => {
    for (const [i, section] of layerSections(html).entries()) {
      const expected = r.converted.layers[i]!;
      expect(Number(/data-flops-dense="([^"]+)"/.exec(section.body)![1])).toBe(expected.dense.flops);
      expect(Number(/data-flops-rewritten="([^"]+)"/.exec(section.body)![1])).toBe(expected.rewrittenCost.flops);
    }
    const t = r.report.data.totals;
    expect(t).toEqual(r.converted.totals);
  });

  it('measures the rewritten model on the windows', () => {
    const q = r.report.data.quality!;
    expect(q.positions).toBe(r.report.data.evaluation.windows * 63);
    expect(q.top1Agreement).toBeGreaterThan(0.5);
  });

  it(sweep ? 'charts the sweep' : 'says the sweep was skipped', () => {
    if (sweep) {
      expect(html.match(/<svg class="chart"/g)).toHaveLength(3);
      expect(html.match(/<polyline /g)?.length).toBe(6); // 2 passes × 3 charts
    } else {
      expect(html).toContain('The sweep was not run');
    }
  });

  it('is self-contained', () => {
    expect(externalReferences(html)).toEqual([]);
    expect(html).not.toMatch(/<script/i);
  });
});

describe('report errors', () => {
  it('names the fix when the rewritten model has no attnpass operator', async () => {
    const { generateReport } = await import('../../src/report/index.js');
    const model = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'llama-gqa-dynamo', 'model.onnx');
    await expect(generateReport({ original: model, rewritten: model, output: join(work, 'x.html'), seqLen: 32, windows: 1, sweep: false })).rejects.toThrow(/no ai\.attnpass operator.*'attnpass convert'/);
  });

  it('names the fix when the window outgrows learned positions', async () => {
    const { generateReport } = await import('../../src/report/index.js');
    const model = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'gpt2-legacy', 'model.onnx');
    await expect(generateReport({ original: model, rewritten: model, output: join(work, 'x.html'), seqLen: 4096, windows: 1, sweep: false })).rejects.toThrow(/use --seq-len \d+ or less/);
  });

  it('removes pictures an earlier report left that this one does not have', async () => {
    const dir = join(work, 'stale');
    mkdirSync(join(dir, 'llama-gqa-dynamo-att-files'), { recursive: true });
    writeFileSync(join(dir, 'llama-gqa-dynamo-att-files', 'layer9-head0-blocks.png'), 'old');
    writeFileSync(join(dir, 'llama-gqa-dynamo-att-files', 'notes.txt'), 'mine');
    const r = await fixtureReport(dir, 'llama-gqa-dynamo', 'att', { 'block-size': 16 });
    const left = readdirSync(picturesFolder(r.report.html));
    expect(left).toContain('notes.txt');
    expect(left).not.toContain('layer9-head0-blocks.png');
  });
});
