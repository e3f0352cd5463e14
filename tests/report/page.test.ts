// The page from made-up data: sections, charts, legends; nothing fetched, no script.
import { describe, expect, it } from 'vitest';
import type { SweepPoint } from '../../src/quality/index.js';
import { lineChartSvg, niceTicks } from '../../src/report/chart.js';
import type { ReportData } from '../../src/report/data.js';
import { renderReport } from '../../src/report/html.js';
import { blockSparsePictures } from '../../src/report/pictures.js';
import { BLOCK_SPARSE_PALETTE } from '../../src/report/palette.js';
import { decodePng } from './png-decode.js';
import { externalReferences, inlinePictures, layerSections } from './support.js';

const metrics = (e: number) => ({ positions: 100, top1Agreement: 1 - e, meanKl: e / 10, perplexityDense: 10, perplexityRewritten: 10 * (1 + e) });
const point = (pass: string, density: number): SweepPoint => ({ pass, density, options: { density }, relativeFlops: density, relativeKvBytes: density, metrics: metrics((1 - density) / 5) });
const cost = { dense: { flops: 1e9, kvBytes: 2 ** 20 }, rewritten: { flops: 2.5e8, kvBytes: 2 ** 19 } };

function data(sweep: ReportData['sweep']): ReportData {
  const grid = { rows: 3, cols: 3, cells: Uint8Array.of(2, 0, 0, 2, 2, 0, 2, 1, 2) };
  return {
    original: 'a.onnx',
    rewritten: 'b <ast>.onnx',
    generator: 'test',
    evaluation: { source: 'made up', synthetic: true, seqLen: 48, windows: 2 },
    quality: metrics(0.01),
    sweep,
    totals: { denseFlops: 2e9, rewrittenFlops: 5e8, denseKvBytes: 2 ** 21, rewrittenKvBytes: 2 ** 20 },
    layers: [0, 1].map((layer) => ({
      layer,
      site: `layer${layer}.self`,
      shape: '1 head',
      op: 'BlockSparseAttention',
      attributes: { block_size: 16, density: 0.25 },
      cost,
      legend: { palette: BLOCK_SPARSE_PALETTE },
      pictures: blockSparsePictures(layer, [{ head: 0, grid, kept: 5, candidates: 6 }], 16),
      notes: [],
    })),
    unproven: [],
  };
}

describe('renderReport', () => {
  const sweep = { points: ['ast', 'att', 'window'].flatMap((p) => [0.25, 0.5, 1].map((d) => point(p, d))) };
  const html = renderReport(data(sweep));

  it('has one section per layer, with its pictures inline', () => {
    expect(layerSections(html).map((s) => s.site)).toEqual(['layer0.self', 'layer1.self']);
    const pictures = inlinePictures(html);
    expect(pictures.map((p) => p.file)).toEqual(['layer0-head0-blocks.png', 'layer1-head0-blocks.png']);
    for (const p of pictures) {
      const png = decodePng(p.png);
      expect([png.width, png.height]).toEqual([p.width, p.height]);
    }
  });

  it('draws the three density charts with one line per pass, and a legend of the palette', () => {
    expect(html.match(/<svg class="chart"/g)).toHaveLength(3);
    expect(html.match(/<polyline /g)).toHaveLength(9);
    for (const c of BLOCK_SPARSE_PALETTE) expect(html).toContain(c.label);
    expect(html).toContain('<table class="sweep">');
  });

  it('escapes names, says the window is synthetic, and fetches nothing', () => {
    expect(html).toContain('b &lt;ast&gt;.onnx');
    expect(html).toContain('deterministic random tokens');
    expect(html).not.toMatch(/<script/i);
    expect(externalReferences(html)).toEqual([]);
  });

  it('says when the sweep did not run', () => {
    const skipped = renderReport(data({ skipped: 'The sweep was not run (--no-sweep).' }));
    expect(skipped).toContain('--no-sweep');
    expect(skipped).not.toContain('<svg class="chart"');
  });
});

describe('charts', () => {
  it('picks round ticks', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.95, 1.0, 5)).toEqual([0.95, 0.96, 0.97, 0.98, 0.99, 1]);
  });

  it('skips non-finite points and still draws', () => {
    const svg = lineChartSvg({ title: 't', xTitle: 'x', yTitle: 'y', series: [{ name: 's', color: '#000', points: [[0, 1], [0.5, NaN], [1, 2]] }] });
    expect(svg.match(/<circle /g)?.length).toBe(3); // two points and the legend's marker
    expect(svg).not.toContain('NaN');
  });
});
