/** What every rule asks of a site's surroundings: self or cross, and where its KV cache comes from and goes. */
import { DataType } from '../onnx/codec.js';
import type { Node, Value } from '../ir/graph.js';
import type { Walk } from './layout.js';
import type { AttentionKind, KvCache } from './site.js';
import type { Shapes } from './shapes.js';

const WEIGHT_WRAPPERS = new Set(['Transpose', 'Cast', 'Identity', 'DequantizeLinear', 'Reshape', 'Squeeze', 'Unsqueeze']);

/** A constant weight, possibly behind a Transpose/Cast/DequantizeLinear. */
function isWeight(v: Value | undefined, depth = 0): boolean {
  if (!v) return false;
  if (v.initializer || v.producer?.opType === 'Constant') return (v.rank ?? 0) >= 1;
  const n = v.producer;
  if (!n || depth > 3 || !WEIGHT_WRAPPERS.has(n.opType)) return false;
  return isWeight(n.inputs[0], depth + 1);
}

/**
 * The activations a tensor was projected from: the non-weight operands of the nearest MatMul/Gemm
 * (with a constant weight) found walking up from `v` (breadth first, bounded).
 */
export function projectionInputs(v: Value, budget = 48): Set<Value> {
  const out = new Set<Value>();
  const seen = new Set<Value>();
  let frontier = [v];
  while (frontier.length && budget > 0 && out.size === 0) {
    const next: Value[] = [];
    for (const x of frontier) {
      if (seen.has(x) || budget-- <= 0) continue;
      seen.add(x);
      const n = x.producer;
      if (!n) continue;
      if (n.opType === 'MatMul' || n.opType === 'Gemm' || n.opType === 'MatMulNBits' || n.opType === 'MatMulInteger') {
        const [a, b] = [n.inputs[0], n.inputs[1]];
        if (isWeight(b) && a) out.add(a);
        else if (isWeight(a) && b) out.add(b);
        else for (const i of n.inputs) if (i) next.push(i);
        continue;
      }
      if (n.opType === 'Shape' || n.opType === 'Size') continue;
      for (const i of n.inputs) if (i && !i.isConstant) next.push(i);
    }
    frontier = next;
  }
  return out;
}

/** Self-attention when Q and K are projections of the same activations; cross when they come from different ones. */
export function kindOf(q: Value, k: Value, shapes: Shapes): AttentionKind {
  const pq = projectionInputs(q);
  const pk = projectionInputs(k);
  if (pq.size && pk.size) return [...pq].some((x) => pk.has(x)) ? 'self' : 'cross';
  if (pq.size && !pk.size) return 'cross';
  // no projections to compare (inputs given directly): compare sequence dims
  const qs = shapes.dims(q);
  const ks = shapes.dims(k);
  const s = qs?.[qs.length - 2];
  const t = ks?.[ks.length - 2];
  return s !== undefined && t !== undefined && s !== t ? 'cross' : 'self';
}

const PASS = new Set(['Identity', 'Transpose', 'Cast', 'Reshape', 'Unsqueeze', 'Squeeze']);

/** The graph input `v` is read from, through layout ops; else `v`. */
export function graphInputBehind(v: Value): Value {
  let cur = v;
  for (let i = 0; i < 6; i++) {
    if (cur.isGraphInput) return cur;
    const n = cur.producer;
    const single = n?.opType === 'Concat' && n.inputs.filter((x) => x).length === 1;
    if (!n || (!PASS.has(n.opType) && !single) || !n.inputs[0]) return v;
    cur = n.inputs[0];
  }
  return v;
}

/** A graph output that `v` reaches through layout ops (itself included). */
export function graphOutputAfter(v: Value): Value | undefined {
  const seen = new Set<Value>();
  let frontier = [v];
  for (let d = 0; d < 5 && frontier.length; d++) {
    const next: Value[] = [];
    for (const x of frontier) {
      if (seen.has(x)) continue;
      seen.add(x);
      if (x.isGraphOutput) return x;
      for (const u of x.uses()) if (PASS.has(u.node.opType) && u.index === 0 && u.node.outputs[0]) next.push(u.node.outputs[0]);
    }
    frontier = next;
  }
  return undefined;
}

function concatOf(w: Walk): { node: Node; past: Value; present: Value } | undefined {
  const top = w.steps[w.steps.length - 1]!;
  const n = top.value.producer;
  if (!n || n.opType !== 'Concat' || n.inputs.length < 2) return undefined;
  const rank = top.labels.length;
  const axis = n.attrInt('axis', 0);
  const a = axis < 0 ? axis + rank : axis;
  if (top.labels[a]?.length !== 1 || top.labels[a]![0] !== 't') return undefined;
  return { node: n, past: n.inputs[0]!, present: top.value };
}

/** Past inputs and present outputs of a site's K and V, when the graph keeps a cache. */
export function kvCacheOf(wk: Walk, kTake: number, wv: Walk, vTake: number): KvCache | undefined {
  const ck = concatOf(wk);
  const cv = concatOf(wv);
  const kTop = wk.steps[kTake]!.value;
  const vTop = wv.steps[vTake]!.value;
  const cache: KvCache = {
    pastKey: ck ? graphInputBehind(ck.past) : undefined,
    pastValue: cv ? graphInputBehind(cv.past) : undefined,
    presentKey: graphOutputAfter(ck ? ck.present : kTop),
    presentValue: graphOutputAfter(cv ? cv.present : vTop),
  };
  return cache.pastKey || cache.pastValue || cache.presentKey || cache.presentValue ? cache : undefined;
}

/** The element type of `v`, looking through ops that keep their input's type when inference left it unknown. */
export function elemTypeOf(v: Value | undefined, depth = 0): number {
  if (!v) return DataType.FLOAT;
  const t = v.type?.elemType;
  if (t) return t;
  const n = v.producer;
  if (!n || depth > 16) return DataType.FLOAT;
  if (n.opType === 'Cast') return n.attrInt('to', DataType.FLOAT);
  if (n.opType === 'Shape' || n.opType === 'Size') return DataType.INT64;
  return elemTypeOf(n.inputs[0], depth + 1);
}

