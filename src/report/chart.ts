/** Line charts as inline SVG: axes with ticks, titles, one line and markers per series, and a legend. */
import { esc, fmt } from './markup.js';

export interface Series {
  name: string;
  color: string;
  /** [x, y] pairs; drawn sorted by x */
  points: Array<[number, number]>;
}

export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  /** fixed axis ranges; otherwise from the data (y padded, always including `yInclude`) */
  xDomain?: [number, number];
  yDomain?: [number, number];
  yInclude?: number;
  /** y values are fractions shown as percentages */
  yPercent?: boolean;
  width?: number;
  height?: number;
}

const M = { left: 62, right: 16, top: 30, bottom: 44 };
const LEGEND_WIDTH = 76;

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Tick labels with just enough decimals to tell neighbouring ticks apart. */
function tickFormat(ticks: number[], asPercent: boolean): (v: number) => string {
  const scale = asPercent ? 100 : 1;
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) * scale : 1;
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  const exponent = !asPercent && Math.max(...ticks.map(Math.abs)) < 1e-3 && Math.max(...ticks.map(Math.abs)) > 0;
  return (v) => (exponent ? (v === 0 ? '0' : v.toExponential(1)) : `${(v * scale).toFixed(decimals)}${asPercent ? '%' : ''}`);
}

function domainOf(values: number[], include?: number): [number, number] {
  const all = include === undefined ? values : [...values, include];
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) (lo -= Math.abs(lo) * 0.1 || 1), (hi += Math.abs(hi) * 0.1 || 1);
  const pad = (hi - lo) * 0.06;
  return [include !== undefined && include === lo ? lo : lo - pad, hi + pad];
}

export function lineChartSvg(c: LineChart): string {
  const width = c.width ?? 360;
  const height = c.height ?? 280;
  const pw = width - M.left - M.right - LEGEND_WIDTH;
  const ph = height - M.top - M.bottom;
  const finite = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const [x0, x1] = c.xDomain ?? domainOf(finite.map(([x]) => x));
  const [y0, y1] = c.yDomain ?? domainOf(finite.map(([, y]) => y), c.yInclude);
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * ph;
  const yTicks = niceTicks(y0, y1);
  const yFormat = tickFormat(yTicks, c.yPercent === true);
  const parts = [
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(c.title)}">`,
    `<text x="${width / 2}" y="18" text-anchor="middle" class="chart-title">${esc(c.title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    const x = sx(t);
    parts.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" class="grid"/>`, `<text x="${x}" y="${M.top + ph + 15}" text-anchor="middle">${esc(fmt(t))}</text>`);
  }
  for (const t of yTicks) {
    const y = sy(t);
    parts.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" class="grid"/>`, `<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${esc(yFormat(t))}</text>`);
  }
  parts.push(
    `<text x="${M.left + pw / 2}" y="${height - 8}" text-anchor="middle" class="axis-title">${esc(c.xTitle)}</text>`,
    `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" class="axis-title">${esc(c.yTitle)}</text>`,
  );
  for (const s of c.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) {
      parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}: ${fmt(x)} → ${yFormat(y)}`)}</title></circle>`);
    }
  }
  // legend, right of the plot
  const lx = M.left + pw + 12;
  c.series.forEach((s, i) => {
    const y = M.top + 10 + i * 18;
    parts.push(
      `<line x1="${lx}" y1="${y - 4}" x2="${lx + 18}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"/>`,
      `<circle cx="${lx + 9}" cy="${y - 4}" r="3" fill="${s.color}"/>`,
      `<text x="${lx + 24}" y="${y}" class="legend">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
