/** Escaping text for HTML and SVG, and number formats the page shares. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number with at most `digits` significant digits, no exponent for everyday magnitudes. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3)) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

export function percent(x: number, digits = 1): string {
  const text = (100 * x).toFixed(digits);
  // a tiny negative change reads as "-0.00%": drop the sign of a zero
  return `${Number(text) === 0 ? (0).toFixed(digits) : text}%`;
}

/** FLOPs with an SI prefix (e.g. "3.2 GFLOP"). */
export function flops(x: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let u = 0;
  let v = x;
  while (Math.abs(v) >= 1000 && u < units.length - 1) (v /= 1000), u++;
  return `${Number(v.toPrecision(3))} ${units[u]}FLOP`;
}
