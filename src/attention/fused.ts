/**
 * Rules for attention that an exporter or optimizer already fused into one op: ONNX `Attention`
 * (opset 23+), `com.microsoft.Attention` (packed QKV weights), `MultiHeadAttention` and
 * `GroupQueryAttention`. Each proves its attributes and shapes (head counts from shapes, checked
 * against the attributes), and materializes canonical Q/K/V/mask with the standard ops the fused op
 * stands for: the QKV projection and split, head split, the KV-cache Concat that produces `present`,
 * and the op's mask conventions turned into one additive mask. Forms whose semantics cannot be spelled
 * out exactly (rotary inside the op, soft-capping, shared past/present buffers, beam-search cache
 * indirection, packed-sequence inputs) are reported unproven with the reason.
 */
import { DataType } from '../onnx/codec.js';
import { elementType } from '../onnx/dtype.js';
import type { Dim, Node, Value } from '../ir/graph.js';
import { Builder, lowestOf } from './build.js';
import { elemTypeOf, graphInputBehind, graphOutputAfter, kindOf, kvCacheOf } from './common.js';
import { buildAdditiveMask, type MaskPart } from './mask.js';
import { exclusiveNodes, type Materialized, type SitePlan } from './site-impl.js';
import type { AttentionMask, KvCache } from './site.js';
import { Unproven, chooseTake, materializeOperand, takeNodes, type Take } from './proof.js';
import { K_ORDER, V_ORDER, walkUp, type Walk } from './layout.js';
import type { AnchorRule, RuleContext } from './detect.js';
import type { Shapes } from './shapes.js';

const no = (message: string, node?: Node): never => {
  throw new Unproven(message, node);
};

/** shapes of the model being recognized (set by each rule before it proves) */
let current: Shapes | undefined;
const D = (v: Value): Dim[] | undefined => current?.dims(v);
const R = (v: Value): number | undefined => current?.rank(v);

const num = (d: Dim): number | undefined => (typeof d === 'number' ? d : undefined);
const used = (v: Value | undefined): boolean => !!v && (v.isGraphOutput || v.useCount > 0);
const sameDim = (a: Dim, b: Dim): boolean => a !== undefined && a === b;

/** K, V and their caches must have the element type of `ref`: a mixed or quantized (int8, int4) cache has no spelling here. */
function sameTypeAs(n: Node, ref: Value, others: Array<Value | undefined>): void {
  const want = ref.type?.elemType;
  for (const v of others) {
    const got = v?.type?.elemType;
    if (want && got && got !== want) no(`${n.describe()}: ${v} is ${elementType(got).name} but ${ref} is ${elementType(want).name}; mixed-type (e.g. quantized) K/V caches are not materialized`, n);
  }
}

/** A past key or value must be [B, heads, P, headDim]: the rewrite concatenates it with the new keys on axis 2. */
function checkPast(n: Node, past: Value | undefined, what: string, heads: number, headDim: number): void {
  if (!past) return;
  const d = D(past);
  const rank = R(past);
  const [h, hd] = [num(d?.[1]), num(d?.[3])];
  const fits = rank === undefined || (rank === 4 && (h === undefined || h === heads) && (hd === undefined || hd === headDim));
  const declared = past.type?.shape?.map((x) => x ?? '?').join(', ') ?? '?';
  if (!fits) no(`${n.describe()}: ${what} ${past} is [${declared}]; it must be [B, ${heads}, past, ${headDim}]`, n);
}

function attrOrUndefined(n: Node, name: string): number | undefined {
  return n.attr(name) ? n.attrInt(name) : undefined;
}

/** Checks the attribute-given head count against the one the shapes give. */
function headsFrom(n: Node, attr: string, shapeHeads: number | undefined, what: string): number {
  const a = attrOrUndefined(n, attr);
  if (shapeHeads !== undefined && a !== undefined && a !== 0 && a !== shapeHeads) no(`${n.describe()}: attribute ${attr}=${a} but the ${what} shape has ${shapeHeads} heads`, n);
  const h = shapeHeads ?? a;
  if (!h || h <= 0) return no(`${n.describe()}: the ${what} head count is neither in the shapes nor in attribute ${attr}`, n);
  return h;
}

function hiddenOf(v: Value, n: Node, what: string): number {
  const d = num(D(v)?.[(R(v) ?? 0) - 1]);
  if (d === undefined) return no(`${n.describe()}: the ${what} hidden size of ${v} is not a known number`, n);
  return d;
}

/** mask_index of com.microsoft Attention/MHA as an additive part (its conventions: >0 keeps, else mask_filter_value). */
function keyMaskPart(n: Node, mask: Value, batchDim: Dim, filter: number, scoreType: number, kTotal: () => Value): { build: (b: Builder) => Value } {
  const r = R(mask);
  if (r === 2 || r === 3) {
    return {
      build: (bb: Builder) => {
        const keep = bb.op('Greater', [bb.cast(mask, DataType.INT64), bb.ints([0], [])]);
        const add = bb.op('Where', [keep, bb.scalarOf(0, scoreType), bb.scalarOf(filter, scoreType)]);
        return bb.op('Unsqueeze', [add, bb.ints(r === 2 ? [1, 2] : [1])]);
      },
    };
  }
  if (r === 1) {
    if (!sameDim(D(mask)?.[0], batchDim)) no(`${n.describe()}: a 1-D mask_index of length ${String(D(mask)?.[0])} may hold start positions too ([2·B]); only [B] key lengths are supported`, n);
    return {
      build: (bb: Builder) => {
        const t = bb.op('Gather', [bb.op('Shape', [kTotal()]), bb.ints([2], [1])], { axis: 0 });
        const range = bb.op('Range', [bb.ints([0], []), bb.op('Squeeze', [t, bb.ints([0])]), bb.ints([1], [])]);
        const lens = bb.op('Unsqueeze', [bb.cast(mask, DataType.INT64), bb.ints([1])]);
        const keep = bb.op('Less', [bb.op('Unsqueeze', [range, bb.ints([0])]), lens]);
        const add = bb.op('Where', [keep, bb.scalarOf(0, scoreType), bb.scalarOf(filter, scoreType)]);
        return bb.op('Unsqueeze', [add, bb.ints([1, 2])]);
      },
    };
  }
  return no(`${n.describe()}: mask_index of rank ${String(r)} is not supported (only [B], [B, T] and [B, S, T])`, n);
}

interface Common {
  n: Node;
  heads: number;
  kvHeads: number;
  headDim: number;
  valueHeadDim: number;
  scale: number;
  causal: boolean;
  slidingWindow: number | undefined;
  q: Value;
  k: Value;
  v: Value;
  mask: AttentionMask | undefined;
  kvCache: KvCache | undefined;
  scoreType: number;
  rule: string;
  notes: string[];
  /** present outputs of the op that materialization must keep produced */
  presents: Value[];
  /** the materialized mask hides the keys after each query itself (proven from an explicit mask) */
  maskIncludesCausal?: boolean;
  /** rows whose every key is masked come out as zeros (as the op computes them) */
  zeroMaskedRows?: boolean;
  materialize(b: Builder): Materialized;
  restore(b: Builder, result: Value): Value;
}

function plan(c: Common, extra: Node[] = []): SitePlan {
  const out = c.n.output(0);
  const nodes = exclusiveNodes([c.n, ...extra], out, c.presents);
  if (!nodes.includes(c.n)) no(`${c.n.describe()}: one of its outputs is used but cannot be reproduced`, c.n);
  return {
    rule: c.rule,
    anchor: c.n,
    kind: kindOf(c.q, c.k, current!),
    q: c.q,
    k: c.k,
    v: c.v,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    valueHeadDim: c.valueHeadDim,
    scale: c.scale,
    causal: c.causal,
    slidingWindow: c.slidingWindow,
    mask: c.mask,
    maskImpliedByCausal: false,
    maskIncludesCausal: c.maskIncludesCausal ?? false,
    kvCache: c.kvCache,
    output: out,
    nodes,
    insertBefore: c.n,
    notes: c.notes,
    scoreType: c.scoreType,
    materialize: c.materialize,
    restore: c.restore,
    nanGuard: c.zeroMaskedRows ?? false,
  };
}

/** present = Concat(past, new) when there is a past, else the new K/V itself (through an Identity, so the output keeps its own node). */
function withPast(b: Builder, past: Value | undefined, cur: Value): Value {
  return past ? b.op('Concat', [past, cur], { axis: 2 }) : cur;
}

function presentOf(b: Builder, full: Value, hadPast: boolean): Value {
  return hadPast ? full : b.op('Identity', [full]);
}

// ---------------------------------------------------------------------------------------------
// ONNX Attention (opset 23+)

function proveOnnxAttention(n: Node, cx: RuleContext): SitePlan {
  const [Q, K, V, attnMask, pastK, pastV, nonpad] = [0, 1, 2, 3, 4, 5, 6].map((i) => n.inputs[i]);
  if (!Q || !K || !V) return no(`${n.describe()} misses Q, K or V`, n);
  sameTypeAs(n, Q, [K, pastK]);
  sameTypeAs(n, V, [pastV]);
  if (nonpad) return no(`${n.describe()}: nonpad_kv_seqlen gives per-batch valid lengths with per-batch causal offsets; not materialized`, n);
  const softcap = n.attrFloat('softcap', 0);
  if (softcap !== 0) return no(`${n.describe()}: softcap=${softcap} soft-caps the scores (tanh); that is not scale·Q·Kᵀ + mask`, n);
  if (used(n.outputs[3])) return no(`${n.describe()}: its qk_matmul_output is used; a replacement would not produce it`, n);
  if (!!pastK !== !!pastV) return no(`${n.describe()} has only one of past_key / past_value`, n);
  const rank = R(Q);
  if ((rank !== 3 && rank !== 4) || R(K) !== rank || R(V) !== rank) return no(`${n.describe()}: Q, K, V must all be 3-D or all 4-D (ranks ${R(Q)}, ${R(K)}, ${R(V)})`, n);
  let heads: number, kvHeads: number, headDim: number, valueHeadDim: number;
  if (rank === 4) {
    heads = headsFrom(n, 'q_num_heads', num(D(Q)![1]), 'Q');
    kvHeads = headsFrom(n, 'kv_num_heads', num(D(K)![1]), 'K');
    const vh = num(D(V)![1]);
    if (vh !== undefined && vh !== kvHeads) no(`${n.describe()}: K has ${kvHeads} heads, V ${vh}`, n);
    headDim = num(D(Q)![3]) ?? no(`${n.describe()}: the head dim of Q is not known`, n);
    if (num(D(K)![3]) !== undefined && num(D(K)![3]) !== headDim) no(`${n.describe()}: Q and K head dims differ`, n);
    valueHeadDim = num(D(V)![3]) ?? no(`${n.describe()}: the head dim of V is not known`, n);
  } else {
    heads = attrOrUndefined(n, 'q_num_heads') ?? no(`${n.describe()}: 3-D inputs need q_num_heads`, n);
    kvHeads = attrOrUndefined(n, 'kv_num_heads') ?? no(`${n.describe()}: 3-D inputs need kv_num_heads`, n);
    const qh = hiddenOf(Q, n, 'Q');
    const kh = hiddenOf(K, n, 'K');
    const vh = hiddenOf(V, n, 'V');
    if (qh % heads || kh % kvHeads || vh % kvHeads) no(`${n.describe()}: hidden sizes ${qh}, ${kh}, ${vh} do not divide into ${heads} / ${kvHeads} heads`, n);
    headDim = qh / heads;
    if (kh / kvHeads !== headDim) no(`${n.describe()}: Q head dim ${headDim} and K head dim ${kh / kvHeads} differ`, n);
    valueHeadDim = vh / kvHeads;
  }
  checkPast(n, pastK, 'past_key', kvHeads, headDim);
  checkPast(n, pastV, 'past_value', kvHeads, valueHeadDim);
  // K and V repeated for GQA before the op (no cache inside it): read them before the repeat
  let peeled: { wk: Walk; tk: Take; wv: Walk; tv: Take } | undefined;
  if (rank === 4 && !pastK) {
    const shapes = cx.shapes;
    const wk = walkUp(K, [['b'], ['h'], ['t'], ['d']], { allowScale: false, splitHeads: true, shapes });
    const wv = walkUp(V, [['b'], ['h'], ['t'], ['e']], { allowScale: false, splitHeads: true, shapes });
    try {
      const tk = chooseTake(wk, K_ORDER, 'K');
      const tv = chooseTake(wv, V_ORDER, 'V');
      const kStep = wk.steps[tk.replayTo ?? tk.index]!;
      const vStep = wv.steps[tv.replayTo ?? tv.index]!;
      const kh = shapes.staticDim(kStep.value, kStep.labels.findIndex((a) => a[0] === 'g' || a[0] === 'h'));
      const vh = shapes.staticDim(vStep.value, vStep.labels.findIndex((a) => a[0] === 'g' || a[0] === 'h'));
      if (tk.atoms[1] === 'g' && tv.atoms[1] === 'g' && kh !== undefined && kh === vh && kh < kvHeads && kvHeads % kh === 0) {
        peeled = { wk, tk, wv, tv };
        kvHeads = kh;
      }
    } catch (e) {
      if (!(e instanceof Unproven)) throw e;
    }
  }
  if (heads % kvHeads) no(`${n.describe()}: ${heads} query heads are not a multiple of ${kvHeads} kv heads`, n);
  const scaleAttr = n.attr('scale') ? n.attrFloat('scale', 0) : undefined;
  const scale = scaleAttr ?? 1 / Math.sqrt(headDim);
  const scoreType = elemTypeOf(Q);
  const notes: string[] = [];
  const parts: MaskPart[] = [];
  if (attnMask) {
    if ((R(attnMask) ?? 5) > 4) no(`${n.describe()}: attn_mask has rank ${R(attnMask)}`, n);
    const isBool = elemTypeOf(attnMask) === DataType.BOOL;
        // ORT's CPU kernel gives a zero row where every score is masked (false, or the lowest float): -inf + a NaN guard
    parts.push({ kind: isBool ? 'boolean' : 'additive', value: attnMask, factor: 1, keepWhenTrue: isBool ? true : undefined, fill: isBool ? -Infinity : undefined, node: n, labels: [['b'], ['h'], ['s'], ['t']], lowestIsMasked: !isBool });
  }
  const isCausal = n.attrInt('is_causal', 0) === 1;
  const sDim = rank === 4 ? D(Q)![2] : D(Q)![1];
  const tDim = rank === 4 ? D(K)![2] : D(K)![1];
  // without a past the op aligns the triangle top-left; that is our bottom-right one only when S = T
  const topLeft = isCausal && !pastK && !sameDim(sDim, tDim);
  if (topLeft) notes.push('is_causal without a past aligns the triangle top-left and S = T is not proven: the triangle is put into the mask instead of claiming causal');
  let causal = isCausal && !topLeft;
  let slidingWindow: number | undefined;
  let maskIncludesCausal = false;
  if (!isCausal && parts.length) {
    const facts = cx.masks.analyze(parts, { q: Q, qAxis: rank === 4 ? 2 : 1, k: [...(pastK ? [{ value: pastK, axis: 2 }] : []), { value: K, axis: rank === 4 ? 2 : 1 }] });
    causal = facts.causal;
    maskIncludesCausal = facts.causal;
    slidingWindow = facts.slidingWindow;
    if (facts.note) notes.push(`causal not claimed: ${facts.note}`);
  }
  const presents = [n.outputs[1], n.outputs[2]].filter((o): o is Value => used(o));
  const materialize = (b: Builder): Materialized => {
    const q4 = rank === 3 ? b.splitHeads(Q, heads, headDim) : Q;
    const k4 = peeled ? materializeOperand(b, peeled.wk, peeled.tk) : rank === 3 ? b.splitHeads(K, kvHeads, headDim) : K;
    const v4 = peeled ? materializeOperand(b, peeled.wv, peeled.tv) : rank === 3 ? b.splitHeads(V, kvHeads, valueHeadDim) : V;
    const kFull = withPast(b, pastK, k4);
    const vFull = withPast(b, pastV, v4);
    const pres: Array<[Value, Value]> = [];
    if (used(n.outputs[1])) pres.push([n.outputs[1]!, presentOf(b, kFull, !!pastK)]);
    if (used(n.outputs[2])) pres.push([n.outputs[2]!, presentOf(b, vFull, !!pastV)]);
    let mask = buildAdditiveMask(b, parts, scoreType);
    if (topLeft) {
      const S = b.op('Squeeze', [b.op('Gather', [b.op('Shape', [q4]), b.ints([2], [1])], { axis: 0 }), b.ints([0])]);
      const T = b.op('Squeeze', [b.op('Gather', [b.op('Shape', [kFull]), b.ints([2], [1])], { axis: 0 }), b.ints([0])]);
      const rows = b.op('Unsqueeze', [b.op('Range', [b.ints([0], []), S, b.ints([1], [])]), b.ints([1])]);
      const cols = b.op('Unsqueeze', [b.op('Range', [b.ints([0], []), T, b.ints([1], [])]), b.ints([0])]);
      const tri = b.op('Where', [b.op('Greater', [cols, rows]), b.scalarOf(-Infinity, scoreType), b.scalarOf(0, scoreType)]);
      mask = b.add(mask, tri);
    }
    return { q: q4, k: kFull, v: vFull, mask, presents: pres };
  };
  return plan({
    n,
    heads,
    kvHeads,
    headDim,
    valueHeadDim,
    scale,
    causal,
    slidingWindow,
    q: Q,
    k: peeled ? peeled.wk.steps[peeled.tk.index]!.value : K,
    v: peeled ? peeled.wv.steps[peeled.tv.index]!.value : V,
    mask: attnMask ? { kind: elemTypeOf(attnMask) === DataType.BOOL ? 'boolean' : 'additive', value: attnMask, source: graphInputBehind(attnMask).isGraphInput ? graphInputBehind(attnMask).name : undefined, fillValue: elemTypeOf(attnMask) === DataType.BOOL ? -Infinity : undefined, parts: 1 } : undefined,
    kvCache: peeled ? kvCacheOf(peeled.wk, peeled.tk.index, peeled.wv, peeled.tv.index) : cacheOf(pastK, pastV, n.outputs[1], n.outputs[2]),
    scoreType,
    rule: `onnx-attention/${rank}d${pastK ? '+past' : ''}${peeled ? '+gqa-repeat' : ''}`,
    maskIncludesCausal,
    zeroMaskedRows: !!attnMask || topLeft,
    notes,
    presents,
    materialize,
    restore: (b, r) => (rank === 3 ? b.mergeHeads(r) : r),
  }, peeled ? [...takeNodes(peeled.wk, peeled.tk), ...takeNodes(peeled.wv, peeled.tv)] : []);
}

function cacheOf(pk: Value | undefined, pv: Value | undefined, ok: Value | undefined, ov: Value | undefined): KvCache | undefined {
  const c: KvCache = {
    pastKey: pk ? graphInputBehind(pk) : undefined,
    pastValue: pv ? graphInputBehind(pv) : undefined,
    presentKey: ok && used(ok) ? (graphOutputAfter(ok) ?? ok) : undefined,
    presentValue: ov && used(ov) ? (graphOutputAfter(ov) ?? ov) : undefined,
  };
  return c.pastKey || c.pastValue || c.presentKey || c.presentValue ? c : undefined;
}

// ---------------------------------------------------------------------------------------------
// com.microsoft.Attention: packed QKV projection inside the op

function proveMsAttention(n: Node): SitePlan {
  const [X, W, bias, maskIndex, past, attnBias, pastSeqLen] = [0, 1, 2, 3, 4, 5, 6].map((i) => n.inputs[i]);
  if (!X || !W) return no(`${n.describe()} misses its input or weights`, n);
  sameTypeAs(n, X, [W, past]);
  if (n.attrInt('do_rotary', 0)) return no(`${n.describe()}: do_rotary applies rotary embeddings inside the op; not materialized`, n);
  if (n.attrInt('past_present_share_buffer', 0) || pastSeqLen) return no(`${n.describe()}: past and present share one buffer (past_sequence_length); not materialized`, n);
  const heads = n.attrInt('num_heads', 0);
  if (heads <= 0) return no(`${n.describe()}: num_heads is missing`, n);
  const wShape = D(W);
  const total = num(wShape?.[1]);
  if (!wShape || wShape.length !== 2 || total === undefined) return no(`${n.describe()}: weights ${W} must be a [hidden, q+k+v] matrix of known size`, n);
  const sizes = n.attrInts('qkv_hidden_sizes') ?? [total / 3, total / 3, total / 3];
  if (sizes.length !== 3 || sizes.reduce((a, b) => a + b, 0) !== total || !sizes.every((s) => Number.isInteger(s))) return no(`${n.describe()}: qkv_hidden_sizes [${sizes}] do not add up to the weights' ${total} columns`, n);
  if (sizes[0] !== sizes[1]) return no(`${n.describe()}: Q and K hidden sizes differ (${sizes[0]} vs ${sizes[1]})`, n);
  if (sizes.some((s) => s % heads)) return no(`${n.describe()}: hidden sizes [${sizes}] do not divide into ${heads} heads`, n);
  const headDim = sizes[0]! / heads;
  const valueHeadDim = sizes[2]! / heads;
  if (R(X) !== 3) return no(`${n.describe()}: the input must be [B, S, hidden] (rank ${R(X)})`, n);
  const scaleAttr = n.attrFloat('scale', 0);
  const scale = scaleAttr !== 0 ? scaleAttr : 1 / Math.sqrt(headDim);
  const filter = n.attrFloat('mask_filter_value', -10000);
  const scoreType = elemTypeOf(X);
  const causal = n.attrInt('unidirectional', 0) === 1;
  if (past && R(past) !== 5) return no(`${n.describe()}: past must be [2, B, H, P, D]`, n);
  if (attnBias && (R(attnBias) ?? 0) > 4) return no(`${n.describe()}: attention_bias has rank ${R(attnBias)}`, n);
  let kTotal: Value | undefined;
  const keyMask = maskIndex ? keyMaskPart(n, maskIndex, D(X)?.[0], filter, scoreType, () => kTotal!) : undefined;
  const presents = [n.outputs[1]].filter((o): o is Value => used(o));
  const materialize = (b: Builder): Materialized => {
    let proj = b.op('MatMul', [X, W]);
    if (bias) proj = b.op('Add', [proj, bias]);
    const [qp, kp, vp] = b.node('Split', [proj, b.ints(sizes)], { axis: 2 }, 3) as [Value, Value, Value];
    const q = b.splitHeads(qp, heads, headDim);
    let k = b.splitHeads(kp, heads, headDim);
    let v = b.splitHeads(vp, heads, valueHeadDim);
    if (past) {
      const [pk, pv] = b.node('Split', [past, b.ints([1, 1])], { axis: 0 }, 2) as [Value, Value];
      k = b.op('Concat', [b.op('Squeeze', [pk, b.ints([0])]), k], { axis: 2 });
      v = b.op('Concat', [b.op('Squeeze', [pv, b.ints([0])]), v], { axis: 2 });
    }
    kTotal = k;
    const pres: Array<[Value, Value]> = [];
    if (used(n.outputs[1])) pres.push([n.outputs[1]!, b.op('Concat', [b.op('Unsqueeze', [k, b.ints([0])]), b.op('Unsqueeze', [v, b.ints([0])])], { axis: 0 })]);
    let mask = keyMask ? keyMask.build(b) : undefined;
    if (attnBias) mask = b.add(mask, b.cast(attnBias, scoreType));
    return { q, k, v, mask, presents: pres };
  };
  return plan({
    n,
    heads,
    kvHeads: heads,
    headDim,
    valueHeadDim,
    scale,
    causal,
    slidingWindow: undefined,
    q: X,
    k: X,
    v: X,
    mask: maskIndex ? { kind: 'boolean', value: maskIndex, source: graphInputBehind(maskIndex).name, fillValue: filter, parts: attnBias ? 2 : 1 } : attnBias ? { kind: 'additive', value: attnBias, source: undefined, parts: 1 } : undefined,
    kvCache: past || used(n.outputs[1]) ? { pastKey: past ? graphInputBehind(past) : undefined, pastValue: past ? graphInputBehind(past) : undefined, presentKey: used(n.outputs[1]) ? n.outputs[1] : undefined, presentValue: used(n.outputs[1]) ? n.outputs[1] : undefined } : undefined,
    scoreType,
    rule: 'com.microsoft.Attention',
    notes: [],
    presents,
    materialize,
    restore: (b, r) => b.mergeHeads(r),
  });
}

// ---------------------------------------------------------------------------------------------
// com.microsoft.MultiHeadAttention

function proveMha(n: Node): SitePlan {
  const [Qin, Kin, Vin, bias, keyPad, attnBias, pastK, pastV, pastSeqLen, cacheInd] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => n.inputs[i]);
  if (!Qin) return no(`${n.describe()} has no query`, n);
  sameTypeAs(n, Qin, [Kin, Vin, pastK, pastV]);
  if (pastSeqLen || cacheInd) return no(`${n.describe()}: past_sequence_length / cache_indirection (shared buffers, beam search) are not materialized`, n);
  if (used(n.outputs[3])) return no(`${n.describe()}: its qk output is used`, n);
  const heads = n.attrInt('num_heads', 0);
  if (heads <= 0) return no(`${n.describe()}: num_heads is missing`, n);
  const filter = n.attrFloat('mask_filter_value', -10000);
  const scoreType = elemTypeOf(Qin);
  const causal = n.attrInt('unidirectional', 0) === 1;
  let form: 'separate' | 'packed-qkv' | 'packed-kv' | 'bnsh-kv';
  let headDim: number;
  let valueHeadDim: number;
  if (R(Qin) === 5) {
    if (Kin || Vin) return no(`${n.describe()}: a packed [B, S, H, 3, D] query comes without key and value`, n);
    form = 'packed-qkv';
    if (num(D(Qin)![2]) !== heads || num(D(Qin)![3]) !== 3) return no(`${n.describe()}: packed query shape ${JSON.stringify(D(Qin))} is not [B, S, ${heads}, 3, D]`, n);
    headDim = valueHeadDim = num(D(Qin)![4]) ?? no(`${n.describe()}: the head dim is not known`, n);
  } else {
    if (R(Qin) !== 3 || !Kin) return no(`${n.describe()}: query must be [B, S, hidden] with a key`, n);
    const qh = hiddenOf(Qin, n, 'query');
    if (qh % heads) return no(`${n.describe()}: query hidden ${qh} does not divide into ${heads} heads`, n);
    headDim = qh / heads;
    if (R(Kin) === 5) {
      if (Vin) return no(`${n.describe()}: a packed [B, L, H, 2, D] key comes without value`, n);
      form = 'packed-kv';
      if (num(D(Kin)![2]) !== heads || num(D(Kin)![3]) !== 2 || num(D(Kin)![4]) !== headDim) return no(`${n.describe()}: packed key shape ${JSON.stringify(D(Kin))} is not [B, L, ${heads}, 2, ${headDim}]`, n);
      valueHeadDim = headDim;
    } else if (R(Kin) === 4) {
      if (!Vin || R(Vin) !== 4) return no(`${n.describe()}: a [B, H, L, D] key needs a [B, H, L, Dv] value`, n);
      if (pastK || pastV) return no(`${n.describe()}: a [B, H, L, D] key with a past is not materialized`, n);
      form = 'bnsh-kv';
      if (num(D(Kin)![1]) !== undefined && num(D(Kin)![1]) !== heads) return no(`${n.describe()}: key has ${num(D(Kin)![1])} heads, num_heads=${heads}`, n);
      if (num(D(Kin)![3]) !== undefined && num(D(Kin)![3]) !== headDim) return no(`${n.describe()}: key head dim differs from the query's`, n);
      valueHeadDim = num(D(Vin)![3]) ?? no(`${n.describe()}: the value head dim is not known`, n);
    } else {
      if (!Vin || R(Kin) !== 3 || R(Vin) !== 3) return no(`${n.describe()}: key and value must be [B, L, hidden]`, n);
      form = 'separate';
      const kh = hiddenOf(Kin, n, 'key');
      const vh = hiddenOf(Vin, n, 'value');
      if (kh !== headDim * heads) return no(`${n.describe()}: key hidden ${kh} differs from query hidden ${headDim * heads}`, n);
      if (vh % heads) return no(`${n.describe()}: value hidden ${vh} does not divide into ${heads} heads`, n);
      valueHeadDim = vh / heads;
    }
  }
  if (bias && form !== 'separate') return no(`${n.describe()}: a bias with ${form} inputs is not materialized`, n);
  if (!!pastK !== !!pastV) return no(`${n.describe()} has only one of past_key / past_value`, n);
  checkPast(n, pastK, 'past_key', heads, headDim);
  checkPast(n, pastV, 'past_value', heads, valueHeadDim);
  if (attnBias && (R(attnBias) ?? 0) > 4) return no(`${n.describe()}: attention_bias has rank ${R(attnBias)}`, n);
  const scaleAttr = n.attrFloat('scale', 0);
  const scale = scaleAttr !== 0 ? scaleAttr : 1 / Math.sqrt(headDim);
  let kTotal: Value | undefined;
  const keyMask = keyPad ? keyMaskPart(n, keyPad, D(Qin)?.[0], filter, scoreType, () => kTotal!) : undefined;
  const presents = [n.outputs[1], n.outputs[2]].filter((o): o is Value => used(o));
  const materialize = (b: Builder): Materialized => {
    let q: Value, k: Value, v: Value;
    if (form === 'packed-qkv') {
      const [a, c, d] = b.node('Split', [Qin, b.ints([1, 1, 1])], { axis: 3 }, 3) as [Value, Value, Value];
      const sq = (x: Value) => b.transpose(b.op('Squeeze', [x, b.ints([3])]), [0, 2, 1, 3]);
      [q, k, v] = [sq(a), sq(c), sq(d)];
    } else {
      let qp = Qin;
      let kp = Kin!;
      let vp = Vin;
      if (bias) {
        const [bq, bk, bv] = b.node('Split', [bias, b.ints([heads * headDim, heads * headDim, heads * valueHeadDim])], { axis: 0 }, 3) as [Value, Value, Value];
        qp = b.op('Add', [qp, bq]);
        kp = b.op('Add', [kp, bk]);
        vp = b.op('Add', [vp!, bv]);
      }
      q = b.splitHeads(qp, heads, headDim);
      if (form === 'packed-kv') {
        const [c, d] = b.node('Split', [kp, b.ints([1, 1])], { axis: 3 }, 2) as [Value, Value];
        k = b.transpose(b.op('Squeeze', [c, b.ints([3])]), [0, 2, 1, 3]);
        v = b.transpose(b.op('Squeeze', [d, b.ints([3])]), [0, 2, 1, 3]);
      } else if (form === 'bnsh-kv') {
        k = kp;
        v = vp!;
      } else {
        k = b.splitHeads(kp, heads, headDim);
        v = b.splitHeads(vp!, heads, valueHeadDim);
      }
    }
    const kFull = withPast(b, pastK, k);
    const vFull = withPast(b, pastV, v);
    kTotal = kFull;
    const pres: Array<[Value, Value]> = [];
    if (used(n.outputs[1])) pres.push([n.outputs[1]!, presentOf(b, kFull, !!pastK)]);
    if (used(n.outputs[2])) pres.push([n.outputs[2]!, presentOf(b, vFull, !!pastV)]);
    let mask = keyMask ? keyMask.build(b) : undefined;
    if (attnBias) mask = b.add(mask, b.cast(attnBias, scoreType));
    return { q, k: kFull, v: vFull, mask, presents: pres };
  };
  return plan({
    n,
    heads,
    kvHeads: heads,
    headDim,
    valueHeadDim,
    scale,
    causal,
    slidingWindow: undefined,
    q: Qin,
    k: Kin ?? Qin,
    v: Vin ?? Kin ?? Qin,
    mask: keyPad ? { kind: 'boolean', value: keyPad, source: graphInputBehind(keyPad).name, fillValue: filter, parts: attnBias ? 2 : 1 } : attnBias ? { kind: 'additive', value: attnBias, source: undefined, parts: 1 } : undefined,
    kvCache: cacheOf(pastK, pastV, n.outputs[1], n.outputs[2]),
    scoreType,
    rule: `com.microsoft.MultiHeadAttention/${form}`,
    notes: [],
    presents,
    materialize,
    restore: (b, r) => b.mergeHeads(r),
  });
}

// ---------------------------------------------------------------------------------------------
// com.microsoft.GroupQueryAttention

function proveGqa(n: Node): SitePlan {
  // total_sequence_length (input 6) is implied by the past and new lengths in the canonical form
  const [Qin, Kin, Vin, pastK, pastV, seqlensK, , cos, sin, posIds, attnBias, headSink] = Array.from({ length: 12 }, (_, i) => n.inputs[i]);
  if (!Qin) return no(`${n.describe()} has no query`, n);
  sameTypeAs(n, Qin, [Kin, Vin, pastK, pastV]);
  const rotary = n.attrInt('do_rotary', 0) === 1;
  if (rotary && (!cos || !sin)) return no(`${n.describe()}: do_rotary without cos_cache/sin_cache`, n);
  if (!rotary && (cos || sin || posIds)) return no(`${n.describe()}: rotary caches given but do_rotary=0`, n);
  if (rotary && !posIds && !seqlensK) return no(`${n.describe()}: do_rotary without position_ids or seqlens_k to place the tokens`, n);
  if (n.attrFloat('softcap', 0) !== 0) return no(`${n.describe()}: softcap soft-caps the scores (tanh); that is not scale·Q·Kᵀ + mask`, n);
  if (n.attrInt('smooth_softmax', 0) || headSink) return no(`${n.describe()}: smooth softmax / head sinks add an extra softmax term; not materialized`, n);
  if (n.attrInt('qk_output', 0) || used(n.outputs[3])) return no(`${n.describe()}: its qk output is requested`, n);
  const heads = n.attrInt('num_heads', 0);
  const kvHeads = n.attrInt('kv_num_heads', 0);
  if (heads <= 0 || kvHeads <= 0 || heads % kvHeads) return no(`${n.describe()}: num_heads=${heads} and kv_num_heads=${kvHeads} do not make a GQA`, n);
  if (R(Qin) !== 3) return no(`${n.describe()}: query must be [B, S, hidden]`, n);
  const qh = hiddenOf(Qin, n, 'query');
  const packed = !Kin;
  if (packed && Vin) return no(`${n.describe()}: value without key`, n);
  let headDim: number;
  if (packed) {
    if (qh % (heads + 2 * kvHeads)) return no(`${n.describe()}: packed QKV hidden ${qh} does not divide into ${heads}+2·${kvHeads} heads`, n);
    headDim = qh / (heads + 2 * kvHeads);
  } else {
    if (qh % heads) return no(`${n.describe()}: query hidden ${qh} does not divide into ${heads} heads`, n);
    headDim = qh / heads;
    if (!Vin || R(Kin) !== 3 || R(Vin) !== 3) return no(`${n.describe()}: key and value must be [B, S, hidden]`, n);
    if (hiddenOf(Kin!, n, 'key') !== kvHeads * headDim || hiddenOf(Vin, n, 'value') !== kvHeads * headDim) return no(`${n.describe()}: key/value hidden sizes are not ${kvHeads}·${headDim}`, n);
  }
  if (!!pastK !== !!pastV) return no(`${n.describe()} has only one of past_key / past_value`, n);
  checkPast(n, pastK, 'past_key', kvHeads, headDim);
  checkPast(n, pastV, 'past_value', kvHeads, headDim);
  if (attnBias && (R(attnBias) ?? 0) > 4) return no(`${n.describe()}: attention_bias has rank ${R(attnBias)}`, n);
  const scaleAttr = n.attrFloat('scale', 0);
  const scale = scaleAttr !== 0 ? scaleAttr : 1 / Math.sqrt(headDim);
  // onnxruntime (1.30, CPU) lets a query see local_window_size keys, itself included (checked against the kernel in tests/detect/fused.test.ts)
  const lws = n.attrInt('local_window_size', -1);
  const slidingWindow = lws > 0 ? lws : undefined;
  const scoreType = elemTypeOf(Qin);
  const presents = [n.outputs[1], n.outputs[2]].filter((o): o is Value => used(o));
  const materialize = (b: Builder): Materialized => {
    let qp = Qin;
    let kp = Kin;
    let vp = Vin;
    if (packed) [qp, kp, vp] = b.node('Split', [Qin, b.ints([heads * headDim, kvHeads * headDim, kvHeads * headDim])], { axis: 2 }, 3) as [Value, Value, Value];
    if (rotary) {
      // the op rotates Q and K at position seqlens_k[b] + 1 − S + s (s itself in a first prompt), or at position_ids
      let pos = posIds;
      if (!pos) {
        const S = b.op('Gather', [b.op('Shape', [Qin]), b.ints([1], [])], { axis: 0 });
        const steps = b.op('Range', [b.ints([0], []), S, b.ints([1], [])]);
        const last = b.op('Unsqueeze', [b.cast(seqlensK!, DataType.INT64), b.ints([1])]);
        const start = b.op('Sub', [b.op('Add', [last, b.ints([1], [])]), S]);
        pos = b.op('Max', [b.op('Add', [start, b.op('Unsqueeze', [steps, b.ints([0])])]), b.op('Unsqueeze', [steps, b.ints([0])])]);
      }
      const rotDim = num(D(cos!)?.[1]);
      const attrs = (h: number) => ({ interleaved: n.attrInt('rotary_interleaved', 0), num_heads: h, ...(rotDim !== undefined ? { rotary_embedding_dim: 2 * rotDim } : {}) });
      qp = b.node('RotaryEmbedding', [qp, pos, cos!, sin!], attrs(heads), 1, 'com.microsoft')[0]!;
      kp = b.node('RotaryEmbedding', [kp!, pos, cos!, sin!], attrs(kvHeads), 1, 'com.microsoft')[0]!;
    }
    const q = b.splitHeads(qp, heads, headDim);
    const kFull = withPast(b, pastK, b.splitHeads(kp!, kvHeads, headDim));
    const vFull = withPast(b, pastV, b.splitHeads(vp!, kvHeads, headDim));
    const pres: Array<[Value, Value]> = [];
    if (used(n.outputs[1])) pres.push([n.outputs[1]!, presentOf(b, kFull, !!pastK)]);
    if (used(n.outputs[2])) pres.push([n.outputs[2]!, presentOf(b, vFull, !!pastV)]);
    let mask = attnBias ? b.cast(attnBias, scoreType) : undefined;
    if (slidingWindow !== undefined) {
      // keys more than the window behind the query are hidden: query i sits at T − S + i
      const dimOf = (v: Value) => b.op('Squeeze', [b.op('Gather', [b.op('Shape', [v]), b.ints([2], [1])], { axis: 0 }), b.ints([0])]);
      const S = dimOf(q);
      const T = dimOf(kFull);
      const rows = b.op('Add', [b.op('Range', [b.ints([0], []), S, b.ints([1], [])]), b.op('Sub', [T, S])]);
      const cols = b.op('Range', [b.ints([0], []), T, b.ints([1], [])]);
      const far = b.op('LessOrEqual', [b.op('Unsqueeze', [cols, b.ints([0])]), b.op('Unsqueeze', [b.op('Sub', [rows, b.ints([slidingWindow], [])]), b.ints([1])])]);
      mask = b.add(mask, b.op('Where', [far, b.scalarOf(lowestOf(scoreType), scoreType), b.scalarOf(0, scoreType)]));
    }
    return { q, k: kFull, v: vFull, mask, presents: pres };
  };
  return plan({
    n,
    heads,
    kvHeads,
    headDim,
    valueHeadDim: headDim,
    scale,
    causal: true,
    slidingWindow,
    q: Qin,
    k: Kin ?? Qin,
    v: Vin ?? Qin,
    mask: attnBias ? { kind: 'additive', value: attnBias, source: undefined, parts: 1 } : undefined,
    kvCache: cacheOf(pastK, pastV, n.outputs[1], n.outputs[2]),
    scoreType,
    rule: `com.microsoft.GroupQueryAttention${packed ? '/packed' : ''}${rotary ? '/rotary' : ''}`,
    notes: [
      'GroupQueryAttention places new keys at seqlens_k[b] + 1 − S per batch row; the canonical form concatenates past and new, which is the same when every row has the full past (past_key holds exactly P valid rows, the non-shared-buffer layout)',
    ],
    presents,
    materialize,
    restore: (b, r) => b.mergeHeads(r),
  });
}

const UNSUPPORTED_MS = new Set([
  'DecoderMaskedMultiHeadAttention',
  'DecoderMaskedSelfAttention',
  'PackedAttention',
  'PackedMultiHeadAttention',
  'SparseAttention',
  'PagedAttention',
  'LongformerAttention',
  'QAttention',
  'DecoderAttention',
  'QOrderedAttention',
]);

export const fusedRules: AnchorRule[] = [
  {
    name: 'onnx-attention',
    anchors: (n) => n.domain === '' && n.opType === 'Attention',
    prove: (n, cx) => ((current = cx.shapes), proveOnnxAttention(n, cx)),
  },
  {
    name: 'com.microsoft.Attention',
    anchors: (n) => n.domain === 'com.microsoft' && n.opType === 'Attention',
    prove: (n, cx) => ((current = cx.shapes), proveMsAttention(n)),
  },
  {
    name: 'com.microsoft.MultiHeadAttention',
    anchors: (n) => n.domain === 'com.microsoft' && n.opType === 'MultiHeadAttention',
    prove: (n, cx) => ((current = cx.shapes), proveMha(n)),
  },
  {
    name: 'com.microsoft.GroupQueryAttention',
    anchors: (n) => n.domain === 'com.microsoft' && n.opType === 'GroupQueryAttention',
    prove: (n, cx) => ((current = cx.shapes), proveGqa(n)),
  },
  {
    name: 'com.microsoft (other attention ops)',
    anchors: (n) => n.domain === 'com.microsoft' && UNSUPPORTED_MS.has(n.opType),
    prove: (n) => no(`${n.describe()}: this fused attention form (packed sequences, shared KV buffers or quantized weights) has no exact standard-op spelling here`, n),
  },
];

