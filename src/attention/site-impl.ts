/**
 * The one implementation of `AttentionSite` that every rule fills in: a rule proves a site and hands
 * over a plan (what it found, how to produce canonical Q/K/V/mask, how to turn a canonical result back
 * into the graph's layout); this class does the splicing the same way for all of them.
 */
import { fail } from '../errors.js';
import { positionsIn, type Graph, type Node, type Value } from '../ir/graph.js';
import { inferGraph } from '../ir/infer.js';
import { Builder } from './build.js';
import type { AttentionKind, AttentionMask, AttentionSite, KvCache } from './site.js';

export interface Materialized {
  q: Value;
  k: Value;
  v: Value;
  mask: Value | undefined;
  /** present K/V outputs of the replaced nodes and the new values that now produce them */
  presents?: Array<[Value, Value]>;
}

/** What a rule proved: the site's facts (documented on AttentionSite) plus how to splice it. */
export interface SitePlan
  extends Pick<
    AttentionSite,
    'rule' | 'anchor' | 'kind' | 'q' | 'k' | 'v' | 'heads' | 'kvHeads' | 'headDim' | 'valueHeadDim' | 'scale' | 'causal' | 'slidingWindow' | 'mask' | 'kvCache' | 'output' | 'nodes'
  > {
  maskImpliedByCausal: boolean;
  /** the materialized mask hides the keys after each query itself */
  maskIncludesCausal: boolean;
  /** where new nodes go */
  insertBefore: Node;
  notes: string[];
  /** the score type (element type of Q·Kᵀ) */
  scoreType: number;
  /** builds canonical inputs */
  materialize(b: Builder): Materialized;
  /** turns a canonical result [B, Hq, S, Dv] into the layout of `output` */
  restore(b: Builder, result: Value): Value;
  /** whether the original guarded softmax rows that were all masked (IsNaN → 0) */
  nanGuard: boolean;
}

export class Site implements AttentionSite {
  id: string;
  layer: number;
  private materialized: Materialized | undefined;
  private replaced = false;

  constructor(
    readonly plan: SitePlan,
    layer: number,
  ) {
    this.layer = layer;
    this.id = `layer${layer}.${plan.kind}`;
  }

  get kind(): AttentionKind { return this.plan.kind; }
  get q(): Value { return this.plan.q; }
  get k(): Value { return this.plan.k; }
  get v(): Value { return this.plan.v; }
  get heads(): number { return this.plan.heads; }
  get kvHeads(): number { return this.plan.kvHeads; }
  get headDim(): number { return this.plan.headDim; }
  get valueHeadDim(): number { return this.plan.valueHeadDim; }
  get scale(): number { return this.plan.scale; }
  get causal(): boolean { return this.plan.causal; }
  get slidingWindow(): number | undefined { return this.plan.slidingWindow; }
  get mask(): AttentionMask | undefined { return this.plan.mask; }
  get kvCache(): KvCache | undefined { return this.plan.kvCache; }
  get output(): Value { return this.plan.output; }
  get nodes(): Node[] { return this.plan.nodes; }
  get anchor(): Node { return this.plan.anchor; }
  get rule(): string { return this.plan.rule; }
  get maskImpliedByCausal(): boolean { return this.plan.maskImpliedByCausal; }
  get maskIncludesCausal(): boolean { return this.plan.maskIncludesCausal; }
  get insertBefore(): Node { return this.plan.insertBefore; }
  get notes(): string[] { return this.plan.notes; }

  private get graph(): Graph {
    return this.plan.anchor.graph;
  }

  private builder(hint: string): Builder {
    const before = this.graph.nodes.includes(this.plan.insertBefore) ? this.plan.insertBefore : undefined;
    return new Builder(this.graph, before, this.plan.rule, `${this.id}/${hint}`);
  }

  materializeInputs(): { q: Value; k: Value; v: Value; mask: Value | undefined } {
    if (this.replaced) fail('usage', `attention site ${this.id} was already replaced; materializeInputs() must come before replaceOutput().`);
    if (!this.materialized) {
      const b = this.builder('in');
      this.materialized = this.plan.materialize(b);
      inferNodes(b.made);
      const m = this.materialized.mask;
      if (m && !m.type) m.type = { elemType: this.plan.scoreType, shape: undefined };
    }
    const { q, k, v, mask } = this.materialized;
    return { q, k, v, mask };
  }

  replaceOutput(result: Value): void {
    if (this.replaced) fail('usage', `attention site ${this.id} was already replaced.`);
    this.materializeInputs();
    const b = this.builder('out');
    let out = this.plan.restore(b, result);
    if (this.plan.nanGuard) {
      const isNan = b.op('IsNaN', [out]);
      out = b.op('Where', [isNan, b.scalarOf(0, this.plan.scoreType), out]);
    }
    const g = this.graph;
    const doomed = new Set(this.plan.nodes);
    // present K/V outputs move to the values that now produce them
    for (const [old, fresh] of this.materialized!.presents ?? []) {
      if (old.producer && doomed.has(old.producer)) g.replaceAllUsesWith(old, fresh, { graphOutputs: true });
    }
    g.replaceAllUsesWith(this.plan.output, out, { graphOutputs: true });
    g.removeNodes(this.plan.nodes);
    this.replaced = true;
    // only nodes that now read new values can be out of order (e.g. a result appended at the end of the graph)
    const touched = new Set<Node>([...b.made, ...out.consumers(), ...(this.materialized!.presents ?? []).flatMap(([, v]) => v.consumers())]);
    g.sortIfOutOfOrder(touched);
    inferNodes(b.made);
  }
}

/** Shape inference over just the nodes a splice made (their inputs are typed already), not the whole graph. */
function inferNodes(nodes: Node[]): void {
  if (nodes.length) inferGraph({ nodes } as unknown as Graph);
}

/**
 * The nodes of `candidates` that only the site uses: a node stays only when every output is either
 * the site's output (to be rerouted), a value listed in `rerouted`, or used by other candidates alone
 * and not a graph output. Repeated until nothing changes.
 */
export function exclusiveNodes(candidates: Iterable<Node>, output: Value, rerouted: ReadonlyArray<Value> = []): Node[] {
  const set = new Set(candidates);
  const exempt = new Set([output, ...rerouted]);
  const escapes = (n: Node): boolean =>
    n.outputs.some((o) => o && !exempt.has(o) && (o.isGraphOutput || o.uses().some((u) => !set.has(u.node))));
  // a node that leaves makes its producers' outputs escape in turn: revisit them
  const queue = [...set];
  while (queue.length) {
    const n = queue.pop()!;
    if (!set.has(n) || !escapes(n)) continue;
    set.delete(n);
    for (const x of n.inputs) {
      const p = x?.producer;
      if (p && set.has(p)) queue.push(p);
    }
  }
  const g = output.producer?.graph;
  const order = g ? positionsIn(g, set) : new Map<Node, number>();
  return [...set].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
}
