/**
 * The ONNX function body of TiledAttention (ATT): the same function as kernels/reference/tiled.ts, in
 * standard ops.
 *
 * Every key block is offered to the softmax in all three resolutions — its T tokens, its medium tiles
 * (one column per `medium_tile` chunk of the key axis) and its block summary — and per query exactly
 * one resolution of each block is admitted (token columns for the exact region and for fine blocks,
 * medium columns for medium blocks, the summary for coarse ones). Levels are ranked per (b, kv) with
 * pairwise comparisons (R descending, lower block first), so ties resolve exactly as specified.
 */
import { BodyBuilder, type BodyTarget, DOUBLE, FLOAT } from './builder.js';
import { chunkLens, chunkMeans, chunks, expandHeads, finish, maskedAttention, padTo, prelude, scaledScores, type Prelude } from './common.js';

/** r(j) of all three scorers, chosen by the `scorer` attribute: [B, Hkv, T]. */
function tokenImportance(b: BodyBuilder, pre: Prelude): string {
  const byNorm = b.reduce('ReduceL2', pre.k, [-1], 0);
  // probe queries: the last min(S, 16) queries of every head of the group
  const P = b.min(pre.S, b.int(16));
  const probes = b.slice(pre.q, b.unsqueeze(b.sub(pre.S, P), [0]), b.unsqueeze(pre.S, [0]), [2]); // [B,Hq,P,D]
  const grouped = b.reshape(probes, b.vec([pre.B, pre.Hkv, b.mul(pre.G, P), pre.D]));
  const probeMass = b.reduce('ReduceMean', b.op('Softmax', [scaledScores(b, pre, grouped, pre.k)], { axis: -1 }), [2], 0);
  // learned: K · w. The input is optional; Gemm's optional C passes it through (0·0 + C), or gives 0 when absent.
  const zerosLike = (dims: string) => b.castLike(b.op('ConstantOfShape', [dims]), 'Q');
  const w = b.op('Gemm', [zerosLike(b.ints([1, 1])), zerosLike(b.concat([b.ints([1]), b.shape('Q', 3)], 0)), 'scorer']);
  const byScorer = b.squeeze(b.matmul(pre.k, b.reshape(b.cast(w, FLOAT), b.ints([-1, 1]))), [3]);
  const scorer = b.attrInt('scorer');
  return b.where(b.equal(scorer, b.int(2)), byScorer, b.where(b.equal(scorer, pre.one), probeMass, byNorm));
}

export function tiledBody(target?: BodyTarget): BodyBuilder {
  const b = new BodyBuilder(target);
  const pre = prelude(b);
  const bs = b.attrInt('block_size');
  const mt = b.attrInt('medium_tile');
  const local = b.attrInt('local_blocks');
  const nKB = chunks(b, pre.T, bs, pre.one);
  const kb = b.range(pre.zero, nKB, pre.one);
  const blockLens = chunkLens(b, pre, pre.T, bs, nKB);

  // 1. block importance R [B, Hkv, nKB]: mean of r over the block
  const r = b.unsqueeze(tokenImportance(b, pre), [3]); // [B,Hkv,T,1]
  const R = b.squeeze(chunkMeans(b, pre, r, pre.T, bs, nKB, blockLens), [3]);

  // 2. levels: sink blocks fine; the others ranked by R descending (ties: lower block first)
  const sink = b.less(kb, b.attrInt('sink_blocks'));
  const Ra = b.unsqueeze(R, [-1]);
  const Rc = b.unsqueeze(R, [-2]);
  const lowerIndex = b.less(b.unsqueeze(kb, [0]), b.unsqueeze(kb, [1])); // [a, c]: c < a
  const precedes = b.and(b.or(b.greater(Rc, Ra), b.and(b.equal(Rc, Ra), lowerIndex)), b.not(sink));
  const rank = b.reduce('ReduceSum', b.cast(precedes, FLOAT), [-1], 0); // [B,Hkv,nKB]
  const roundCount = (fraction: string) => b.cast(b.floor(b.add(b.mul(b.cast(fraction, DOUBLE), b.cast(nKB, DOUBLE)), b.cast(b.float(0.5), DOUBLE))), FLOAT);
  const nFine = roundCount(b.attrFloat('fine_fraction'));
  const nFineMedium = b.add(nFine, roundCount(b.attrFloat('medium_fraction')));
  const fine = b.or(sink, b.less(rank, nFine));
  const medium = b.and(b.not(fine), b.less(rank, nFineMedium));
  const coarse = b.not(b.or(fine, medium));
  const perHead = (x: string) => b.squeeze(expandHeads(b, pre, b.unsqueeze(x, [3])), [3]); // [B,Hkv,nKB] → [B,Hq,nKB]

  // regions per query [S, nKB]: exact ob − local < kb ≤ ob; tiled the rest (causal: kb ≤ ob − local)
  const kbFromLocal = b.mul(b.add(kb, local), bs);
  const exact = b.and(b.lessEq(b.mul(kb, bs), pre.pCol), b.greater(kbFromLocal, pre.pCol));
  const tiled = b.and(b.not(exact), b.or(b.not(pre.causal), b.lessEq(kbFromLocal, pre.pCol)));

  // mask values padded with −∞ to whole blocks, for the per-tile maximum: [b', h', s', nKB·bs]
  const maskRows = b.expand(pre.mask, b.vec([pre.one, pre.one, pre.one, pre.T]));
  const maskPadded = padTo(b, maskRows, 3, pre.T, b.mul(nKB, bs), pre.negInf);
  const tileMaskMax = (count: string, size: string) =>
    b.reduce('ReduceMax', b.reshape(maskPadded, b.concat([b.shape(maskRows, 0, 3), b.vec([count, size])], 0)), [4], 0);

  // token columns [B,Hq,S,T]: exact region (causal per token) or a fine block of the tiled region
  const blockOfKey = b.div(pre.j, bs);
  const fineTok = b.unsqueeze(b.gather(perHead(fine), blockOfKey, 2), [2]); // [B,Hq,1,T]
  const admitTok = b.or(b.and(b.gather(exact, blockOfKey, 1), pre.causalOk), b.and(b.gather(tiled, blockOfKey, 1), fineTok));
  const tokLogits = b.add(scaledScores(b, pre, pre.q, expandHeads(b, pre, pre.k)), pre.mask);

  // medium columns [B,Hq,S,nMT]: tiles of medium_tile tokens (they never straddle a block: mt | bs)
  const nMT = b.div(b.mul(nKB, bs), mt);
  const tileLens = chunkLens(b, pre, pre.T, mt, nMT);
  const blockOfTile = b.div(b.mul(b.range(pre.zero, nMT, pre.one), mt), bs);
  const mediumTile = b.unsqueeze(b.gather(perHead(medium), blockOfTile, 2), [2]); // [B,Hq,1,nMT]
  const admitMed = b.and(b.and(b.gather(tiled, blockOfTile, 1), mediumTile), b.greater(tileLens, pre.zero));
  const medKeys = expandHeads(b, pre, chunkMeans(b, pre, pre.k, pre.T, mt, nMT, tileLens));
  const medValues = expandHeads(b, pre, chunkMeans(b, pre, pre.v, pre.T, mt, nMT, tileLens));
  const lnTile = b.log(b.cast(b.max(tileLens, pre.one), FLOAT));
  const medLogits = b.add(b.add(scaledScores(b, pre, pre.q, medKeys), lnTile), tileMaskMax(nMT, mt));

  // coarse columns [B,Hq,S,nKB]: one summary per block
  const admitCoarse = b.and(tiled, b.unsqueeze(perHead(coarse), [2]));
  const blockKeys = expandHeads(b, pre, chunkMeans(b, pre, pre.k, pre.T, bs, nKB, blockLens));
  const blockValues = expandHeads(b, pre, chunkMeans(b, pre, pre.v, pre.T, bs, nKB, blockLens));
  const lnBlock = b.log(b.cast(b.max(blockLens, pre.one), FLOAT));
  const coarseLogits = b.add(b.add(scaledScores(b, pre, pre.q, blockKeys), lnBlock), tileMaskMax(nKB, bs));

  // one softmax over all admitted columns
  const logits = b.concat(
    [b.where(admitTok, tokLogits, pre.negInf), b.where(admitMed, medLogits, pre.negInf), b.where(admitCoarse, coarseLogits, pre.negInf)],
    -1,
  );
  const values = b.concat([expandHeads(b, pre, pre.v), medValues, blockValues], 2);
  finish(b, maskedAttention(b, pre, logits, undefined, values));
  return b;
}
