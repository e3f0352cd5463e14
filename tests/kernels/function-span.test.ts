/** SpanAttention's ONNX function (onnxruntime-node) agrees with the reference. */
import { describe, expect, it } from 'vitest';
import { checkAgreement, TOLERANCE, type Setting } from './agreement.js';
import type { AttentionData, Case, Feed, Rng } from './helpers.js';
import type { IntTensor } from '../../kernels/reference/common.js';

const floats = new Set(['scale']);
const inputs = (x: AttentionData, extra: Array<Feed | undefined>) => ({ ...x, spans: extra[0] as IntTensor });
const spans = (dims: number[], values: Array<number | bigint>): IntTensor => ({ data: BigInt64Array.from(values, (v) => BigInt(v)), dims });

/** n random spans per row: mostly inside [0, T), some reaching past either end, some empty (end ≤ start) */
function randomSpans(rng: Rng, T: number, n: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < n; s++) {
    const start = rng.int(-3, T);
    const kind = rng.uniform();
    out.push(start, kind < 0.15 ? start - rng.int(0, 3) : kind < 0.3 ? T + rng.int(0, 50) : start + rng.int(1, Math.max(1, Math.floor(T / 3))));
  }
  return out;
}

const partial = (rng: Rng, c: Case) => [spans([c.B, 2, 2], [...randomSpans(rng, c.T, 2), ...randomSpans(rng, c.T, 2)])];
const perQuery = (rng: Rng, c: Case) => [spans([c.B, c.S, 2, 2], Array.from({ length: c.B * c.S }, () => randomSpans(rng, c.T, 2)).flat())];

const settings: Setting[] = [
  { name: 'partial spans [B, 2, 2], sink 2, window 5', attrs: { sink_tokens: 2, local_window: 5 }, floats, inputs, extra: partial },
  { name: 'one empty span [1, 1, 2] (the window pass), sink 4, window 8', attrs: { sink_tokens: 4, local_window: 8 }, floats, inputs, extra: () => [spans([1, 1, 2], [0, 0])] },
  { name: 'per-query spans [B, S, 2, 2], sink 1, window 3, scale 0.25', attrs: { sink_tokens: 1, local_window: 3, scale: 0.25 }, floats, inputs, extra: perQuery },
  { name: 'no spans [B, 0, 2], no sink, no window (all rows empty)', attrs: { sink_tokens: 0, local_window: 0 }, floats, inputs, extra: (_, c) => [spans([c.B, 0, 2], [])] },
  { name: 'spans shared over the batch [1, 3, 2], defaults', attrs: {}, floats, inputs, extra: (rng, c) => [spans([1, 3, 2], randomSpans(rng, c.T, 3))] },
  { name: 'exact (one span [0, 2^62])', attrs: { sink_tokens: 0, local_window: 0 }, floats, inputs, extra: () => [spans([1, 1, 2], [0n, 2n ** 62n])] },
];

describe('SpanAttention function vs reference', () => {
  settings.forEach((s, n) =>
    it(s.name, async () => {
      const r = await checkAgreement('SpanAttention', s, 3000 + n);
      console.log(`SpanAttention ${s.name}: ${r.cases} cases, max relative error ${r.maxError.toExponential(2)}, ${r.emptyRows} empty rows`);
      expect(r.maxError).toBeLessThanOrEqual(TOLERANCE);
    }),
  );
});
