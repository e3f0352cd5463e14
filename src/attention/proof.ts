/**
 * Proof plumbing shared by the rules: how a rule says which link failed, and where a canonical
 * operand is read from a walk (src/attention/layout.ts).
 */
import type { Node, Value } from '../ir/graph.js';
import { toApproxNumber } from '../onnx/codec.js';
import type { Builder } from './build.js';
import { canonicalPerm, showLabels, type Atom, type Labels, type Walk } from './layout.js';

export class Unproven extends Error {
  constructor(
    message: string,
    readonly node: Node | undefined,
  ) {
    super(message);
  }
}

export const no = (message: string, node?: Node): never => {
  throw new Unproven(message, node);
};

export interface Take {
  /** index of the step whose value is read */
  index: number;
  perm: number[];
  /** replay the layout hops from `index` down to `target` on the unscaled value */
  replayTo?: number;
  atoms: Atom[];
}

/** Where to read a canonical operand from a walk: above every scale and repeat, a [B, H, S, D] point. */
export function chooseTake(w: Walk, order: Atom[][], what: string): Take {
  let minTake = 0;
  w.steps.forEach((s, i) => {
    const next = w.steps[i + 1];
    const hasR = (l: Labels | undefined) => !!l?.some((a) => a.includes('r'));
    if (s.hop && (s.hop.kind === 'scale' || s.hop.kind === 'repeat' || hasR(s.labels) || hasR(next?.labels))) minTake = i + 1;
  });
  const clean = w.steps.map((s) => canonicalPerm(s.labels, order));
  const identity = (p: { perm: number[] } | undefined) => !!p && p.perm.every((x, i) => x === i);
  let best = -1;
  for (let i = minTake; i < w.steps.length; i++) if (identity(clean[i])) {
    best = i;
    break;
  }
  if (best < 0) for (let i = minTake; i < w.steps.length; i++) if (clean[i]) {
    best = i;
    break;
  }
  if (best >= 0) return { index: best, perm: clean[best]!.perm, atoms: clean[best]!.atoms };
  // the scale sits above every [B, H, S, D] point (e.g. on the projection output): replay the layout on the unscaled value
  let target = -1;
  for (let i = minTake - 1; i >= 0; i--) if (clean[i]) {
    target = i;
    if (identity(clean[i])) break;
  }
  if (target >= 0 && minTake < w.steps.length) {
    for (let i = target; i < minTake; i++) {
      const hop = w.steps[i]!.hop;
      if (hop?.kind === 'repeat' || w.steps[i]!.labels.some((a) => a.includes('r'))) no(`${what}: the GQA repeat sits between the scale and the [B, H, S, D] form`, hop?.node);
    }
    return { index: minTake, perm: clean[target]!.perm, atoms: clean[target]!.atoms, replayTo: target };
  }
  const top = w.steps[w.steps.length - 1]!;
  return no(`${what} is never a [B, H, S, D] tensor: walking up from ${w.steps[0]!.value} (${showLabels(w.steps[0]!.labels)}) stopped at ${top.value} (${showLabels(top.labels)}) because ${w.stop}`, top.value.producer);
}

/** The canonical operand: the take point (replaying layout hops when needed), transposed to [B, H, S, D]. */
export function materializeOperand(b: Builder, w: Walk, t: Take): Value {
  let cur = w.steps[t.index]!.value;
  if (t.replayTo !== undefined) {
    for (let i = t.index - 1; i >= t.replayTo; i--) {
      const hop = w.steps[i]!.hop!;
      if (hop.kind === 'scale' || hop.kind === 'cast' || hop.node.opType === 'Identity' || hop.node.opType === 'Dropout') continue;
      const n = hop.node;
      const attrs: Record<string, number | number[]> = {};
      for (const [k, a] of n.attributes) {
        if (a.ints && a.ints.length) attrs[k] = a.ints.map(toApproxNumber);
        else if (a.i != null) attrs[k] = toApproxNumber(a.i);
      }
      cur = b.op(n.opType, [cur, ...n.inputs.slice(1)], attrs);
    }
  }
  return b.transpose(cur, t.perm);
}

export function takeNodes(w: Walk, t: Take): Node[] {
  // everything below the point read (a replay re-creates the layout hops on the unscaled value, so they go too)
  return w.steps.slice(0, t.index).map((s) => s.hop!.node);
}


const ALLOWED_MERGES = new Set(['b s', 'b t', 'h d', 'g d', 'h e', 'g e', 'b h', 'b g', 'g r', 'b s h d', 'b t h d', 'b t g d', 'b t h e', 'b t g e', 's h d', 't h d', 't g d', 't h e', 't g e']);

/**
 * Every axis on the way must merge atoms the way a projection lays them out (tokens, then heads, then head
 * dim): a Transpose or Reshape that mixes positions with heads, or puts the head dim before the heads, makes
 * an attention-shaped computation whose Q, K or V are not per-head slices of a projection.
 */
export function checkMerges(w: Walk, what: string): void {
  for (const s of w.steps) {
    for (const a of s.labels) {
      if (a.length < 2) continue;
      const key = a.join(' ');
      if (!ALLOWED_MERGES.has(key)) no(`${what}: ${s.value} has an axis merging ${showLabels([a])}, which no head split of a projection produces (a Transpose or Reshape mixes heads, positions and head dim)`, s.value.producer);
    }
  }
}
