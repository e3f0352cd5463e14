/**
 * A small pattern language over the IR: a rule states the computation it looks for as nested
 * patterns, operands bound by name, and the matcher proves it against a value, backwards along
 * producers. Matching never mutates the graph.
 *
 *   const qk = op('MatMul', [value('q'), op('Transpose', [value('k')], { attrs: { perm: [0, 1, 3, 2] } })]);
 *   const scaled = either(op(['Mul'], [qk, scalar('scale')], { commutative: true }), qk);
 *   const r = match(scaled, softmax.input(0));
 *   if (!r.ok) console.log(explain(r.failure));   // the failing link and node
 *
 * Patterns are plain immutable objects (build them once, reuse them); a match yields `Bindings`:
 * values, nodes and computed data by name, plus every node the match walked through (`matched`).
 * When nothing matches, the failure reported is the deepest one: the link where the proof stopped.
 */
import type { Node, Value } from '../ir/graph.js';
import { constantFloats } from '../ir/infer.js';

/** A check's verdict: `true`, or why it does not hold. */
export type Check = true | string;

export interface MatchFailure {
  /** what the pattern expected at the failing link, e.g. "Transpose(k) with perm [0,1,3,2]" */
  expected: string;
  /** why the link does not hold */
  reason: string;
  /** the value the link was tried on */
  value: Value | undefined;
  /** the node that produced it, if any */
  node: Node | undefined;
  /** links walked before this one (deeper failures are more informative) */
  depth: number;
}

export type MatchResult = { ok: true; bindings: Bindings } | { ok: false; failure: MatchFailure };

/** What a match bound: values, nodes and data by name, plus every node walked, in match order. */
export class Bindings {
  private constructor(
    private readonly vals: ReadonlyMap<string, Value>,
    private readonly nds: ReadonlyMap<string, Node>,
    private readonly dat: ReadonlyMap<string, unknown>,
    /** every node the match went through (producers of matched op patterns), in match order */
    readonly matched: ReadonlyArray<Node>,
  ) {}

  static empty(): Bindings {
    return new Bindings(new Map(), new Map(), new Map(), []);
  }

  has(name: string): boolean {
    return this.vals.has(name) || this.nds.has(name) || this.dat.has(name);
  }

  value(name: string): Value {
    const v = this.vals.get(name);
    if (!v) throw new Error(`pattern binding '${name}' is not a bound value`);
    return v;
  }

  maybeValue(name: string): Value | undefined {
    return this.vals.get(name);
  }

  node(name: string): Node {
    const n = this.nds.get(name);
    if (!n) throw new Error(`pattern binding '${name}' is not a bound node`);
    return n;
  }

  maybeNode(name: string): Node | undefined {
    return this.nds.get(name);
  }

  data<T>(name: string): T {
    if (!this.dat.has(name)) throw new Error(`pattern binding '${name}' holds no data`);
    return this.dat.get(name) as T;
  }

  maybeData<T>(name: string): T | undefined {
    return this.dat.get(name) as T | undefined;
  }

  /** A copy with `name` bound to value `v`; undefined when `name` is already bound to another value. */
  withValue(name: string, v: Value): Bindings | undefined {
    const cur = this.vals.get(name);
    if (cur) return cur === v ? this : undefined;
    const vals = new Map(this.vals);
    vals.set(name, v);
    return new Bindings(vals, this.nds, this.dat, this.matched);
  }

  withNode(name: string | undefined, n: Node): Bindings | undefined {
    if (name !== undefined) {
      const cur = this.nds.get(name);
      if (cur && cur !== n) return undefined;
    }
    const nds = name === undefined || this.nds.get(name) ? this.nds : new Map(this.nds).set(name, n);
    return new Bindings(this.vals, nds, this.dat, this.matched.includes(n) ? this.matched : [...this.matched, n]);
  }

  withData(name: string, d: unknown): Bindings {
    const dat = new Map(this.dat);
    dat.set(name, d);
    return new Bindings(this.vals, this.nds, dat, this.matched);
  }
}

/** Depth bonus of a failure that happened after the structure below matched completely (a check, a constraint). */
const COMPLETE = 1_000_000;

/** The matcher's scratch state: the deepest failure seen so far. */
class MatchState {
  failure: MatchFailure | undefined;

  fail(p: Pattern, v: Value | undefined, reason: string, depth: number): void {
    if (!this.failure || depth >= this.failure.depth) {
      this.failure = { expected: p.describe(), reason, value: v, node: v?.producer, depth };
    }
  }
}

export abstract class Pattern {
  /** A readable form of what this pattern matches (used in failure messages). */
  abstract describe(): string;
  /** @internal yields every way `v` matches, extending `b` */
  abstract run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings>;
}

// ---------------------------------------------------------------------------------------------
// leaves

class AnyValue extends Pattern {
  constructor(readonly name: string | undefined) {
    super();
  }

  describe(): string {
    return this.name ?? '_';
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    if (!v) return s.fail(this, v, 'the input is missing', depth);
    if (this.name === undefined) return yield b;
    const nb = b.withValue(this.name, v);
    if (!nb) return s.fail(this, v, `'${this.name}' is already bound to ${b.value(this.name)}, not ${v}`, depth);
    yield nb;
  }
}

/** Any value, bound as `name` (a second use of the same name must be the same value). */
export function value(name?: string): Pattern {
  return new AnyValue(name);
}

export interface ConstantOptions {
  /** bind the element values (number[]) under this data name */
  as?: string;
  /** a check on the values */
  check?: (values: number[]) => Check;
  /** how to read the values (default: constants and what folds from them); e.g. also evaluate static shapes */
  fold?: (v: Value) => number[] | undefined;
}

class ConstantValue extends Pattern {
  constructor(
    readonly name: string | undefined,
    readonly scalarOnly: boolean,
    readonly opts: ConstantOptions,
  ) {
    super();
  }

  describe(): string {
    return `${this.scalarOnly ? 'scalar' : 'constant'}${this.name ? ` ${this.name}` : ''}`;
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    if (!v) return s.fail(this, v, 'the input is missing', depth);
    const vals = (this.opts.fold ?? constantFloats)(v);
    if (!vals) return s.fail(this, v, `${v} is not a constant`, depth);
    if (this.scalarOnly && (vals.length === 0 || vals.some((x) => !Object.is(x, vals[0]) && x !== vals[0]))) {
      return s.fail(this, v, `${v} is not a single repeated value (${vals.length} values)`, depth);
    }
    const verdict = this.opts.check ? this.opts.check(vals) : true;
    if (verdict !== true) return s.fail(this, v, `${v}: ${verdict}`, depth);
    let nb: Bindings | undefined = b;
    if (this.name !== undefined) nb = nb.withValue(this.name, v);
    if (!nb) return s.fail(this, v, `'${this.name}' is already bound`, depth);
    const key = this.opts.as ?? this.name;
    if (key !== undefined) nb = nb.withData(key, this.scalarOnly ? vals[0] : vals);
    yield nb;
  }
}

/** A value that is a constant (initializer, Constant, or folded from them); values bound as data. */
export function constant(name?: string, opts: ConstantOptions = {}): Pattern {
  return new ConstantValue(name, false, opts);
}

/** A constant with one value (any shape, every element equal); the number is bound as data. */
export function scalar(name?: string, opts: ConstantOptions = {}): Pattern {
  return new ConstantValue(name, true, opts);
}

// ---------------------------------------------------------------------------------------------
// nodes

export type AttrExpect = number | number[] | string | ((node: Node) => Check);

export interface OpOptions {
  /** bind the producing node under this name */
  name?: string;
  /** bind the matched value (the node's output) under this name */
  bind?: string;
  /** ops' domain; default '' (ai.onnx) */
  domain?: string;
  /** two-input ops whose operands may come in either order (Add, Mul, ...) */
  commutative?: boolean;
  /** which output of the node the value must be (default 0) */
  output?: number;
  /** attribute expectations; an absent attribute fails unless `defaults` gives its value */
  attrs?: Record<string, AttrExpect>;
  /** values assumed for attributes a node leaves out */
  defaults?: Record<string, number | number[] | string>;
  /** any further check on the node, after its inputs matched */
  check?: (node: Node, b: Bindings) => Check;
  /** allow the node to have more inputs than patterns given (extra ones are not matched) */
  extraInputs?: boolean;
}

class OpPattern extends Pattern {
  readonly types: ReadonlySet<string>;

  constructor(
    types: string | string[],
    readonly inputs: ReadonlyArray<Pattern | undefined>,
    readonly opts: OpOptions,
  ) {
    super();
    this.types = new Set(typeof types === 'string' ? [types] : types);
  }

  describe(): string {
    const name = [...this.types].join('|');
    const dom = this.opts.domain ? `${this.opts.domain}.` : '';
    const attrs = Object.entries(this.opts.attrs ?? {})
      .filter(([, e]) => typeof e !== 'function')
      .map(([k, e]) => `${k}=${Array.isArray(e) ? `[${e.join(',')}]` : String(e)}`);
    return `${dom}${name}(${this.inputs.map((p) => p?.describe() ?? '_').join(', ')})${attrs.length ? ` with ${attrs.join(', ')}` : ''}`;
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    if (!v) return s.fail(this, v, 'the input is missing', depth);
    const n = v.producer;
    if (!n) return s.fail(this, v, `${v} is ${v.isGraphInput ? 'a graph input' : v.initializer ? 'an initializer' : 'not produced by a node'}`, depth);
    if (!this.types.has(n.opType) || n.domain !== (this.opts.domain ?? '')) {
      return s.fail(this, v, `${v} is made by ${n.describe()}`, depth);
    }
    if (n.outputs[this.opts.output ?? 0] !== v) return s.fail(this, v, `${v} is output ${v.producerIndex} of ${n.describe()}, not output ${this.opts.output ?? 0}`, depth);
    for (const [key, expect] of Object.entries(this.opts.attrs ?? {})) {
      const verdict = checkAttr(n, key, expect, this.opts.defaults?.[key]);
      if (verdict !== true) return s.fail(this, v, `${n.describe()}: ${verdict}`, depth);
    }
    const present = n.inputs.length;
    if (!this.opts.extraInputs && present > this.inputs.length && n.inputs.slice(this.inputs.length).some((x) => x)) {
      return s.fail(this, v, `${n.describe()} has ${present} inputs, expected at most ${this.inputs.length}`, depth);
    }
    let start: Bindings | undefined = b.withNode(this.opts.name, n);
    if (start && this.opts.bind) start = start.withValue(this.opts.bind, v);
    if (!start) return s.fail(this, v, `binding '${this.opts.name ?? this.opts.bind}' is already taken by another node or value`, depth);
    const orders = this.opts.commutative && this.inputs.length === 2 ? [[0, 1], [1, 0]] : [this.inputs.map((_, i) => i)];
    for (const order of orders) {
      for (const done of this.matchInputs(n, order, 0, start, s, depth + 1)) {
        const verdict = this.opts.check ? this.opts.check(n, done) : true;
        if (verdict !== true) {
          // everything below matched: this is as far as a match can get
          s.fail(this, v, `${n.describe()}: ${verdict}`, depth + COMPLETE);
          continue;
        }
        yield done;
      }
    }
  }

  private *matchInputs(n: Node, order: number[], k: number, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    if (k === this.inputs.length) return yield b;
    const p = this.inputs[k];
    if (!p) return yield* this.matchInputs(n, order, k + 1, b, s, depth);
    for (const nb of p.run(n.inputs[order[k]!], b, s, depth)) yield* this.matchInputs(n, order, k + 1, nb, s, depth);
  }
}

function checkAttr(n: Node, key: string, expect: AttrExpect, fallback: number | number[] | string | undefined): Check {
  if (typeof expect === 'function') return expect(n);
  const a = n.attr(key);
  let actual: number | number[] | string | undefined;
  if (!a) actual = fallback;
  else if (Array.isArray(expect)) actual = n.attrInts(key);
  else if (typeof expect === 'string') actual = n.attrString(key);
  else actual = a.f != null && a.type === 1 ? n.attrFloat(key) : n.attrInt(key);
  if (actual === undefined) return `attribute '${key}' is absent`;
  const same = Array.isArray(expect) ? Array.isArray(actual) && actual.length === expect.length && actual.every((x, i) => x === expect[i]) : actual === expect;
  return same ? true : `attribute '${key}' is ${Array.isArray(actual) ? `[${actual.join(',')}]` : String(actual)}, expected ${Array.isArray(expect) ? `[${expect.join(',')}]` : String(expect)}`;
}

/** A value produced by one of `types` whose inputs match `inputs` (an `undefined` entry matches anything). */
export function op(types: string | string[], inputs: ReadonlyArray<Pattern | undefined>, opts: OpOptions = {}): Pattern {
  return new OpPattern(types, inputs, opts);
}

// ---------------------------------------------------------------------------------------------
// combinators

class Either extends Pattern {
  constructor(readonly alternatives: ReadonlyArray<Pattern>) {
    super();
  }

  describe(): string {
    return `(${this.alternatives.map((p) => p.describe()).join(' | ')})`;
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    for (const p of this.alternatives) yield* p.run(v, b, s, depth);
  }
}

/** The first alternative that matches (all are tried on backtracking). */
export function either(...alternatives: Pattern[]): Pattern {
  return new Either(alternatives);
}

class Through extends Pattern {
  constructor(
    readonly types: ReadonlySet<string>,
    readonly inner: Pattern,
    readonly max: number,
    readonly accept: ((n: Node) => boolean) | undefined,
  ) {
    super();
  }

  describe(): string {
    return `[${[...this.types].join('|')}]* ${this.inner.describe()}`;
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    // the longest chain first: optional links are absorbed whenever they are there
    const chain: Array<{ v: Value | undefined; b: Bindings }> = [{ v, b }];
    let cur = v;
    let cb = b;
    for (let i = 0; i < this.max; i++) {
      const n = cur?.producer;
      if (!n || n.domain !== '' || !this.types.has(n.opType) || (this.accept && !this.accept(n))) break;
      const nb = cb.withNode(undefined, n);
      if (!nb) break;
      cur = n.inputs[0];
      cb = nb;
      chain.push({ v: cur, b: cb });
    }
    for (let i = chain.length - 1; i >= 0; i--) yield* this.inner.run(chain[i]!.v, chain[i]!.b, s, depth + i);
  }
}

/**
 * Zero or more unary links of `types` (their input 0) in front of `inner`: optional Casts, Identities,
 * Dropouts. `accept` can restrict which nodes count (e.g. only float-to-float Casts).
 */
export function through(types: string[], inner: Pattern, opts: { max?: number; accept?: (n: Node) => boolean } = {}): Pattern {
  return new Through(new Set(types), inner, opts.max ?? 8, opts.accept);
}

/** `wrap(inner)` or `inner` alone: an optional link (e.g. `optional((x) => op('Cast', [x]), p)`). */
export function optional(wrap: (inner: Pattern) => Pattern, inner: Pattern): Pattern {
  return either(wrap(inner), inner);
}

class Guarded extends Pattern {
  constructor(
    readonly inner: Pattern,
    readonly check: (b: Bindings, v: Value) => Check,
    readonly label: string | undefined,
  ) {
    super();
  }

  describe(): string {
    return this.label ? `${this.inner.describe()} where ${this.label}` : this.inner.describe();
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    for (const nb of this.inner.run(v, b, s, depth)) {
      const verdict = this.check(nb, v!);
      if (verdict === true) yield nb;
      else s.fail(this, v, verdict, depth + COMPLETE);
    }
  }
}

/** `inner`, then a constraint over what it bound (shapes, constants, use counts). */
export function where(inner: Pattern, check: (b: Bindings, v: Value) => Check, label?: string): Pattern {
  return new Guarded(inner, check, label);
}

class Capture extends Pattern {
  constructor(
    readonly name: string,
    readonly inner: Pattern,
  ) {
    super();
  }

  describe(): string {
    return `${this.name}=${this.inner.describe()}`;
  }

  *run(v: Value | undefined, b: Bindings, s: MatchState, depth: number): Generator<Bindings> {
    if (!v) return s.fail(this, v, 'the input is missing', depth);
    const nb = b.withValue(this.name, v);
    if (!nb) return s.fail(this, v, `'${this.name}' is already bound to another value`, depth);
    yield* this.inner.run(v, nb, s, depth);
  }
}

/** Binds the value `inner` matched as `name`. */
export function capture(name: string, inner: Pattern): Pattern {
  return new Capture(name, inner);
}

// ---------------------------------------------------------------------------------------------
// driving

/** Proves `pattern` against `v`: the first way it matches, or the deepest failing link. */
export function match(pattern: Pattern, v: Value | undefined, start: Bindings = Bindings.empty()): MatchResult {
  const s = new MatchState();
  for (const b of pattern.run(v, start, s, 0)) return { ok: true, bindings: b };
  return { ok: false, failure: s.failure ?? { expected: pattern.describe(), reason: 'no match', value: v, node: v?.producer, depth: 0 } };
}

/** Every way `pattern` matches `v` (for rules that must choose between readings). */
export function matchAll(pattern: Pattern, v: Value | undefined, start: Bindings = Bindings.empty()): Bindings[] {
  return [...pattern.run(v, start, new MatchState(), 0)];
}

/** One line: which link failed, where, and why. */
export function explain(f: MatchFailure): string {
  const where = f.node ? ` at ${f.node.describe()}` : f.value ? ` at ${f.value}` : '';
  return `expected ${f.expected}${where}: ${f.reason}`;
}
