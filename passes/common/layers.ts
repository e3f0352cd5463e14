/** Parsing `--layers 0,2,5-7` into a predicate over layer indices. */
import { fail } from '../../src/errors.js';

export function parseLayers(spec: unknown): ((layer: number) => boolean) {
  if (spec === undefined || spec === null || spec === '' || spec === 'all') return () => true;
  const text = String(spec);
  const chosen = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) fail('usage', `--layers: '${part}' is not a layer index or range; write e.g. --layers 0,2,5-7.`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) fail('usage', `--layers: range '${part}' runs backwards.`);
    for (let i = from; i <= to; i++) chosen.add(i);
  }
  return (layer) => chosen.has(layer);
}
