/** Reference SpanAttention, exactly as kernels/OPERATORS.md defines it, in float64. */
import { fail } from '../../src/errors.js';
import { RowSoftmax, dot, geometry, kvHead, maskReader, numel, position, rowOffsets, type AttentionInputs, type Geometry, type IntTensor, type OutputTensor } from './common.js';

export interface SpanAttributes {
  sink_tokens: number;
  local_window: number;
  scale: number;
  causal: number;
}

export interface SpanInputs extends AttentionInputs {
  /** int64 [Bs, n_spans, 2] or [Bs, S, n_spans, 2], Bs ∈ {1, B}; [start, end) absolute key positions */
  spans: IntTensor;
}

export interface SpanResult {
  output: OutputTensor;
}

/** The spans of (b, i) as clamped [start, end) pairs. */
export function spansReader(spans: IntTensor, g: Geometry): (b: number, i: number) => Array<[number, number]> {
  const dims = spans.dims;
  const perQuery = dims.length === 4;
  if ((dims.length !== 3 && dims.length !== 4) || dims[dims.length - 1] !== 2) {
    fail('usage', `SpanAttention: 'spans' must be int64 [Bs, n_spans, 2] or [Bs, S, n_spans, 2]; got dims [${dims.join(', ')}].`);
  }
  const Bs = dims[0]!;
  if (Bs !== 1 && Bs !== g.B) fail('usage', `SpanAttention: the spans' batch dimension is ${Bs}; it must be 1 or B = ${g.B}.`);
  if (perQuery && dims[1] !== g.S) fail('usage', `SpanAttention: per-query spans [Bs, S, n, 2] need S = ${g.S}; got ${dims[1]}.`);
  if (spans.data.length !== numel(dims)) fail('usage', `SpanAttention: 'spans' has ${spans.data.length} values but dims [${dims.join(', ')}].`);
  const n = dims[dims.length - 2]!;
  const clamp = (x: bigint) => Number(x < 0n ? 0n : x > BigInt(g.T) ? BigInt(g.T) : x);
  return (b, i) => {
    const base = ((Bs === 1 ? 0 : b) * (perQuery ? g.S : 1) + (perQuery ? i : 0)) * n * 2;
    return Array.from({ length: n }, (_, s) => [clamp(spans.data[base + 2 * s]!), clamp(spans.data[base + 2 * s + 1]!)] as [number, number]);
  };
}

export function spanAttention(inp: SpanInputs, a: SpanAttributes): SpanResult {
  const op = 'SpanAttention';
  const g = geometry(op, inp, a.scale, a.causal);
  const off = rowOffsets(g);
  const mask = maskReader(op, inp.mask, g);
  const spansOf = spansReader(inp.spans, g);
  const out = new Float64Array(g.B * g.Hq * g.S * g.Dv);
  const row = new RowSoftmax(g.Dv);
  for (let b = 0; b < g.B; b++) {
    for (let i = 0; i < g.S; i++) {
      const p = position(g, i);
      const spans = spansOf(b, i);
      const admitted = (j: number) =>
        (!g.causal || j <= p) && (j < a.sink_tokens || Math.abs(p - j) < a.local_window || spans.some(([s, e]) => s <= j && j < e));
      for (let h = 0; h < g.Hq; h++) {
        const kv = kvHead(g, h);
        row.reset();
        for (let j = 0; j < g.T; j++) {
          if (!admitted(j)) continue;
          row.add(g.scale * dot(inp.q.data, off.q(b, h, i), inp.k.data, off.k(b, kv, j), g.D) + mask(b, h, i, j), inp.v.data, off.v(b, kv, j));
        }
        row.writeTo(out, off.o(b, h, i));
      }
    }
  }
  return { output: { data: out, dims: [g.B, g.Hq, g.S, g.Dv] } };
}
