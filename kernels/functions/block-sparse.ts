/**
 * The ONNX function body of BlockSparseAttention (AST): the same function as
 * kernels/reference/block-sparse.ts, in standard ops.
 *
 * Shapes: s = block scores [B, Hq, nQB, nKB]; geometry masks (candidates, forced) are [nQB, nKB].
 * The order "score descending, lower block first" is built from pairwise comparisons (a block's rank
 * is the number of free blocks that precede it), not TopK, so ties resolve exactly as specified.
 */
import { BodyBuilder, type BodyTarget, DOUBLE, FLOAT } from './builder.js';
import { chunkLens, chunkMeans, chunks, expandHeads, finish, maskedAttention, maskedSoftmax, prelude, scaledScores } from './common.js';

export function blockSparseBody(target?: BodyTarget): BodyBuilder {
  const b = new BodyBuilder(target);
  const pre = prelude(b);
  const bs = b.attrInt('block_size');
  const nKB = chunks(b, pre.T, bs, pre.one);
  const nQB = chunks(b, pre.S, bs, pre.one);
  const kb = b.range(pre.zero, nKB, pre.one); // [nKB]
  const qb = b.range(pre.zero, nQB, pre.one); // [nQB]
  const keyLens = chunkLens(b, pre, pre.T, bs, nKB);

  // 3. scores from block means
  const keyMeans = expandHeads(b, pre, chunkMeans(b, pre, pre.k, pre.T, bs, nKB, keyLens)); // [B,Hq,nKB,D]
  const queryMeans = chunkMeans(b, pre, pre.q, pre.S, bs, nQB, chunkLens(b, pre, pre.S, bs, nQB)); // [B,Hq,nQB,D]
  const s = scaledScores(b, pre, queryMeans, keyMeans);

  // 1–2. candidates and forced blocks: plast(qb) = T − S + min((qb+1)·bs, S) − 1
  const plast = b.unsqueeze(b.add(b.sub(pre.T, pre.S), b.sub(b.min(b.mul(b.add(qb, pre.one), bs), pre.S), pre.one)), [1]); // [nQB,1]
  const kStart = b.mul(kb, bs);
  const upToDiagonal = b.lessEq(kStart, plast); // kb ≤ kd(qb)  ⇔  kb·bs ≤ plast  (plast < nKB·bs)
  const candidate = b.or(b.not(pre.causal), upToDiagonal);
  const sink = b.less(kb, b.attrInt('sink_blocks'));
  const local = b.and(upToDiagonal, b.greater(b.mul(b.add(kb, b.attrInt('local_blocks')), bs), plast)); // kd − local < kb
  const forced = b.and(candidate, b.or(sink, local));
  const free = b.and(candidate, b.not(forced));

  // order: precedes[a, c] = block c comes before block a (score higher, or equal and c < a), c free
  const sa = b.unsqueeze(s, [-1]);
  const sc = b.unsqueeze(s, [-2]);
  const lowerIndex = b.less(b.unsqueeze(kb, [0]), b.unsqueeze(kb, [1])); // [a, c]: c < a
  const precedes = b.and(b.or(b.greater(sc, sa), b.and(b.equal(sc, sa), lowerIndex)), b.unsqueeze(free, [-2]));
  const precedesF = b.cast(precedes, FLOAT);
  const rank = b.reduce('ReduceSum', precedesF, [-1], 0); // [B,Hq,nQB,nKB]

  // 4a. density mode: n = max(0, ceil(density·|C|) − |F|), computed exactly in float64
  const count = (x: string) => b.reduce('ReduceSum', b.cast(x, DOUBLE), [-1], 0);
  const density = b.cast(b.attrFloat('density'), DOUBLE);
  const n = b.max(b.sub(b.ceil(b.mul(density, count(candidate))), count(forced)), b.cast(pre.fzero, DOUBLE)); // [nQB]
  const keptByDensity = b.less(rank, b.unsqueeze(b.cast(n, FLOAT), [1]));

  // 4b. mass mode: kept while the mass of forced + preceding free blocks is still below the threshold
  const threshold = b.attrFloat('mass_threshold');
  const w = maskedSoftmax(b, pre, b.add(s, b.log(b.cast(keyLens, FLOAT))), candidate); // [B,Hq,nQB,nKB]
  const forcedMass = b.reduce('ReduceSum', b.where(forced, w, pre.fzero), [-1], 1);
  const precedingMass = b.reduce('ReduceSum', b.mul(precedesF, b.unsqueeze(w, [-2])), [-1], 0);
  const keptByMass = b.less(b.add(forcedMass, precedingMass), threshold);

  const massMode = b.greater(threshold, pre.fzero);
  const chosen = b.or(b.and(massMode, keptByMass), b.and(b.not(massMode), keptByDensity)); // (Where has no bool kernel in ORT CPU)
  const kept = b.or(forced, b.and(free, chosen)); // [B,Hq,nQB,nKB]

  // 5. attention over the kept blocks' keys, within causality
  const blockOfQuery = b.div(pre.i, bs);
  const blockOfKey = b.div(pre.j, bs);
  const keptTokens = b.gather(b.gather(kept, blockOfQuery, 2), blockOfKey, 3); // [B,Hq,S,T]
  const logits = b.add(scaledScores(b, pre, pre.q, expandHeads(b, pre, pre.k)), pre.mask);
  const out = maskedAttention(b, pre, logits, b.and(keptTokens, pre.causalOk), expandHeads(b, pre, pre.v));
  finish(b, out);
  b.rename(b.op('Identity', [kept]), 'layout');
  return b;
}
