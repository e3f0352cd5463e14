/**
 * The report page: one self-contained HTML document (styles inline, pictures as data: URIs inside
 * inline SVG, charts as inline SVG, no script, nothing fetched), rendered from ReportData.
 */
import type { SweepPoint } from '../quality/index.js';
import { formatBytes } from '../inspect.js';
import { lineChartSvg, type Series } from './chart.js';
import type { LayerSection, Legend, ReportData } from './data.js';
import { esc, flops, fmt, percent } from './markup.js';
import { SERIES_COLORS, hex, sequentialGradientStops } from './palette.js';

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b; margin: 0; background: #f7f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 12px 24px 40px; }
h1 { font-size: 22px; margin: 18px 0 4px; }
h2 { font-size: 18px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 12px 0 4px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 14px 18px; margin: 14px 0; }
.meta, .shape { color: #56606b; }
.warning { background: #fff6e0; border: 1px solid #f0d48a; padding: 8px 12px; border-radius: 4px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6e9ed; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f1f3f5; font-weight: 600; }
nav a { margin-right: 10px; }
.figures { display: flex; flex-wrap: wrap; gap: 10px 22px; }
figure { margin: 4px 0; }
figcaption { font-size: 13px; max-width: 460px; }
figcaption b { display: block; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .axis-title, svg .chart-title { font-weight: 600; }
svg .chart-title { font-size: 13px; }
svg .grid { stroke: #eceff2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0 8px; font-size: 13px; }
.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #999; vertical-align: -2px; margin-right: 5px; }
.scale { display: inline-block; width: 90px; height: 12px; border: 1px solid #999; vertical-align: -1px; margin: 0 5px; }
.attrs { font-family: ui-monospace, monospace; font-size: 12px; color: #444; }
td { white-space: nowrap; }
td.attrs { white-space: normal; text-align: left; }
.sweep th:last-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.dense { color: #56606b; font-style: italic; }
`;

const OPERATOR_TEXT: Record<string, string> = {
  BlockSparseAttention:
    'Rows are query blocks, columns key blocks. For each head and query block the predictor (pooled Q · pooled K) kept the coloured blocks; attention is exact inside them and skips the rest.',
  TiledAttention:
    'Rows are query blocks, columns key blocks; the strip on top is the block importance R(kb) the tiling ranks by. A query reads its own and local blocks exactly and every earlier block at the block’s level: token by token (fine), as medium tiles, or as one summary tile.',
  SpanAttention:
    'Rows are query positions, columns key positions. A query reads the sink tokens, its local window and the keys inside the fed spans (here the spans the model reads when none are fed), within causality.',
};

function legendHtml(legend: Legend): string {
  const items = legend.palette.map((c) => `<span title="${esc(c.meaning)}"><span class="swatch" style="background:${hex(c.color)}"></span>${esc(c.label)}</span>`);
  if (legend.scale) {
    const gradient = `linear-gradient(to right, ${sequentialGradientStops().join(', ')})`;
    items.push(`<span>${esc(legend.scale.label)}: ${esc(legend.scale.low)}<span class="scale" style="background:${gradient}"></span>${esc(legend.scale.high)}</span>`);
  }
  return `<div class="legend">${items.join('')}</div>`;
}

const ratio = (a: number, b: number) => (b > 0 ? percent(a / b) : '–');

function layerHtml(l: LayerSection): string {
  const attrs = Object.entries(l.attributes)
    .map(([k, v]) => `${esc(k)}=${esc(fmt(v, 4))}`)
    .join('  ');
  const head = l.op ? `${esc(l.op)}` : '<span class="dense">left dense</span>';
  const parts = [
    `<section class="layer" id="layer-${l.layer}" data-layer="${l.layer}" data-site="${esc(l.site)}">`,
    `<h2>Layer ${l.layer} · ${esc(l.site)} · ${head}</h2>`,
    `<div class="shape">${esc(l.shape)}${l.node ? ` · node ${esc(l.node)}` : ''}</div>`,
  ];
  if (l.op) parts.push(`<div class="attrs">${attrs}</div>`);
  parts.push(
    `<table class="cost"><tr><th></th><th>dense</th><th>${l.op ? esc(l.op) : 'rewritten'}</th><th>share</th></tr>`,
    `<tr><td>attention FLOPs</td><td data-flops-dense="${l.cost.dense.flops}">${flops(l.cost.dense.flops)}</td><td data-flops-rewritten="${l.cost.rewritten.flops}">${flops(l.cost.rewritten.flops)}</td><td>${ratio(l.cost.rewritten.flops, l.cost.dense.flops)}</td></tr>`,
    `<tr><td>K/V bytes read</td><td>${formatBytes(l.cost.dense.kvBytes)}</td><td>${formatBytes(l.cost.rewritten.kvBytes)}</td><td>${ratio(l.cost.rewritten.kvBytes, l.cost.dense.kvBytes)}</td></tr></table>`,
  );
  if (l.op && OPERATOR_TEXT[l.op]) parts.push(`<p>${esc(OPERATOR_TEXT[l.op]!)}</p>`);
  if (l.legend) parts.push(legendHtml(l.legend));
  for (const note of l.notes) parts.push(`<p class="meta">${esc(note)}</p>`);
  if (l.pictures.length) {
    parts.push('<div class="figures">');
    for (const p of l.pictures) {
      parts.push(`<figure data-file="${esc(p.file)}">${p.svg}<figcaption><b>${esc(p.title)}</b>${esc(p.stats)}</figcaption></figure>`);
    }
    parts.push('</div>');
  }
  parts.push('</section>');
  return parts.join('\n');
}

function summaryHtml(d: ReportData): string {
  const t = d.totals;
  const rows = [
    `<tr><th></th><th>dense</th><th>rewritten</th><th>share</th></tr>`,
    `<tr><td>attention FLOPs</td><td>${flops(t.denseFlops)}</td><td>${flops(t.rewrittenFlops)}</td><td>${ratio(t.rewrittenFlops, t.denseFlops)}</td></tr>`,
    `<tr><td>K/V bytes read</td><td>${formatBytes(t.denseKvBytes)}</td><td>${formatBytes(t.rewrittenKvBytes)}</td><td>${ratio(t.rewrittenKvBytes, t.denseKvBytes)}</td></tr>`,
  ];
  const perLayer = d.layers.map(
    (l) =>
      `<tr><td><a href="#layer-${l.layer}">${l.layer}</a></td><td>${esc(l.site)}</td><td>${l.op ? esc(l.op) : '<span class="dense">dense</span>'}</td><td>${flops(l.cost.dense.flops)}</td><td>${flops(l.cost.rewritten.flops)}</td><td>${ratio(l.cost.rewritten.flops, l.cost.dense.flops)}</td><td>${ratio(l.cost.rewritten.kvBytes, l.cost.dense.kvBytes)}</td></tr>`,
  );
  const q = d.quality;
  const quality = q
    ? `<h3>The rewritten model on the evaluation windows</h3><table class="quality"><tr><th>positions</th><th>top-1 agreement</th><th>mean KL (nats)</th><th>perplexity dense</th><th>perplexity rewritten</th><th>change</th></tr>
<tr><td>${q.positions}</td><td>${percent(q.top1Agreement, 2)}</td><td>${fmt(q.meanKl)}</td><td>${fmt(q.perplexityDense, 4)}</td><td>${fmt(q.perplexityRewritten, 4)}</td><td>${percent(q.perplexityRewritten / q.perplexityDense - 1, 2)}</td></tr></table>`
    : '';
  return [
    '<section id="summary"><h2>Estimated cost and quality</h2>',
    `<p class="meta">Cost estimated at sequence length ${d.evaluation.seqLen} (batch 1, prefill), as <code>attnpass convert --seq-len ${d.evaluation.seqLen}</code> reports it.</p>`,
    `<table class="totals">${rows.join('')}</table>`,
    `<h3>Per layer</h3><table class="per-layer"><tr><th>layer</th><th>site</th><th>operator</th><th>dense FLOPs</th><th>rewritten FLOPs</th><th>FLOPs share</th><th>K/V share</th></tr>${perLayer.join('')}</table>`,
    quality,
    '</section>',
  ].join('\n');
}

function sweepHtml(d: ReportData): string {
  const head = '<section id="sweep"><h2>Density vs error</h2>';
  if ('skipped' in d.sweep) return `${head}<p class="meta">${esc(d.sweep.skipped)}</p></section>`;
  const points = d.sweep.points;
  if (points.length === 0) return `${head}<p class="meta">The sweep measured no settings.</p></section>`;
  const passes = [...new Set(points.map((p) => p.pass))];
  const series = (y: (p: SweepPoint) => number): Series[] =>
    passes.map((pass, i) => ({ name: pass, color: SERIES_COLORS[i % SERIES_COLORS.length]!, points: points.filter((p) => p.pass === pass).map((p) => [p.density, y(p)] as [number, number]) }));
  const x = { xTitle: 'density (share of dense attention FLOPs)', xDomain: [0, 1] as [number, number] };
  const charts = [
    lineChartSvg({ ...x, title: 'top-1 agreement with the dense model', yTitle: 'top-1 agreement', series: series((p) => p.metrics.top1Agreement), yPercent: true }),
    lineChartSvg({ ...x, title: 'mean KL(dense ‖ rewritten)', yTitle: 'mean KL (nats)', series: series((p) => p.metrics.meanKl), yInclude: 0 }),
    lineChartSvg({ ...x, title: 'perplexity change', yTitle: 'perplexity change', series: series((p) => p.metrics.perplexityRewritten / p.metrics.perplexityDense - 1), yInclude: 0, yPercent: true }),
  ];
  const rows = points.map(
    (p) =>
      `<tr><td>${esc(p.pass)}</td><td>${fmt(p.density)}</td><td>${percent(p.relativeFlops)}</td><td>${percent(p.relativeKvBytes)}</td><td>${percent(p.metrics.top1Agreement, 2)}</td><td>${fmt(p.metrics.meanKl)}</td><td>${percent(p.metrics.perplexityRewritten / p.metrics.perplexityDense - 1, 2)}</td><td class="attrs">${esc(optionsText(p.options))}</td></tr>`,
  );
  return [
    head,
    `<p class="meta">Each pass converted the original model at the setting that spends the given share of dense attention FLOPs, measured on the same ${d.evaluation.windows} window(s) of ${d.evaluation.seqLen} tokens.</p>`,
    `<div class="charts">${charts.join('')}</div>`,
    `<table class="sweep"><tr><th>pass</th><th>density</th><th>FLOPs</th><th>K/V bytes</th><th>top-1</th><th>mean KL</th><th>perplexity change</th><th>options</th></tr>${rows.join('')}</table>`,
    '</section>',
  ].join('\n');
}

function optionsText(options: Record<string, unknown>): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v, 4) : Array.isArray(v) ? `${v.length} spans` : String(v)}`)
    .join(' ');
}

export function renderReport(d: ReportData): string {
  const e = d.evaluation;
  const source = e.synthetic
    ? `<p class="warning">No evaluation text was given (<code>--text</code>): the ${e.windows} window(s) are deterministic random tokens. The layouts and errors below show what the operators do on noise, not on text.</p>`
    : '';
  const unproven = d.unproven.length
    ? `<section id="unproven"><h2>Left dense (unproven)</h2><ul>${d.unproven.map((u) => `<li>${esc(u.anchor)}: ${esc(u.reason)}</li>`).join('')}</ul></section>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>attnpass report: ${esc(d.rewritten)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>What the attention operators do</h1>
<p class="meta">${esc(d.original)} → ${esc(d.rewritten)} · ${d.layers.length} attention layer(s) · evaluation: ${esc(e.source)}, ${e.windows} window(s) of ${e.seqLen} tokens; layouts from the first window · ${esc(d.generator)}</p>
${source}
<nav>${d.layers.map((l) => `<a href="#layer-${l.layer}">layer ${l.layer}</a>`).join('')}<a href="#sweep">density vs error</a></nav>
${summaryHtml(d)}
${sweepHtml(d)}
${d.layers.map(layerHtml).join('\n')}
${unproven}
</main>
</body>
</html>
`;
}
