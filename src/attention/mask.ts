/**
 * What a site's mask means, proven from the mask subgraph itself rather than from names: it is
 * evaluated (src/attention/evaluate.ts) for a few concrete sizes with no padding, and the masked
 * positions are compared with the causal triangle (query i at absolute position T − S + i sees keys
 * ≤ its own) and with a sliding window; a graph input that masks keys when one of its entries is
 * set to 0 is proven to be the key padding mask.
 */
import { DataType } from '../onnx/codec.js';
import { isFloatType } from '../onnx/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import { shapeValueOf } from '../ir/infer.js';
import { Builder, lowestOf } from './build.js';
import { EvalError, Evaluator, transposeTensor, type Tensor } from './evaluate.js';
import type { Labels } from './layout.js';

export interface MaskPart {
  kind: 'additive' | 'boolean';
  /** additive: the term added to the scores; boolean: the condition of the Where */
  value: Value;
  /** additive: what the term is multiplied by before it reaches the softmax (scales applied after it) */
  factor: number;
  /** boolean: whether `true` keeps a score (Where(c, scores, fill)) or masks it (Where(c, fill, scores)) */
  keepWhenTrue?: boolean;
  /** boolean: the value masked scores get, as the softmax sees it (factor applied) */
  fill?: number;
  /** the Add/Where that applies the part */
  node: Node | undefined;
  /** layout of the scores where the part applies */
  labels: Labels;
  /**
   * additive: entries at the lowest finite value mean "never attend" (ORT's ONNX Attention zeroes a row whose
   * every score is there); materialized as -inf so that a NaN guard reproduces the zero row
   */
  lowestIsMasked?: boolean;
  /** carried to [B, H, S, T] by this Transpose (after unsqueezing to rank 4) */
  toCanonical?: number[];
  /** the part's rank (with `toCanonical`) */
  rank?: number;
  /** a [B·H, S|1, T] part: split its first axis into [B, H] with this many heads */
  unmergeHeads?: number;
}

export interface MaskFacts {
  causal: boolean;
  slidingWindow: number | undefined;
  /** the mask is exactly the causal (and window) pattern for every size tried, and reads no graph input values */
  impliedByCausal: boolean;
  /** graph inputs whose values the mask reads */
  sources: string[];
  /** the graph input shown to mask key j of batch b when its entry [b, j] is 0 */
  keyPadding: string | undefined;
  /** why causality could not be decided, when it could not */
  note: string | undefined;
}

/** Where the query and key lengths of a configuration are read from. */
export interface SeqSources {
  q: Value;
  qAxis: number;
  /** the key length is the sum of these dims (e.g. past length + new length for a fused op's cache) */
  k: Array<{ value: Value; axis: number }>;
  /** names the query and key lengths (sites whose lengths are the same dims share one proof) */
  signature?: string;
}

const MASKED = -1e4;
/** The largest sample input built for a mask input; a declared shape past it (a damaged file) leaves the mask unproven. */
const MAX_INPUT_ELEMENTS = 4_000_000;
const VISIBLE = -1e3;

type Role = 'mask' | 'positions' | 'float';

/** The graph inputs a set of values reads by value (shape-only reads through Shape/Size don't count). */
export function valueInputs(values: Value[]): Value[] {
  const out = new Set<Value>();
  const seen = new Set<Value>();
  const stack = [...values];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.isGraphInput && !v.initializer) {
      out.add(v);
      continue;
    }
    const n = v.producer;
    if (!n || n.opType === 'Shape' || n.opType === 'Size') continue;
    for (const x of n.inputs) if (x) stack.push(x);
  }
  return [...out];
}

function roleOf(v: Value): Role {
  if (isFloatType(v.type?.elemType ?? 0)) return 'float';
  // an input whose values index an embedding-like table is a position (or token) id
  const seen = new Set<Value>();
  const stack: Array<[Value, number]> = [[v, 0]];
  while (stack.length) {
    const [x, depth] = stack.pop()!;
    if (seen.has(x) || depth > 6) continue;
    seen.add(x);
    for (const u of x.uses()) {
      const n = u.node;
      if (n.opType === 'Gather' && u.index === 1 && isFloatType(n.inputs[0]?.type?.elemType ?? 0) && (n.inputs[0]?.rank ?? 0) >= 2) return 'positions';
      if (['Cast', 'Unsqueeze', 'Reshape', 'Expand', 'Add', 'Sub', 'Slice', 'Squeeze'].includes(n.opType)) for (const o of n.outputs) if (o) stack.push([o, depth + 1]);
    }
  }
  return 'mask';
}

export class MaskAnalyzer {
  private readonly roles = new Map<Value, Role>();
  private readonly cache = new Map<string, MaskFacts>();
  private symbols: { batch: string[]; other: string[] } | undefined;

  constructor(readonly graph: Graph) {}

  private collectSymbols(): { batch: string[]; other: string[] } {
    if (this.symbols) return this.symbols;
    const batch: string[] = [];
    const other: string[] = [];
    for (const v of this.graph.root.inputs) {
      if (v.initializer) continue;
      (v.shape ?? []).forEach((d, i) => {
        if (typeof d !== 'string') return;
        if (i === 0 && (v.rank ?? 0) >= 2) {
          if (!batch.includes(d)) batch.push(d);
        }
      });
    }
    for (const v of this.graph.root.inputs) {
      if (v.initializer) continue;
      for (const d of v.shape ?? []) if (typeof d === 'string' && !batch.includes(d) && !other.includes(d)) other.push(d);
    }
    return (this.symbols = { batch, other });
  }

  private role(v: Value): Role {
    let r = this.roles.get(v);
    if (!r) this.roles.set(v, (r = roleOf(v)));
    return r;
  }

  /** Candidate dim assignments: plain ones, then ones where a mask input's length is the sum of the others. */
  private assignments(inputs: Value[]): Array<Map<string, number>> {
    const { batch, other } = this.collectSymbols();
    const base = (vals: number[]): Map<string, number> => {
      const m = new Map<string, number>();
      batch.forEach((b) => m.set(b, 2));
      other.forEach((s, i) => m.set(s, vals[i % vals.length]! + Math.floor(i / vals.length) * 7));
      return m;
    };
    const plans = [base([5, 3, 6, 4]), base([3, 4, 2, 5])];
    const out: Array<Map<string, number>> = [];
    for (const plan of plans) {
      out.push(plan);
      // a 2D mask input whose length symbol appears nowhere else: try it as the total of the other lengths
      for (const v of inputs) {
        const last = v.shape?.[(v.rank ?? 1) - 1];
        if (typeof last !== 'string' || batch.includes(last)) continue;
        const others = other.filter((s) => s !== last);
        const sum = others.reduce((a, s) => a + plan.get(s)!, 0);
        const alt = new Map(plan);
        alt.set(last, sum);
        out.push(alt);
        for (const s of others) out.push(new Map(plan).set(last, plan.get(s)!));
      }
    }
    return out;
  }

  private inputTensor(v: Value, dims: Map<string, number>, pad?: { batch: number; at: number }): Tensor | undefined {
    const shape = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : d === undefined ? undefined : dims.get(d)));
    if (shape.some((d) => d === undefined)) return undefined;
    const s = shape as number[];
    const n = s.reduce((a, b) => a * b, 1);
    if (n > MAX_INPUT_ELEMENTS) return undefined;
    const data = new Float64Array(n);
    const role = this.role(v);
    const elemType = v.type?.elemType ?? DataType.INT64;
    if (role === 'mask') data.fill(1);
    else if (role === 'positions') {
      const last = s[s.length - 1] ?? 1;
      for (let i = 0; i < n; i++) data[i] = i % last;
    }
    if (pad && role === 'mask' && s.length >= 2) {
      const last = s[s.length - 1]!;
      const per = n / s[0]!;
      data[pad.batch * per + (pad.at < 0 ? last + pad.at : pad.at)] = 0;
    }
    return { shape: s, data, elemType };
  }

  /** Facts about the mask formed by `parts` (cached by the parts' values, so shared masks are proven once). */
  analyze(parts: MaskPart[], seq: SeqSources): MaskFacts {
    const key = `${parts.map((p) => `${p.kind}:${p.value.name}:${p.factor}:${p.keepWhenTrue}:${p.fill}`).join('|')}#${seq.signature ?? `${seq.q.name}:${seq.qAxis}:${seq.k.map((x) => `${x.value.name}@${x.axis}`).join('+')}`}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const facts = this.prove(parts, seq);
    this.cache.set(key, facts);
    return facts;
  }

  private prove(parts: MaskPart[], seq: SeqSources): MaskFacts {
    const inputs = valueInputs(parts.map((p) => p.value));
    const sources = inputs.map((v) => v.name);
    const none: MaskFacts = { causal: false, slidingWindow: undefined, impliedByCausal: false, sources, keyPadding: undefined, note: undefined };
    if (parts.length === 0) return none;
    const floatInputs = inputs.filter((v) => this.role(v) === 'float');
    const results: Grid[] = [];
    let lastError = '';
    const used: Evaluator[] = [];
    for (const dims of this.assignments(inputs)) {
      const config = this.config(dims, inputs);
      if (!config) continue;
      try {
        results.push(this.grid(parts, seq, config));
        used.push(config);
        if (results.length >= 2 && results.some((g) => g.S > 1)) break;
      } catch (e) {
        lastError = e instanceof EvalError ? `${e.message}${e.node ? ` (${e.node.describe()})` : ''}` : String(e);
      }
    }
    if (results.length === 0) return { ...none, note: `the mask could not be evaluated: ${lastError || 'no configuration of sizes fits the graph inputs'}` };
    const verdicts = results.map(judge);
    if (verdicts.some((v) => v.ambiguous)) return { ...none, note: 'the mask has values between masked and visible' };
    const causal = verdicts.every((v) => v.causal) && results.some((g) => g.S > 1 && g.anyMasked);
    let window: number | undefined;
    if (causal) {
      const ws = verdicts.map((v) => v.window).filter((w): w is number => w !== undefined);
      if (ws.length && ws.every((w) => w === ws[0]) && verdicts.every((v) => v.windowConsistent(ws[0]!))) window = ws[0];
      if (!ws.length) window = this.findWindow(parts, seq, inputs);
    }
    const exact = causal && verdicts.every((v) => v.exactCausal(window)) && floatInputs.length === 0;
    let keyPadding: string | undefined;
    for (const u of inputs) {
      if (this.role(u) !== 'mask' || (u.rank ?? 0) !== 2) continue;
      if (this.provesPadding(parts, seq, used[0]!, inputs, u)) {
        keyPadding = u.name;
        break;
      }
    }
    const shapeOnly = inputs.length === 0;
    return { causal, slidingWindow: window, impliedByCausal: exact && shapeOnly, sources, keyPadding, note: undefined };
  }

  private readonly evaluators = new Map<string, Evaluator>();

  /** One evaluator per configuration, shared by every mask (the mask subgraph is usually shared by all layers). */
  private config(dims: Map<string, number>, inputs: Value[], pad?: { input: Value; batch: number; at: number }, limit = 4_000_000): Evaluator | undefined {
    if (inputs.some((v) => !this.inputTensor(v, dims))) return undefined;
    const key = `${JSON.stringify([...dims])}|${pad ? `${pad.input.name}:${pad.batch}:${pad.at}` : ''}|${limit}`;
    let ev = this.evaluators.get(key);
    if (!ev) {
      const made = new Map<Value, Tensor | undefined>();
      const inputFor = (v: Value): Tensor | undefined => {
        if (!made.has(v)) made.set(v, this.inputTensor(v, dims, pad && pad.input === v ? pad : undefined));
        return made.get(v);
      };
      ev = new Evaluator({ dims, inputs: new Map(), inputFor, maxElements: limit });
      this.evaluators.set(key, ev);
    }
    return ev;
  }

  /** Evaluates every part and folds them into one grid of score offsets [B, H, S, T]. */
  private grid(parts: MaskPart[], seq: SeqSources, ev: Evaluator): Grid {
    const S = ev.shapeOf(seq.q)[seq.qAxis];
    const T = seq.k.reduce<number | undefined>((acc, x) => {
      const d = ev.shapeOf(x.value)[x.axis];
      return acc === undefined || d === undefined ? undefined : acc + d;
    }, 0);
    if (S === undefined || T === undefined) throw new EvalError('query or key length unknown', undefined);
    const tensors = parts.map((p) => evaluatedToCanonical(p, ev.eval(p.value)));
    const lead = tensors.map((t) => t.shape.slice(0, -2));
    for (const t of tensors) {
      const [r, c] = [t.shape[t.shape.length - 2] ?? 1, t.shape[t.shape.length - 1] ?? 1];
      if ((r !== 1 && r !== S) || (c !== 1 && c !== T)) throw new EvalError(`a mask part of shape [${t.shape}] does not fit [${S}, ${T}]`, undefined);
    }
    const rank = Math.max(...lead.map((l) => l.length));
    const leadShape: number[] = [];
    for (let i = 0; i < rank; i++) {
      let d = 1;
      for (const l of lead) {
        const x = l[l.length - rank + i] ?? 1;
        if (x !== 1) d = x;
      }
      leadShape.push(d);
    }
    const L = leadShape.reduce((a, b) => a * b, 1);
    const out = new Float64Array(L * S * T);
    parts.forEach((p, k) => {
      const t = tensors[k]!;
      const tl = t.shape.slice(0, -2);
      const [r, c] = [t.shape[t.shape.length - 2] ?? 1, t.shape[t.shape.length - 1] ?? 1];
      for (let li = 0; li < L; li++) {
        // broadcast index of the leading dims
        let rem = li;
        let off = 0;
        let stride = 1;
        for (let a = rank - 1; a >= 0; a--) {
          const d = leadShape[a]!;
          const idx = rem % d;
          rem = Math.floor(rem / d);
          const ta = tl.length - rank + a;
          if (ta >= 0) {
            const td = tl[ta]!;
            if (td !== 1) off += idx * stride;
            stride *= td;
          }
        }
        const base = off * r * c;
        for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) {
          const x = t.data[base + (r === 1 ? 0 : i) * c + (c === 1 ? 0 : j)]!;
          const o = li * S * T + i * T + j;
          if (p.kind === 'additive') out[o] = out[o]! + x * p.factor;
          else if (Boolean(x) !== Boolean(p.keepWhenTrue)) out[o] = -Infinity;
        }
      }
    });
    let anyMasked = false;
    for (let i = 0; i < out.length && !anyMasked; i++) if (out[i]! <= MASKED) anyMasked = true;
    return { L, S, T, data: out, anyMasked };
  }

  /** A window too wide for the small sizes: try each integer constant of the mask subgraph as the window. */
  private findWindow(parts: MaskPart[], seq: SeqSources, inputs: Value[]): number | undefined {
    const candidates = new Set<number>();
    const seen = new Set<Value>();
    const stack = parts.map((p) => p.value);
    while (stack.length && seen.size < 400) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const c = shapeValueOf(v);
      if ((v.isConstant || v.initializer) && c && c.length === 1 && typeof c[0] === 'number' && c[0] >= 2 && c[0] <= 4096) candidates.add(c[0]);
      const n = v.producer;
      if (n && n.opType !== 'Shape') for (const x of n.inputs) if (x) stack.push(x);
    }
    const { batch, other } = this.collectSymbols();
    for (const w of [...candidates].sort((a, b) => a - b)) {
      // make the key length exceed the candidate: every length symbol in turn set large (a past length), the rest small
      for (const big of other.length ? other : ['']) {
        const dims = new Map<string, number>();
        batch.forEach((b) => dims.set(b, 1));
        other.forEach((s) => dims.set(s, s === big ? w + 3 : 2));
        for (const d of this.sumVariants(dims, inputs)) {
          const config = this.config(d, inputs, undefined, 8_000_000);
          if (!config) continue;
          try {
            const g = this.grid(parts, seq, config);
            const v = judge(g);
            if (v.causal && v.window !== undefined && v.windowConsistent(v.window)) return v.window;
            if (v.causal) break;
          } catch {
            // this assignment does not fit the graph; try the next
          }
        }
      }
    }
    return undefined;
  }

  private sumVariants(dims: Map<string, number>, inputs: Value[]): Array<Map<string, number>> {
    const out = [dims];
    const { batch, other } = this.collectSymbols();
    for (const v of inputs) {
      const last = v.shape?.[(v.rank ?? 1) - 1];
      if (typeof last !== 'string' || batch.includes(last)) continue;
      const others = other.filter((s) => s !== last);
      out.push(new Map(dims).set(last, others.reduce((a, s) => a + dims.get(s)!, 0)));
    }
    return out;
  }

  private provesPadding(parts: MaskPart[], seq: SeqSources, base: Evaluator, inputs: Value[], u: Value): boolean {
    const padded = this.config(base.config.dims as Map<string, number>, inputs, { input: u, batch: 0, at: -1 });
    if (!padded) return false;
    try {
      const g0 = this.grid(parts, seq, base);
      const g1 = this.grid(parts, seq, padded);
      const batch = base.eval(u).shape[0]!;
      if (batch < 2 || g0.L % batch !== 0) return false;
      const per = g0.L / batch;
      let changed = false;
      for (let li = 0; li < g0.L; li++) {
        const b = Math.floor(li / per);
        for (let i = 0; i < g0.S; i++) for (let j = 0; j < g0.T; j++) {
          const o = li * g0.S * g0.T + i * g0.T + j;
          const before = g0.data[o]! <= MASKED;
          const after = g1.data[o]! <= MASKED;
          const target = b === 0 && j === g0.T - 1;
          if (target ? !after : after !== before) return false;
          if (after !== before) changed = true;
        }
      }
      return changed;
    } catch {
      return false;
    }
  }
}

interface Grid {
  /** product of the leading (batch, head) dims */
  L: number;
  S: number;
  T: number;
  data: Float64Array;
  anyMasked: boolean;
}

interface Verdict {
  causal: boolean;
  ambiguous: boolean;
  /** a window seen in the rows (keys visible per query, itself included) */
  window: number | undefined;
  windowConsistent(w: number): boolean;
  /** visible exactly where causal (and the window) allow */
  exactCausal(w: number | undefined): boolean;
}

function judge(g: Grid): Verdict {
  const { L, S, T, data } = g;
  const off = T - S;
  let causal = true;
  let ambiguous = false;
  let window: number | undefined;
  let windowOk = true;
  const firstVisible: number[][] = [];
  for (let li = 0; li < L; li++) {
    const rows: number[] = [];
    for (let i = 0; i < S; i++) {
      const p = i + off;
      let first = -1;
      for (let j = 0; j < T; j++) {
        const x = data[li * S * T + i * T + j]!;
        if (x > MASKED && x <= VISIBLE) ambiguous = true;
        const masked = x <= MASKED;
        if (j > p && !masked) causal = false;
        if (!masked && first < 0 && j <= p) first = j;
      }
      rows.push(first);
      if (first > 0) {
        const w = p - first + 1;
        if (window === undefined) window = w;
        else if (window !== w) windowOk = false;
      }
    }
    firstVisible.push(rows);
  }
  const exactRows = (w: number | undefined): boolean => {
    for (let li = 0; li < L; li++) for (let i = 0; i < S; i++) {
      const p = i + off;
      const lo = w === undefined ? 0 : Math.max(0, p - w + 1);
      for (let j = 0; j < T; j++) {
        const x = data[li * S * T + i * T + j]!;
        const masked = x <= MASKED;
        const expect = j > p || j < lo;
        // visible scores must be left exactly as they are (a bias, like T5's, is more than a mask)
        if (masked !== expect || (!masked && x !== 0)) return false;
      }
    }
    return true;
  };
  return {
    causal,
    ambiguous,
    window: windowOk ? window : undefined,
    windowConsistent: (w: number) => {
      for (let li = 0; li < L; li++) for (let i = 0; i < S; i++) {
        const p = i + off;
        const first = firstVisible[li]![i]!;
        if (first < 0) continue;
        if (first !== Math.max(0, p - w + 1) && !(first > Math.max(0, p - w + 1))) return false;
      }
      return true;
    },
    exactCausal: exactRows,
  };
}

/**
 * The additive mask a site's parts amount to, in the scores' element type, broadcastable to
 * [B, Hq, S, T]: each additive term times its factor, each boolean condition as Where(c, 0, fill).
 */
export function buildAdditiveMask(b: Builder, parts: MaskPart[], scoreType: number): Value | undefined {
  let acc: Value | undefined;
  for (const p of parts) {
    let term: Value;
    if (p.kind === 'additive') {
      term = b.cast(p.value, scoreType);
      if (p.factor !== 1) term = b.op('Mul', [term, b.scalarOf(p.factor, scoreType)]);
      if (p.lowestIsMasked) term = b.op('Where', [b.op('LessOrEqual', [term, b.scalarOf(lowestOf(scoreType), scoreType)]), b.scalarOf(-Infinity, scoreType), term]);
      term = toCanonicalLayout(b, p, term);
    } else {
      const zero = b.scalarOf(0, scoreType);
      const fill = b.scalarOf(p.fill ?? -Infinity, scoreType);
      const cond = p.value.type?.elemType === DataType.BOOL ? p.value : b.cast(p.value, DataType.BOOL);
      term = toCanonicalLayout(b, p, p.keepWhenTrue ? b.op('Where', [cond, zero, fill]) : b.op('Where', [cond, fill, zero]));
    }
    acc = b.add(acc, term);
  }
  return acc;
}

function toCanonicalLayout(b: Builder, p: MaskPart, term: Value): Value {
  let t = term;
  if (p.unmergeHeads) {
    const rest = b.op('Slice', [b.op('Shape', [t]), b.ints([1]), b.ints([3])]);
    t = b.op('Reshape', [t, b.op('Concat', [b.ints([-1, p.unmergeHeads]), rest], { axis: 0 })]);
  }
  if (p.toCanonical) {
    const r = p.rank ?? 4;
    if (r < 4) t = b.op('Unsqueeze', [t, b.ints(Array.from({ length: 4 - r }, (_, i) => i))]);
    t = b.transpose(t, p.toCanonical);
  }
  return t;
}

/** The same layout changes on an evaluated part (for proving the mask). */
function evaluatedToCanonical(p: MaskPart, t: Tensor): Tensor {
  let out = t;
  if (p.unmergeHeads) out = { ...out, shape: [out.shape[0]! / p.unmergeHeads, p.unmergeHeads, ...out.shape.slice(1)] };
  if (p.toCanonical) {
    const shape = [...Array.from({ length: Math.max(0, 4 - out.shape.length) }, () => 1), ...out.shape];
    out = transposeTensor({ ...out, shape }, p.toCanonical);
  }
  return out;
}
