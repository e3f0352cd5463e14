/**
 * The softmax-anchored rule: proves, link by link, that a Softmax computes attention probabilities
 *
 *     softmax(scale · Q·Kᵀ (+ masks)) · V
 *
 * whatever exporter wrote it. Backwards from the softmax: Casts, layout changes, constant scales
 * (Mul/Div, √s on both Q and K), additive masks (Add/Sub) and boolean masks (Where with a constant
 * fill) down to the Q·Kᵀ MatMul. Forwards: Casts, the IsNaN+Where guard, Dropout and layout changes
 * up to the MatMul with V. Each MatMul operand is then walked up (src/attention/layout.ts) to the
 * point where it is a [B, H, S, D] tensor, a GQA repeat is taken apart, and every constant the site
 * relies on is read and checked. The mask is proven by evaluation (src/attention/mask.ts).
 */
import { isFloatType } from '../onnx/dtype.js';
import type { Node, Value } from '../ir/graph.js';
import { either, explain, match, op, scalar, value } from '../pattern/index.js';
import type { Builder } from './build.js';
import { staticScalar } from './evaluate.js';
import {
  K_ORDER,
  O_ORDER,
  Q_ORDER,
  V_ORDER,
  batchLabels,
  canonicalPerm,
  downThrough,
  showLabels,
  walkUp,
  type Atom,
  type Axis,
  type Labels,
  type Walk,
} from './layout.js';
import { buildAdditiveMask, type MaskAnalyzer, type MaskPart } from './mask.js';
import { exclusiveNodes, type Materialized, type SitePlan } from './site-impl.js';
import type { AttentionMask, KvCache } from './site.js';
import { elemTypeOf, kindOf, kvCacheOf } from './common.js';
import { Unproven, checkMerges, chooseTake, materializeOperand, no, takeNodes, type Take } from './proof.js';

export { Unproven };
import type { Shapes } from './shapes.js';

const QK_OPS = new Set(['MatMul', 'FusedMatMul']);

/** Whether `v` is computed from a MatMul of two non-constant operands through score-like ops (bounded). */
export function reachesQK(v: Value, depth = 10): boolean {
  const seen = new Set<Value>();
  const stack: Array<[Value, number]> = [[v, 0]];
  const through = new Set(['Cast', 'Identity', 'Add', 'Sub', 'Mul', 'Div', 'Where', 'Reshape', 'Transpose', 'Unsqueeze', 'Squeeze', 'Tanh']);
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (seen.has(x) || d > depth) continue;
    seen.add(x);
    const n = x.producer;
    if (!n) continue;
    if (QK_OPS.has(n.opType) && n.inputs.slice(0, 2).every((i) => i && !i.isConstant)) return true;
    if (n.domain !== '' || !through.has(n.opType)) continue;
    for (const i of n.inputs) if (i) stack.push([i, d + 1]);
  }
  return false;
}

/** Whether a Softmax feeds, through the usual post-softmax ops, the left operand of a MatMul. */
export function feedsMatMul(sm: Node): boolean {
  const seen = new Set<Value>();
  const stack: Array<[Value, number]> = [[sm.output(0), 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (seen.has(x) || d > 8) continue;
    seen.add(x);
    for (const u of x.uses()) {
      const n = u.node;
      if (n.opType === 'MatMul' && u.index === 0) return true;
      if (['Cast', 'Identity', 'Dropout', 'Where', 'IsNaN', 'Reshape', 'Transpose', 'Unsqueeze', 'Squeeze'].includes(n.opType) && n.outputs[0]) stack.push([n.outputs[0], d + 1]);
    }
  }
  return false;
}

type ScoreHop =
  | { node: Node; kind: 'layout' | 'cast' }
  | { node: Node; kind: 'scale'; factor: number }
  | { node: Node; kind: 'mask'; part: Omit<MaskPart, 'labels'>; scoresInput: number };

const isFloatCast = (n: Node): boolean => isFloatType(n.attrInt('to', 0)) && (isFloatType(n.inputs[0]?.type?.elemType ?? 0) || !n.inputs[0]?.type);

/** A constant, or a value computed from constants and static shapes (`1/sqrt(Shape(q)[-1])`). */
const folded = (v: Value): number[] | undefined => {
  const x = staticScalar(v);
  return x === undefined ? undefined : [x];
};
// scale · x, written Mul(x, s), Mul(s, x) or Div(x, s)
const scaleLink = either(
  op('Mul', [value('x'), scalar('factor', { fold: folded })], { commutative: true }),
  op('Div', [value('x'), scalar('divisor', { fold: folded, check: (v) => (v[0] !== 0 ? true : 'divides by 0') })]),
);
// Where(c, scores, fill) keeps a score where c holds; Where(c, fill, scores) masks it there
const whereKeeps = op('Where', [value('cond'), value('scores'), scalar('fill', { fold: folded })]);
const whereDrops = op('Where', [value('cond'), scalar('fill', { fold: folded }), value('scores')]);

// Where(IsNaN(p), 0, p): the guard some exporters put after a softmax over fully masked rows
const nanGuard = op('Where', [op('IsNaN', [value('p')], { name: 'isnan' }), scalar('zero', { check: (v) => (v.every((x) => x === 0) ? true : 'the guard does not put 0') }), value('p')], { name: 'where' });

/** Entries of an integer tensor that are the same under both size configurations (static), else undefined. */
function staticEntries(shapes: Shapes, v: Value | undefined): Array<number | undefined> | undefined {
  const a = shapes.intsIn(v, 0);
  const b = shapes.intsIn(v, 1);
  if (!a || !b || a.length !== b.length) return undefined;
  return a.map((x, i) => (x === b[i] ? x : undefined));
}

/** For operands broadcast over an axis of the MatMul: a query-head axis of size 1 is one kv head; a repeat axis is a unit. */
function broadcastLabels(shapes: Shapes, operand: Value, labels: Axis[], out: Value, who: string, mm: Node): Axis[] {
  const os = shapes.dims(operand);
  const rs = shapes.dims(out);
  if (!os || !rs) return labels;
  if (os.length !== rs.length) no(`${who} of ${mm.describe()} has rank ${os.length}, the product rank ${rs.length}`, mm);
  return labels.map((a, i) => {
    if (i >= labels.length - 2) return a;
    if (os[i] === 1 && rs[i] !== 1) {
      if (a.length === 1 && a[0] === 'h') return ['g'];
      if (a.length === 1 && a[0] === 'r') return [];
      no(`${who} of ${mm.describe()} is broadcast over ${showLabels([a])}`, mm);
    }
    return a;
  });
}

export interface SoftmaxContext {
  masks: MaskAnalyzer;
  shapes: Shapes;
  opset: number;
}

export function proveSoftmax(sm: Node, cx: SoftmaxContext): SitePlan {
  const x = sm.inputs[0];
  if (!x) return no(`${sm.describe()} has no input`, sm);
  const shapes = cx.shapes;
  const rank = shapes.rank(x);
  if (rank === undefined) return no(`${sm.describe()}: the rank of its input ${x} is unknown`, sm);
  const axisRaw = sm.attrInt('axis', cx.opset >= 13 ? -1 : 1);
  const axis = axisRaw < 0 ? axisRaw + rank : axisRaw;
  if (axis !== rank - 1) return no(`${sm.describe()} normalizes axis ${axisRaw}, not the last axis of its rank-${rank} input`, sm);

  // ---- backwards: scores = scale · Q·Kᵀ (+ masks)
  const hops: ScoreHop[] = [];
  let cur = x;
  let outer = 1;
  let qk: Node | undefined;
  for (let guard = 0; guard < 64 && !qk; guard++) {
    const p = cur.producer;
    if (!p) return no(`${sm.describe()}: its input is not scale·Q·Kᵀ: the chain reaches ${cur} (${cur.isGraphInput ? 'a graph input' : 'a constant'}) before any MatMul`, sm);
    if (p.domain !== '' && p.opType !== 'FusedMatMul') return no(`${sm.describe()}: its input is not scale·Q·Kᵀ: ${p.describe()} sits between`, p);
    switch (p.opType) {
      case 'MatMul':
      case 'FusedMatMul':
        qk = p;
        break;
      case 'Identity':
        hops.push({ node: p, kind: 'layout' });
        cur = p.input(0);
        break;
      case 'Cast':
        if (!isFloatCast(p)) return no(`${sm.describe()}: ${p.describe()} casts the scores to a non-float type`, p);
        hops.push({ node: p, kind: 'cast' });
        cur = p.input(0);
        break;
      case 'Reshape':
      case 'Transpose':
      case 'Unsqueeze':
      case 'Squeeze':
        hops.push({ node: p, kind: 'layout' });
        cur = p.input(0);
        break;
      case 'Mul':
      case 'Div': {
        const m = match(scaleLink, cur);
        if (!m.ok) {
          const other = reachesQK(p.input(0)) ? p.input(1) : p.input(0);
          return no(`${sm.describe()}: the scale of Q·Kᵀ is not a constant: ${p.describe()} multiplies by ${other}, which is computed at run time`, p);
        }
        const f = m.bindings.maybeData<number>('factor') ?? 1 / m.bindings.data<number>('divisor');
        outer *= f;
        hops.push({ node: p, kind: 'scale', factor: f });
        cur = m.bindings.value('x');
        break;
      }
      case 'Add':
      case 'Sub': {
        const [a, b] = [p.input(0), p.input(1)];
        const ra = reachesQK(a);
        const rb = reachesQK(b);
        if (ra && rb) return no(`${sm.describe()}: both operands of ${p.describe()} come from a MatMul; the scores are not one Q·Kᵀ`, p);
        if (!ra && !rb) return no(`${sm.describe()}: its input is not scale·Q·Kᵀ: neither operand of ${p.describe()} comes from a Q·Kᵀ MatMul`, p);
        if (p.opType === 'Sub' && rb) return no(`${sm.describe()}: ${p.describe()} subtracts the scores from ${a}`, p);
        const maskV = ra ? b : a;
        hops.push({ node: p, kind: 'mask', part: { kind: 'additive', value: maskV, factor: p.opType === 'Sub' ? -outer : outer, node: p }, scoresInput: ra ? 0 : 1 });
        cur = ra ? a : b;
        break;
      }
      case 'Where': {
        if (reachesQK(p.input(0))) return no(`${sm.describe()}: the condition of ${p.describe()} depends on the scores`, p);
        const keep = match(whereKeeps, cur);
        const drop = keep.ok ? undefined : match(whereDrops, cur);
        const m = keep.ok ? keep : drop!;
        if (!m.ok || !reachesQK(m.bindings.value('scores'))) return no(`${sm.describe()}: ${p.describe()} does not mask the scores with a constant fill${m.ok ? '' : ` (${explain(m.failure)})`}`, p);
        const fill = m.bindings.data<number>('fill');
        hops.push({ node: p, kind: 'mask', part: { kind: 'boolean', value: m.bindings.value('cond'), keepWhenTrue: keep.ok, fill: fill * outer, factor: outer, node: p }, scoresInput: keep.ok ? 1 : 2 });
        cur = m.bindings.value('scores');
        break;
      }
      case 'Tanh':
        return no(`${sm.describe()}: the scores are soft-capped (tanh) before the softmax; that is not scale·Q·Kᵀ + mask`, p);
      default:
        return no(`${sm.describe()}: its input is not scale·Q·Kᵀ (+ mask): ${p.describe()} sits between the softmax and any Q·Kᵀ MatMul`, p);
    }
  }
  if (!qk) return no(`${sm.describe()}: no Q·Kᵀ MatMul within 64 links`, sm);
  if (qk.opType === 'FusedMatMul') {
    if (qk.attrInt('transA', 0) || qk.attrInt('transBatchA', 0) || qk.attrInt('transBatchB', 0)) return no(`${qk.describe()} transposes its first operand or batches`, qk);
    const alpha = qk.attrFloat('alpha', 1);
    outer *= alpha;
  }
  const qkOut = qk.output(0);
  const qkRank = shapes.rank(qkOut);
  const batch = qkRank !== undefined ? batchLabels(qkRank) : undefined;
  if (!batch) return no(`${qk.describe()}: its product has rank ${qkRank ?? 'unknown'}; attention scores are [B, H, S, T], [B·H, S, T] or [B, Hkv, G, S, T]`, qk);
  const scoreType = elemTypeOf(qkOut);

  // ---- labels forwards from the product to the softmax; mask parts learn where they apply. The product is
  // Q·Kᵀ ([.., S, T]) or, written the other way round, K·Qᵀ ([.., T, S]): the softmax axis tells which.
  const forward = (rows: Atom, cols: Atom): { labels: Labels; parts: MaskPart[] } => {
    let labels: Labels = [...batch, [rows], [cols]];
    const parts: MaskPart[] = [];
    for (let i = hops.length - 1; i >= 0; i--) {
      const h = hops[i]!;
      if (h.kind === 'layout') {
        const next = downThrough(h.node, labels, shapes);
        if (typeof next === 'string') return no(`${sm.describe()}: between Q·Kᵀ and the softmax, ${next}`, h.node);
        labels = next;
      } else if (h.kind === 'mask') {
        const outRank = shapes.rank(h.node.output(0));
        if (outRank !== undefined && outRank !== labels.length) {
          return no(`${sm.describe()}: the mask ${h.part.value} (rank ${shapes.rank(h.part.value)}) broadcasts the rank-${labels.length} scores to rank ${outRank} at ${h.node.describe()}`, h.node);
        }
        parts.push({ ...h.part, labels });
      }
    }
    return { labels, parts };
  };
  let orient: 'qk' | 'kq' = 'qk';
  let { labels, parts } = forward('s', 't');
  if (labels[rank - 1]?.length === 1 && labels[rank - 1]![0] === 's') {
    orient = 'kq';
    ({ labels, parts } = forward('t', 's'));
  }
  if (labels[rank - 1]?.length !== 1 || labels[rank - 1]![0] !== 't') return no(`${sm.describe()} normalizes over ${showLabels([labels[rank - 1] ?? []])}, not over the keys`, sm);

  // ---- forwards: probabilities · V
  let pCur = sm.output(0);
  let pLabels = labels;
  const post: Node[] = [];
  let guarded = false;
  let pv: Node | undefined;
  for (let guard = 0; guard < 32 && !pv; guard++) {
    const uses = pCur.uses();
    const isnan = uses.find((u) => u.node.opType === 'IsNaN' && u.node.domain === '');
    if (isnan) {
      const w = isnan.node.output(0).uses().find((u) => u.node.opType === 'Where');
      const m = w ? match(nanGuard, w.node.output(0)) : undefined;
      if (m?.ok && m.bindings.value('p') === pCur) {
        post.push(isnan.node, w!.node);
        guarded = true;
        pCur = w!.node.output(0);
        continue;
      }
    }
    const path = uses.filter((u) => {
      const n = u.node;
      if (n.domain !== '') return false;
      if (n.opType === 'MatMul') return u.index === 0;
      if (n.opType === 'Cast') return isFloatCast(n);
      if (n.opType === 'Dropout') return u.index === 0;
      return ['Identity', 'Reshape', 'Transpose', 'Unsqueeze', 'Squeeze'].includes(n.opType) && u.index === 0;
    });
    if (path.length !== 1) {
      const what = uses.map((u) => u.node.describe()).join(', ') || 'nothing';
      return no(`${sm.describe()}: its probabilities are not multiplied by V: ${pCur} goes to ${what}`, sm);
    }
    const n = path[0]!.node;
    if (n.opType === 'MatMul') {
      pv = n;
      break;
    }
    const next = downThrough(n, pLabels, shapes);
    if (typeof next === 'string') return no(`${sm.describe()}: after the softmax, ${next}`, n);
    pLabels = next;
    post.push(n);
    pCur = n.output(0);
  }
  if (!pv) return no(`${sm.describe()}: no MatMul with V after the softmax`, sm);
  const pr = pLabels.length;
  if (pLabels[pr - 1]?.[0] !== 't' || pLabels[pr - 2]?.[0] !== 's') return no(`${pv.describe()}: the probabilities arrive as ${showLabels(pLabels)}, not [.., S, T]`, pv);
  const pBatch = pLabels.slice(0, -2) as Axis[];
  const pvOut = pv.output(0);

  // ---- operands
  const transB = qk.opType === 'FusedMatMul' && qk.attrInt('transB', 0) === 1;
  const [qIn, kIn] = orient === 'qk' ? [0, 1] : [1, 0];
  const [r0, r1]: Atom[] = orient === 'qk' ? ['s', 't'] : ['t', 's'];
  const in0 = broadcastLabels(shapes, qk.input(0), [...batch, [r0], ['d']], qkOut, 'the first operand', qk);
  const in1 = broadcastLabels(shapes, qk.input(1), transB ? [...batch, [r1], ['d']] : [...batch, ['d'], [r1]], qkOut, 'the second operand', qk);
  const qL = orient === 'qk' ? in0 : in1;
  const kL = orient === 'qk' ? in1 : in0;
  const vL = broadcastLabels(shapes, pv.input(1), [...pBatch, ['t'], ['e']], pvOut, 'V', pv);
  if (qk.input(0) === qk.input(1)) return no(`${qk.describe()} multiplies a tensor with itself`, qk);
  const wq = walkUp(qk.input(qIn), qL, { allowScale: true, splitHeads: false, shapes });
  const wk = walkUp(qk.input(kIn), kL, { allowScale: true, splitHeads: true, shapes });
  const wv = walkUp(pv.input(1), vL, { allowScale: false, splitHeads: true, shapes });
  checkMerges(wq, 'Q');
  checkMerges(wk, 'K');
  checkMerges(wv, 'V');
  const tq = chooseTake(wq, Q_ORDER, 'Q');
  const tk = chooseTake(wk, K_ORDER, 'K');
  const tv = chooseTake(wv, V_ORDER, 'V');
  const qv = wq.steps[tq.index]!.value;
  const kv = wk.steps[tk.index]!.value;
  const vv = wv.steps[tv.index]!.value;
  const target = (w: Walk, t: Take) => w.steps[t.replayTo ?? t.index]!;
  const qT = target(wq, tq);
  const kT = target(wk, tk);
  const vT = target(wv, tv);

  // ---- sizes: from shapes, cross-checked with every Reshape constant on the way
  const sizeOf = (step: { value: Value; labels: Labels }, atom: Atom | Atom[], what: string): number => {
    const atoms = Array.isArray(atom) ? atom : [atom];
    const i = step.labels.findIndex((a) => a.length === 1 && atoms.includes(a[0]!));
    const d = i >= 0 ? shapes.staticDim(step.value, i) : undefined;
    if (d === undefined) return no(`${what} of ${step.value} is not a known number (shape ${JSON.stringify(shapes.dims(step.value) ?? null)})`, step.value.producer ?? qk);
    return d;
  };
  const heads = sizeOf(qT, 'h', 'the query head count');
  const headDim = sizeOf(qT, 'd', 'the head dim');
  const kvHeads = sizeOf(kT, ['g', 'h'], 'the key head count');
  const kDim = sizeOf(kT, 'd', 'the key head dim');
  const vHeads = sizeOf(vT, ['g', 'h'], 'the value head count');
  const valueHeadDim = sizeOf(vT, 'e', 'the value head dim');
  if (kDim !== headDim) return no(`${qk.describe()}: Q head dim ${headDim} and K head dim ${kDim} differ`, qk);
  if (vHeads !== kvHeads) return no(`${pv.describe()}: K has ${kvHeads} heads, V ${vHeads}`, pv);
  if (heads % kvHeads !== 0) return no(`${qk.describe()}: ${heads} query heads are not a multiple of ${kvHeads} kv heads`, qk);
  for (const [w, who] of [[wk, 'K'], [wv, 'V']] as const) {
    for (const s of w.steps) {
      if (s.hop?.kind === 'repeat' && s.hop.repeat !== undefined && s.hop.repeat !== heads / kvHeads) {
        return no(`${who} is repeated ${s.hop.repeat}× but ${heads} query heads over ${kvHeads} kv heads need ${heads / kvHeads}×`, s.hop.node);
      }
    }
  }
  const expect: Partial<Record<Atom, number>> = { h: heads, g: kvHeads, d: headDim, e: valueHeadDim };
  for (const w of [wq, wk, wv]) {
    for (const s of w.steps) {
      const n = s.hop?.node;
      if (n?.opType !== 'Reshape') continue;
      const tgt = staticEntries(shapes, n.inputs[1]);
      if (!tgt || tgt.length !== s.labels.length) continue;
      s.labels.forEach((a, i) => {
        const want = a.length === 1 ? expect[a[0]!] : undefined;
        const got = tgt[i];
        if (want !== undefined && typeof got === 'number' && got > 0 && got !== want) {
          no(`${n.describe()} reshapes axis ${showLabels([a])} to ${got}, but the shapes say ${want}`, n);
        }
      });
    }
  }

  // ---- scale
  let scale = outer;
  for (const [w, t] of [[wq, tq], [wk, tk]] as const) for (const s of w.steps.slice(0, t.index)) if (s.hop?.kind === 'scale') scale *= s.hop.factor!;
  if (!Number.isFinite(scale) || scale === 0) return no(`${sm.describe()}: the scale ${scale} is not a usable number`, sm);

  // ---- masks: shapes that broadcast to [B, Hq, S, T] (or that can be carried there: transposed, B·H unmerged)
  for (const p of parts) {
    const shape = shapes.dims(p.value);
    const r = shape?.length;
    if (r === undefined) return no(`the mask ${p.value} at ${p.node?.describe()} has unknown rank`, p.node);
    const at = showLabels(p.labels);
    const clean = canonicalPerm(p.labels, [['b'], ['h'], ['s'], ['t']]);
    const leadingOnes = !!shape && shape.slice(0, -2).every((d) => d === 1);
    if (clean) {
      if (r > 4) return no(`the mask ${p.value} has rank ${r}; scores are [B, H, S, T]`, p.node);
      if (r === 3 && shape![0] !== 1 && shape![0] !== heads) return no(`the mask ${p.value} has rank 3 with leading dim ${String(shape![0])}: it would broadcast over the head axis of the [B, H, S, T] scores, not the batch`, p.node);
      if (!clean.perm.every((x, i) => x === i)) {
        p.toCanonical = clean.perm;
        p.rank = r;
      }
    } else if (p.labels.length === 3 && p.labels[0]!.join('') === 'bh' && p.labels[1]![0] === 's' && r === 3 && !leadingOnes) {
      // a [B·H, S|1, T] bias on [B·H, S, T] scores (ALiBi-style): its first axis must be the scores' B·H
      const scoresDim = shapes.dims(p.node?.outputs[0])?.[0];
      if (shape![0] !== scoresDim) return no(`the mask ${p.value} (shape ${JSON.stringify(shape)}) is added to scores laid out ${at} but its first axis is not B·H`, p.node);
      p.unmergeHeads = heads;
    } else if (r > 2 && !leadingOnes) {
      return no(`the mask ${p.value} (shape ${JSON.stringify(shape)}) is added to scores laid out ${at}; only masks of rank ≤ 2 can be carried to [B, H, S, T]`, p.node);
    } else if (p.labels[p.labels.length - 1]![0] !== 't') {
      if (r >= 2 && shape![r - 1] !== 1 && shape![r - 2] !== 1) {
        p.toCanonical = [0, 1, 3, 2];
        p.rank = r;
      } else if (r >= 1 && shape![r - 1] !== 1) return no(`the mask ${p.value} is laid out ${at}; a vector along the query axis cannot be carried to [.., S, T]`, p.node);
    }
    if (p.kind === 'additive' && !isFloatType(elemTypeOf(p.value))) return no(`the additive mask ${p.value} is not a float tensor`, p.node);
  }

  // ---- output side
  const outSteps: Array<{ value: Value; labels: Labels; node?: Node }> = [{ value: pvOut, labels: [...pBatch, ['s'], ['e']] }];
  for (let guard = 0; guard < 16; guard++) {
    const last = outSteps[outSteps.length - 1]!;
    if (last.value.isGraphOutput) break;
    const uses = last.value.uses();
    if (uses.length !== 1 || uses[0]!.index !== 0) break;
    const n = uses[0]!.node;
    if (n.domain !== '' || !['Transpose', 'Reshape', 'Identity', 'Cast'].includes(n.opType)) break;
    if (n.opType === 'Cast' && !isFloatCast(n)) break;
    const next = downThrough(n, last.labels, shapes);
    if (typeof next === 'string') break;
    outSteps.push({ value: n.output(0), labels: next, node: n });
  }
  let outIdx = 0;
  for (let i = outSteps.length - 1; i >= 0; i--) if (canonicalPerm(outSteps[i]!.labels, O_ORDER)) {
    outIdx = i;
    break;
  }
  const outStep = outSteps[outIdx]!;
  if (!layoutSupported(outStep.labels)) return no(`${pv.describe()}: the attention output is laid out ${showLabels(outStep.labels)}, which cannot be rebuilt from [B, H, S, Dv]`, pv);

  // ---- the nodes only this site uses
  const candidates = new Set<Node>([
    ...takeNodes(wq, tq),
    ...takeNodes(wk, tk),
    ...takeNodes(wv, tv),
    qk,
    ...hops.map((h) => h.node),
    sm,
    ...post,
    pv,
    ...outSteps.slice(1, outIdx + 1).map((s) => s.node!),
  ]);
  const nodes = exclusiveNodes(candidates, outStep.value);
  if (!nodes.includes(pv)) return no(`${pv.describe()}: its product is used outside the attention`, pv);

  // ---- cache, kind, mask meaning
  const kvCache: KvCache | undefined = kvCacheOf(wk, tk.index, wv, tv.index);
  const kind = kindOf(qv, kv, shapes);
  const notes: string[] = [];
  const sAxis = qT.labels.findIndex((a) => a[0] === 's');
  const tAxis = kT.labels.findIndex((a) => a[0] === 't');
  const facts = parts.length ? cx.masks.analyze(parts, { q: qT.value, qAxis: sAxis, k: [{ value: kT.value, axis: tAxis }], signature: `${String(shapes.dims(qT.value)?.[sAxis])}|${String(shapes.dims(kT.value)?.[tAxis])}` }) : undefined;
  if (facts?.note && parts.length) notes.push(`causal not claimed: ${facts.note}`);
  const first = parts[0];
  const mask: AttentionMask | undefined = first
    ? {
        kind: first.kind,
        value: first.value,
        source: facts?.sources[0],
        fillValue: first.kind === 'boolean' ? first.fill : undefined,
        parts: parts.length,
        keyPadding: facts?.keyPadding,
      }
    : undefined;
  const implied = !!facts?.impliedByCausal && facts.slidingWindow === undefined;

  const restore = (b: Builder, result: Value): Value => toLayout(b, result, outStep.labels, heads, kvHeads);
  const materialize = (b: Builder): Materialized => ({
    q: materializeOperand(b, wq, tq),
    k: materializeOperand(b, wk, tk),
    v: materializeOperand(b, wv, tv),
    mask: implied ? undefined : buildAdditiveMask(b, parts, scoreType),
  });

  return {
    rule: ruleName(wq, wk, parts, guarded, batch.length),
    anchor: sm,
    kind,
    q: qv,
    k: kv,
    v: vv,
    heads,
    kvHeads,
    headDim,
    valueHeadDim,
    scale,
    causal: !!facts?.causal,
    slidingWindow: facts?.slidingWindow,
    mask,
    maskImpliedByCausal: implied,
    maskIncludesCausal: !!facts?.causal && !implied,
    kvCache,
    output: outStep.value,
    nodes,
    insertBefore: outStep.value.producer ?? pv,
    notes,
    scoreType,
    materialize,
    restore,
    nanGuard: guarded,
  };
}

function ruleName(wq: Walk, wk: Walk, parts: MaskPart[], guarded: boolean, batchAxes: number): string {
  const tags: string[] = [];
  if (batchAxes === 1) tags.push('bmm3d');
  if (batchAxes === 3) tags.push('grouped5d');
  if (wq.steps.some((s) => s.hop?.kind === 'scale') && wk.steps.some((s) => s.hop?.kind === 'scale')) tags.push('split-scale');
  if (wk.steps.some((s) => s.hop?.kind === 'repeat')) tags.push('gqa-repeat');
  if (parts.some((p) => p.kind === 'boolean')) tags.push('where-mask');
  if (guarded) tags.push('nan-guard');
  return `softmax-chain${tags.length ? `/${tags.join('+')}` : ''}`;
}

/** Whether `toLayout` can produce `labels` from a canonical result. */
export function layoutSupported(labels: Labels): boolean {
  if (canonicalPerm(labels, O_ORDER)) return true;
  if (labels.length === 5 && labels.map((a) => a.join('')).join(',') === 'b,g,r,s,e') return true;
  const flat = labels.flatMap((a) => a);
  const canon = ['b', 'h', 's', 'e'];
  return flat.length === 4 && canon.every((c) => flat.includes(c as Atom)) && labels.filter((a) => a.length > 1).length <= 1;
}

/** A canonical [B, H, S, E] result in the layout `labels` describes (one Transpose, and a Reshape if axes merge). */
export function toLayout(b: Builder, result: Value, labels: Labels, heads: number, kvHeads: number): Value {
  const canon: Atom[] = ['b', 'h', 's', 'e'];
  const clean = canonicalPerm(labels, O_ORDER);
  if (clean) {
    // labels[i] holds atom canon[perm^-1]: out axis i reads canonical axis index of labels[i]
    return b.transpose(result, labels.map((a) => canon.indexOf(a[0]!)));
  }
  // grouped [b, g, r, s, e]
  if (labels.length === 5 && labels.map((a) => a.join('')).join(',') === 'b,g,r,s,e') {
    return b.reshape(result, [0, kvHeads, heads / kvHeads, -1, result.shape?.[3] as number ?? -1]);
  }
  const flat = labels.flatMap((a) => a);
  const t = b.transpose(result, flat.map((a) => canon.indexOf(a)));
  const shape = b.op('Shape', [t]);
  const pieces: Value[] = [];
  let pos = 0;
  for (const a of labels) {
    if (a.length === 1) pieces.push(b.op('Gather', [shape, b.ints([pos])], { axis: 0 }));
    else pieces.push(b.ints([a.length === 0 ? 1 : -1]));
    pos += a.length;
  }
  const target = pieces.length === 1 ? pieces[0]! : b.op('Concat', pieces, { axis: 0 });
  return b.op('Reshape', [t, target]);
}
