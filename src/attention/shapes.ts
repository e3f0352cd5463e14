/**
 * Shapes as recognition sees them: every value's shape computed concretely under two configurations
 * of the graph's symbolic dims (different primes each time), with per-op shape rules that never
 * compute activations. A dim equal in both is static (a head count, a head dim); one that differs is
 * dynamic, named by its pair of values so that equal dynamic dims compare equal. Reshapes are aligned
 * under both configurations and must agree, so a coincidence of sizes in one cannot fool the layout
 * reasoning. This does not depend on symbolic inference having reached every value.
 */
import type { Dim, Graph, Value } from '../ir/graph.js';
import { Evaluator } from './evaluate.js';

const BATCH = [3, 5];
const OTHERS = [
  [7, 11, 13, 17, 19, 23, 29, 31],
  [37, 41, 43, 47, 53, 59, 61, 67],
];
const UNKNOWN = [71, 73];

export class Shapes {
  private readonly ev: [Evaluator, Evaluator];
  private readonly intsMemo = new Map<Value, number[] | null>();

  constructor(readonly graph: Graph) {
    const batch = new Set<string>();
    const other: string[] = [];
    const inputs = graph.root.inputs.filter((v) => !v.initializer);
    for (const v of inputs) {
      const s = v.shape ?? [];
      if (typeof s[0] === 'string' && s.length >= 2) batch.add(s[0]);
    }
    for (const v of inputs) for (const d of v.shape ?? []) if (typeof d === 'string' && !batch.has(d) && !other.includes(d)) other.push(d);
    const make = (c: 0 | 1): Evaluator => {
      const dims = new Map<string, number>();
      for (const b of batch) dims.set(b, BATCH[c]!);
      other.forEach((s, i) => dims.set(s, OTHERS[c]![i % OTHERS[c]!.length]! + 100 * Math.floor(i / OTHERS[c]!.length)));
      return new Evaluator({ dims, inputs: new Map(), maxElements: 1 << 16, defaultDim: UNKNOWN[c] });
    };
    this.ev = [make(0), make(1)];
  }

  /** The shape of `v` under configuration `c`, if known. */
  concrete(v: Value | undefined, c: 0 | 1): number[] | undefined {
    return v ? this.ev[c].tryShape(v) : undefined;
  }

  /** Per axis: a number when static, else a name for the dynamic dim (equal names, equal dims). */
  dims(v: Value | undefined): Dim[] | undefined {
    const a = this.concrete(v, 0);
    const b = this.concrete(v, 1);
    if (!a || !b || a.length !== b.length) return undefined;
    return a.map((x, i) => (x === b[i] ? x : `~${x}/${b[i]}`));
  }

  rank(v: Value | undefined): number | undefined {
    return this.concrete(v, 0)?.length ?? v?.rank;
  }

  /** The static size of axis `axis` of `v`, if it is static. */
  staticDim(v: Value | undefined, axis: number): number | undefined {
    const d = this.dims(v)?.[axis];
    return typeof d === 'number' ? d : undefined;
  }

  /** The values of a small integer tensor (perm, axes, a Reshape target) when they do not depend on dynamic dims. */
  ints(v: Value | undefined): number[] | undefined {
    if (!v) return undefined;
    const hit = this.intsMemo.get(v);
    if (hit !== undefined) return hit ?? undefined;
    let out: number[] | undefined;
    try {
      const a = [...this.ev[0].eval(v).data];
      const b = [...this.ev[1].eval(v).data];
      out = a.length === b.length && a.every((x, i) => x === b[i]) ? a : undefined;
    } catch {
      out = undefined;
    }
    this.intsMemo.set(v, out ?? null);
    return out;
  }

  /** Integer values per configuration (dynamic entries differ), e.g. a Reshape target computed from shapes. */
  intsIn(v: Value | undefined, c: 0 | 1): number[] | undefined {
    if (!v) return undefined;
    try {
      return [...this.ev[c].eval(v).data];
    } catch {
      return undefined;
    }
  }
}
