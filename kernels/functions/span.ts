/**
 * The ONNX function body of SpanAttention: the same function as kernels/reference/span.ts, in
 * standard ops. One body takes both span layouts: spans are first padded with one empty span [0, 0)
 * on the span axis (so n_spans = 0 works), then viewed as [Bs, S', n, 2] with S' = 1 for
 * [Bs, n, 2] and S' = S for per-query [Bs, S, n, 2].
 */
import { BodyBuilder, type BodyTarget, BOOL, FLOAT } from './builder.js';
import { expandHeads, finish, maskedAttention, prelude, scaledScores } from './common.js';

export function spanBody(target?: BodyTarget): BodyBuilder {
  const b = new BodyBuilder(target);
  const pre = prelude(b);
  const padded = b.pad('spans', [-2], [pre.zero], [pre.one], pre.zero);
  const n = b.dim(padded, -2);
  const spans = b.reshape(padded, b.vec([b.dim(padded, 0), b.int(-1), n, b.int(2)])); // [Bs, S', n, 2]
  const clamp = (x: string) => b.max(b.min(x, pre.T), pre.zero);
  const start = b.unsqueeze(clamp(b.gather(spans, pre.zero, 3)), [-1]); // [Bs, S', n, 1]
  const end = b.unsqueeze(clamp(b.gather(spans, pre.one, 3)), [-1]);
  const inside = b.and(b.lessEq(start, pre.j), b.less(pre.j, end)); // [Bs, S', n, T]
  const inAnySpan = b.cast(b.reduce('ReduceMax', b.cast(inside, FLOAT), [2], 0), BOOL); // [Bs, S', T]

  const sink = b.less(pre.j, b.attrInt('sink_tokens')); // [T]
  const local = b.less(b.abs(b.sub(pre.pCol, pre.j)), b.attrInt('local_window')); // [S, T]
  const admit = b.and(pre.causalOk, b.or(b.or(sink, local), b.unsqueeze(inAnySpan, [1]))); // [Bs, 1, S, T]

  const logits = b.add(scaledScores(b, pre, pre.q, expandHeads(b, pre, pre.k)), pre.mask);
  finish(b, maskedAttention(b, pre, logits, admit, expandHeads(b, pre, pre.v)));
  return b;
}
