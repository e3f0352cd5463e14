/**
 * Layout reasoning: what each axis of a tensor *means* on the way into or out of an attention.
 *
 * Every axis carries a list of atoms (merged in row-major order): b batch, h query heads, g kv heads,
 * r the GQA repeat index (h = g·rep + r), s query positions, t key positions, d head dim, e value
 * head dim. `[]` is a unit axis. A MatMul operand's labels are known from its role (Q is
 * [.., s, d], Kᵀ is [.., d, t]); walking up through Transpose / Reshape / Unsqueeze / Squeeze /
 * Expand / Tile, scales and Casts keeps them, until an op that is not a layout change. Any value on
 * the way whose axes are exactly {b, h|g, s|t, d|e} is a canonical [B, H, S, D] tensor up to one
 * Transpose; recognition takes Q, K and V from such points, and a GQA repeat is taken apart into
 * kv heads and its factor instead of being trusted from a flag.
 */
import type { Dim, Node, Value } from '../ir/graph.js';
import { staticScalar } from './evaluate.js';
import type { Shapes } from './shapes.js';

export type Atom = 'b' | 'h' | 'g' | 'r' | 's' | 't' | 'd' | 'e';
export type Axis = readonly Atom[];
export type Labels = readonly Axis[];

export function showLabels(l: Labels): string {
  return `[${l.map((a) => (a.length === 0 ? '1' : a.length === 1 ? a[0] : `(${a.join(' ')})`)).join(', ')}]`;
}

/** A merged (g r) axis is the query-head axis. */
function normalize(l: Axis[]): Axis[] {
  return l.map((a) => {
    const out: Atom[] = [];
    for (let i = 0; i < a.length; i++) {
      if (a[i] === 'g' && a[i + 1] === 'r') {
        out.push('h');
        i++;
      } else out.push(a[i]!);
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// symbolic dims as monomials: c · s1 · s2 ...

interface Mono {
  c: number;
  s: string[];
}

function toMono(d: Dim): Mono | undefined {
  if (typeof d === 'number') return { c: d, s: [] };
  if (d === undefined) return undefined;
  if (/[+\-/%~]/.test(d)) return { c: 1, s: [d] };
  const m: Mono = { c: 1, s: [] };
  for (const t of d.split('*')) {
    if (/^\d+$/.test(t)) m.c *= Number(t);
    else m.s.push(t);
  }
  m.s.sort();
  return m;
}

const isUnit = (m: Mono): boolean => m.c === 1 && m.s.length === 0;
const same = (a: Mono, b: Mono): boolean => a.c === b.c && a.s.length === b.s.length && a.s.every((x, i) => x === b.s[i]);
const mul = (a: Mono, b: Mono): Mono => ({ c: a.c * b.c, s: [...a.s, ...b.s].sort() });

function divides(a: Mono, b: Mono): boolean {
  if (a.c === 0 || b.c % a.c !== 0) return false;
  const rest = [...b.s];
  for (const x of a.s) {
    const i = rest.indexOf(x);
    if (i < 0) return false;
    rest.splice(i, 1);
  }
  return true;
}

function divide(a: Mono, b: Mono): Mono | undefined {
  if (!divides(b, a)) return undefined;
  const rest = [...a.s];
  for (const x of b.s) rest.splice(rest.indexOf(x), 1);
  return { c: a.c / b.c, s: rest };
}

/** Fills one unknown dim on one side from the total of the other. */
function solveOne(a: Array<Mono | undefined>, b: Array<Mono | undefined>): void {
  const unknown = a.flatMap((m, i) => (m ? [] : [i]));
  if (unknown.length !== 1 || b.some((m) => !m)) return;
  const total = b.reduce<Mono>((p, m) => mul(p, m!), { c: 1, s: [] });
  const known = a.reduce<Mono>((p, m) => (m ? mul(p, m) : p), { c: 1, s: [] });
  a[unknown[0]!] = divide(total, known);
}

/**
 * The labels of the other side of a Reshape, given one side's dims and labels. `zeroCopy` lists the
 * target positions that copy the input dim (a 0 in the target). With `splitHeads`, a lone query-head
 * axis may split into (kv head, repeat) — the shape of a GQA repeat. Unit axes travel with the group
 * that follows them, so a static size-1 batch or query length keeps its meaning.
 */
export function alignReshape(known: Dim[], other: Dim[], labels: Labels, zeroCopy: ReadonlySet<number>, splitHeads: boolean): Axis[] | string {
  const k = known.map(toMono);
  const o = other.map(toMono);
  for (const i of zeroCopy) {
    if (i >= k.length || i >= o.length) continue;
    if (!k[i] && !o[i]) k[i] = o[i] = { c: 1, s: [`?copy${i}`] };
    else if (!k[i]) k[i] = o[i];
    else if (!o[i]) o[i] = k[i];
  }
  solveOne(k, o);
  solveOne(o, k);
  const show = () => `[${known.map(String).join(', ')}] → [${other.map(String).join(', ')}]`;
  if (k.some((m) => !m) || o.some((m) => !m)) return `dims ${show()} are not all known`;
  const K = k as Mono[];
  const O = o as Mono[];
  const out: Axis[] = new Array(O.length);
  let i = 0;
  let j = 0;
  let pendingAtoms: Atom[] = [];
  let pendingUnits: number[] = [];
  const assign = (gj: number[], atoms: Atom[]): string | undefined => {
    const real = gj.filter((x) => !isUnit(O[x]!));
    for (const x of gj) out[x] = [];
    if (splitHeads && atoms.length === 1 && atoms[0] === 'h' && gj.length === 2 && !isUnit(O[gj[1]!]!)) {
      // [.., H, ..] from [.., Hkv, rep, ..]: the shape of a GQA repeat (Hkv may be 1)
      out[gj[0]!] = ['g'];
      out[gj[1]!] = ['r'];
    } else if (atoms.length === gj.length) gj.forEach((x, n) => (out[x] = [atoms[n]!]));
    else if (real.length === 1) out[real[0]!] = atoms;
    else if (real.length === 0) {
      if (atoms.length) return `axes ${showLabels([atoms])} collapse to size 1`;
    } else if (atoms.length === real.length) real.forEach((x, n) => (out[x] = [atoms[n]!]));
    else if (splitHeads && atoms.length === 1 && atoms[0] === 'h' && real.length === 2) {
      out[real[0]!] = ['g'];
      out[real[1]!] = ['r'];
    } else return `cannot split ${showLabels([atoms])} over ${real.length} axes`;
    return undefined;
  };
  while (i < K.length || j < O.length) {
    const ku = i < K.length && isUnit(K[i]!);
    const ou = j < O.length && isUnit(O[j]!);
    if (ku && ou && pendingAtoms.length === 0 && pendingUnits.length === 0) {
      out[j++] = labels[i++]!;
      continue;
    }
    if (ou) {
      pendingUnits.push(j++);
      continue;
    }
    if (ku) {
      pendingAtoms.push(...labels[i++]!);
      continue;
    }
    if (i >= K.length || j >= O.length) break;
    const gi = [i];
    const gj = [...pendingUnits, j];
    let P = K[i++]!;
    let Q = O[j++]!;
    while (!same(P, Q)) {
      if (divides(P, Q) && i < K.length) {
        P = mul(P, K[i]!);
        gi.push(i++);
      } else if (divides(Q, P) && j < O.length) {
        Q = mul(Q, O[j]!);
        gj.push(j++);
      } else return `dims ${show()} do not align`;
    }
    const err = assign(gj, [...pendingAtoms, ...gi.flatMap((x) => [...labels[x]!])]);
    if (err) return err;
    pendingAtoms = [];
    pendingUnits = [];
  }
  if (i < K.length || j < O.length) return `dims ${show()} do not align`;
  if (pendingAtoms.length || pendingUnits.length) {
    const err = assign(pendingUnits, pendingAtoms);
    if (err) return err;
  }
  return normalize(out);
}

/** `alignReshape` on the concrete shapes of both configurations; they must agree. */
export function alignValues(shapes: Shapes, knownV: Value, otherV: Value, labels: Labels, splitHeads: boolean, where: string): Axis[] | string {
  const results: Array<Axis[] | string> = [0, 1].map((c) => {
    const k = shapes.concrete(knownV, c as 0 | 1);
    const o = shapes.concrete(otherV, c as 0 | 1);
    if (!k || !o) return `${where}: shapes unknown`;
    const r = alignReshape(k, o, labels, new Set(), splitHeads);
    return typeof r === 'string' ? `${where}: ${r}` : r;
  });
  if (typeof results[0] === 'string') return results[0];
  if (typeof results[1] === 'string') return results[1];
  if (showLabels(results[0]!) !== showLabels(results[1]!)) return `${where}: the axes align differently for different sizes`;
  return results[0]!;
}

// ---------------------------------------------------------------------------------------------
// walking up an operand

export type HopKind = 'layout' | 'scale' | 'cast' | 'repeat';

export interface Hop {
  node: Node;
  kind: HopKind;
  /** scale hops: the factor this node multiplies by */
  factor?: number;
  /** repeat hops: the repeat factor (undefined when dynamic) */
  repeat?: number;
}

export interface Step {
  value: Value;
  labels: Labels;
  /** the node that produced `value` and that the walk went through (undefined for the last step) */
  hop?: Hop;
}

export interface Walk {
  /** from the operand (index 0) up to where the walk stopped */
  steps: Step[];
  /** why the walk stopped at the last step */
  stop: string;
}

export interface WalkOptions {
  /** collect Mul/Div by constants (Q and K sides) */
  allowScale: boolean;
  /** look for a GQA repeat (K and V sides) */
  splitHeads: boolean;
  shapes: Shapes;
}

const FLOAT_TYPES = new Set([1, 10, 11, 16]);

function axesOf(n: Node, shapes: Shapes): number[] | undefined {
  return n.inputs[1] ? shapes.ints(n.inputs[1]) : n.attrInts('axes');
}

/** Input labels of `n` given its output labels, or why `n` is not a layout step. */
function upThrough(n: Node, out: Value, labels: Labels, opts: WalkOptions): { input: Value; labels: Labels; hop: Hop } | string {
  if (n.domain !== '') return `${n.describe()} is not a layout change`;
  const x = n.inputs[0];
  if (!x) return `${n.describe()} has no input`;
  const shapes = opts.shapes;
  switch (n.opType) {
    case 'Identity':
      return { input: x, labels, hop: { node: n, kind: 'layout' } };
    case 'Dropout':
      return out === n.outputs[0] ? { input: x, labels, hop: { node: n, kind: 'layout' } } : `${n.describe()} output is its mask`;
    case 'Cast': {
      const to = n.attrInt('to', 0);
      const from = x.type?.elemType ?? 0;
      if (from === to || (from === 0 && FLOAT_TYPES.has(to))) return { input: x, labels, hop: { node: n, kind: 'cast' } };
      return `${n.describe()} changes the element type`;
    }
    case 'Transpose': {
      const perm = n.attrInts('perm') ?? labels.map((_, i) => labels.length - 1 - i);
      if (perm.length !== labels.length) return `${n.describe()} perm [${perm}] does not fit rank ${labels.length}`;
      const inL: Axis[] = new Array(perm.length);
      perm.forEach((p, i) => (inL[p] = labels[i]!));
      return { input: x, labels: inL, hop: { node: n, kind: 'layout' } };
    }
    case 'Reshape': {
      const inL = alignValues(shapes, out, x, labels, opts.splitHeads, n.describe());
      if (typeof inL === 'string') return inL;
      return { input: x, labels: inL, hop: { node: n, kind: 'layout' } };
    }
    case 'Unsqueeze': {
      const axes = axesOf(n, shapes);
      if (!axes) return `${n.describe()}: axes are not constant`;
      const rank = labels.length;
      const set = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      if ([...set].some((a) => labels[a]?.length !== 0)) return `${n.describe()}: inserted axes carry ${showLabels(labels)}`;
      return { input: x, labels: labels.filter((_, i) => !set.has(i)), hop: { node: n, kind: 'layout' } };
    }
    case 'Squeeze': {
      let axes = axesOf(n, shapes);
      const inShape = shapes.dims(x);
      if (!axes && inShape) axes = inShape.flatMap((d, i) => (d === 1 ? [i] : []));
      if (!axes) return `${n.describe()}: axes are not constant`;
      const rank = labels.length + axes.length;
      const set = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      const inL: Axis[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) inL.push(set.has(i) ? [] : labels[k++]!);
      return { input: x, labels: inL, hop: { node: n, kind: 'layout' } };
    }
    case 'Expand':
    case 'Tile': {
      const inShape = shapes.dims(x);
      const outShape = shapes.dims(out);
      if (!inShape || !outShape) return `${n.describe()}: shapes unknown`;
      if (inShape.length !== outShape.length) return `${n.describe()} adds axes`;
      const reps = n.opType === 'Tile' ? shapes.ints(n.inputs[1]) : undefined;
      if (n.opType === 'Tile' && !reps) return `${n.describe()}: repeats are not constant`;
      const inL: Axis[] = [];
      let repeat: number | undefined;
      let repeated = false;
      for (let i = 0; i < labels.length; i++) {
        const a = labels[i]!;
        const grows = n.opType === 'Tile' ? reps![i] !== 1 : inShape[i] !== outShape[i];
        if (!grows) {
          inL.push(a);
          continue;
        }
        if (a.length === 1 && a[0] === 'r' && inShape[i] === 1) {
          inL.push([]);
          repeated = true;
          const f = n.opType === 'Tile' ? reps![i] : outShape[i];
          repeat = typeof f === 'number' ? f : undefined;
          continue;
        }
        if (inShape[i] !== 1) return `${n.describe()} changes axis ${i} from ${String(inShape[i])} to ${String(outShape[i])}`;
        if (a.includes('h') || a.includes('g')) return `${n.describe()} tiles the head axis ${showLabels([a])} (head h would read kv head h mod Hkv, not grouped GQA)`;
        return `${n.describe()} broadcasts axis ${showLabels([a])}`;
      }
      if (!repeated) return { input: x, labels: inL, hop: { node: n, kind: 'layout' } };
      return { input: x, labels: inL, hop: { node: n, kind: 'repeat', repeat } };
    }
    case 'Gather': {
      // index_select of kv heads: head h reads kv head idx[h]; grouped GQA needs idx[h] = floor(h / rep)
      const idx = shapes.ints(n.inputs[1]);
      const inShape = shapes.dims(x);
      const rank = labels.length;
      const axis = n.attrInt('axis', 0);
      const a = axis < 0 ? axis + rank : axis;
      if (!opts.splitHeads || !idx || !inShape || inShape.length !== rank || labels[a]?.join('') !== 'h') return `${n.describe()} is not a layout change`;
      const kv = inShape[a];
      if (typeof kv !== 'number' || idx.length % kv !== 0) return `${n.describe()} gathers ${idx.length} heads from ${String(kv)}`;
      const rep = idx.length / kv;
      if (idx.every((j, h) => j === Math.floor(h / rep))) {
        const inL = [...labels];
        inL[a] = ['g'];
        return { input: x, labels: inL, hop: { node: n, kind: 'repeat', repeat: rep } };
      }
      if (idx.every((j, h) => j === h % kv)) return `${n.describe()} tiles the kv heads (head h reads kv head h mod ${kv}, not grouped GQA)`;
      return `${n.describe()} gathers heads [${idx.join(',')}]`;
    }
    case 'Mul':
    case 'Div': {
      if (!opts.allowScale) return `${n.describe()} scales the values`;
      const a = n.inputs[0];
      const b = n.inputs[1];
      if (!a || !b) return `${n.describe()} misses an input`;
      const cb = a !== b ? staticScalar(b) : undefined;
      if (cb !== undefined && (shapes.rank(b) ?? 0) <= labels.length) return { input: a, labels, hop: { node: n, kind: 'scale', factor: n.opType === 'Mul' ? cb : 1 / cb } };
      if (n.opType === 'Mul') {
        const ca = staticScalar(a);
        if (ca !== undefined && (shapes.rank(a) ?? 0) <= labels.length) return { input: b, labels, hop: { node: n, kind: 'scale', factor: ca } };
      }
      return `${n.describe()} is not a multiplication by a constant`;
    }
    default:
      return `${n.describe()} is not a layout change`;
  }
}

/** Walks up from `v` (labels `labels`) through layout changes, scales and Casts. */
export function walkUp(v: Value, labels: Labels, opts: WalkOptions): Walk {
  const steps: Step[] = [{ value: v, labels }];
  for (let guard = 0; guard < 64; guard++) {
    const cur = steps[steps.length - 1]!;
    const n = cur.value.producer;
    if (!n) return { steps, stop: `${cur.value} is ${cur.value.isGraphInput ? 'a graph input' : cur.value.initializer ? 'an initializer' : 'not produced'}` };
    const r = upThrough(n, cur.value, cur.labels, opts);
    if (typeof r === 'string') return { steps, stop: r };
    cur.hop = r.hop;
    steps.push({ value: r.input, labels: r.labels });
  }
  return { steps, stop: 'walk too long' };
}

/** Output labels of `n` given its input 0 labels, for layout ops walked downstream. */
export function downThrough(n: Node, labels: Labels, shapes: Shapes): Labels | string {
  const x = n.inputs[0];
  const out = n.outputs[0];
  if (!x || !out) return `${n.describe()} has no input or output`;
  switch (n.opType) {
    case 'Identity':
    case 'Dropout':
      return labels;
    case 'Cast': {
      const to = n.attrInt('to', 0);
      const from = x.type?.elemType ?? 0;
      return FLOAT_TYPES.has(to) && (FLOAT_TYPES.has(from) || from === 0) ? labels : `${n.describe()} casts to a non-float type`;
    }
    case 'Transpose': {
      const perm = n.attrInts('perm') ?? labels.map((_, i) => labels.length - 1 - i);
      if (perm.length !== labels.length) return `${n.describe()} perm does not fit`;
      return perm.map((p) => labels[p]!);
    }
    case 'Reshape':
      return alignValues(shapes, x, out, labels, false, n.describe());
    case 'Unsqueeze': {
      const axes = axesOf(n, shapes);
      if (!axes) return `${n.describe()}: axes are not constant`;
      const rank = labels.length + axes.length;
      const set = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      const res: Axis[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) res.push(set.has(i) ? [] : labels[k++]!);
      return res;
    }
    case 'Squeeze': {
      let axes = axesOf(n, shapes);
      const inShape = shapes.dims(x);
      if (!axes && inShape) axes = inShape.flatMap((d, i) => (d === 1 ? [i] : []));
      if (!axes) return `${n.describe()}: axes are not constant`;
      const set = new Set(axes.map((a) => (a < 0 ? a + labels.length : a)));
      if ([...set].some((a) => labels[a]?.length)) return `${n.describe()} squeezes a real axis`;
      return labels.filter((_, i) => !set.has(i));
    }
    default:
      return `${n.describe()} is not a layout change`;
  }
}

/** Where each canonical atom sits in `labels`, when `labels` is exactly those four atoms. */
export function canonicalPerm(labels: Labels, order: readonly Atom[][]): { perm: number[]; atoms: Atom[] } | undefined {
  if (labels.length !== order.length || labels.some((a) => a.length !== 1)) return undefined;
  const atoms: Atom[] = [];
  const perm: number[] = [];
  for (const choices of order) {
    const i = labels.findIndex((a) => choices.includes(a[0]!));
    if (i < 0 || perm.includes(i)) return undefined;
    perm.push(i);
    atoms.push(labels[i]![0]!);
  }
  return { perm, atoms };
}

export const Q_ORDER: Atom[][] = [['b'], ['h'], ['s'], ['d']];
export const K_ORDER: Atom[][] = [['b'], ['h', 'g'], ['t'], ['d']];
export const V_ORDER: Atom[][] = [['b'], ['h', 'g'], ['t'], ['e']];
export const O_ORDER: Atom[][] = [['b'], ['h'], ['s'], ['e']];

/** Labels of a MatMul's batch axes when its output has `rank` axes. */
export function batchLabels(rank: number): Axis[] | undefined {
  if (rank === 4) return [['b'], ['h']];
  if (rank === 3) return [['b', 'h']];
  if (rank === 5) return [['b'], ['g'], ['r']];
  return undefined;
}
