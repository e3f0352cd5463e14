/**
 * The graph IR: values, nodes and graphs with use-def links both ways.
 *
 * A `Value` knows its producer and its uses; a `Node` knows its inputs and outputs; a `Graph` keeps its
 * nodes in order. All mutation goes through the methods here (`addNode`, `setInput`,
 * `replaceAllUsesWith`, `removeNodes`), which keep those links true. Tensors stay the protobuf objects
 * they were read as (their bytes are views into the model file), so lifting copies no weights.
 */
import { AttnpassError, fail } from '../errors.js';
import { toApproxNumber, type AttributeProto, type NodeProto, type SparseTensorProto, type TensorProto, type ValueInfoProto } from '../onnx/codec.js';

/** A dimension: a number when known, a symbol (e.g. "batch") when symbolic, undefined when unknown. */
export type Dim = number | string | undefined;

export interface TensorType {
  /** ONNX TensorProto.DataType code; 0 when unknown */
  elemType: number;
  /** undefined when even the rank is unknown */
  shape: Dim[] | undefined;
}

export interface Use {
  node: Node;
  index: number;
}

export class Value {
  /** set by type/shape inference or read from value_info */
  type: TensorType | undefined;
  /** the constant's tensor when this value is an initializer */
  initializer: TensorProto | undefined;
  /** the tensor when this value is a sparse initializer (GraphProto.sparse_initializer); written back as read */
  sparseInitializer: SparseTensorProto | undefined;
  /** the ValueInfoProto this value was read with (doc strings, metadata), kept for writing back */
  info: ValueInfoProto | undefined;
  private producerNode: Node | undefined;
  private producerSlot = -1;
  private readonly useList: Use[] = [];

  constructor(
    public name: string,
    readonly graph: Graph,
  ) {}

  get producer(): Node | undefined {
    return this.producerNode;
  }

  get producerIndex(): number {
    return this.producerSlot;
  }

  /** A copy of the uses (node, input index); subgraph nodes that read this value from an outer scope included. */
  uses(): Use[] {
    return [...this.useList];
  }

  get useCount(): number {
    return this.useList.length;
  }

  /** Distinct consuming nodes, in first-use order. */
  consumers(): Node[] {
    return [...new Set(this.useList.map((u) => u.node))];
  }

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  get isConstant(): boolean {
    return this.initializer !== undefined || this.sparseInitializer !== undefined || this.producerNode?.opType === 'Constant';
  }

  /** True when something defines the value: a node, an initializer (dense or sparse) or a graph input. */
  get isDefined(): boolean {
    return this.producerNode !== undefined || this.initializer !== undefined || this.sparseInitializer !== undefined || this.isGraphInput;
  }

  get shape(): Dim[] | undefined {
    return this.type?.shape;
  }

  get rank(): number | undefined {
    return this.type?.shape?.length;
  }

  /** @internal link maintenance; use Graph/Node methods instead */
  _setProducer(node: Node | undefined, index: number): void {
    this.producerNode = node;
    this.producerSlot = index;
  }

  /** @internal */
  _addUse(use: Use): void {
    this.useList.push(use);
  }

  /** @internal */
  _removeUse(node: Node, index: number): void {
    const i = this.useList.findIndex((u) => u.node === node && u.index === index);
    if (i >= 0) this.useList.splice(i, 1);
  }

  toString(): string {
    return `'${this.name}'`;
  }
}

export type AttributeValue = AttributeProto;

export class Node {
  name: string;
  opType: string;
  domain: string;
  /** attributes by name, as protobuf; graph-valued ones are lifted into `subgraphs` and rebuilt on lowering */
  readonly attributes = new Map<string, AttributeProto>();
  /** lifted subgraphs of graph attributes (If: then_branch/else_branch, Loop/Scan: body) */
  readonly subgraphs = new Map<string, Graph[]>();
  /** NodeProto fields the IR does not model (doc_string, metadata_props, unknown fields), written back as read */
  proto: Partial<NodeProto> = {};
  private readonly inputList: Array<Value | undefined> = [];
  private readonly outputList: Array<Value | undefined> = [];

  constructor(
    readonly graph: Graph,
    opType: string,
    domain: string,
    name: string,
  ) {
    this.opType = opType;
    this.domain = domain;
    this.name = name;
  }

  get inputs(): ReadonlyArray<Value | undefined> {
    return this.inputList;
  }

  get outputs(): ReadonlyArray<Value | undefined> {
    return this.outputList;
  }

  /** Input i, which must be present. */
  input(i: number): Value {
    const v = this.inputList[i];
    if (!v) fail('invalid-model', `node ${this.describe()} has no input ${i}.`);
    return v;
  }

  /** Output i, which must be present. */
  output(i = 0): Value {
    const v = this.outputList[i];
    if (!v) fail('invalid-model', `node ${this.describe()} has no output ${i}.`);
    return v;
  }

  /** Sets input i (links kept true); `undefined` marks an omitted optional input. */
  setInput(i: number, value: Value | undefined): void {
    const old = this.inputList[i];
    if (old) old._removeUse(this, i);
    while (this.inputList.length <= i) this.inputList.push(undefined);
    this.inputList[i] = value;
    if (value) value._addUse({ node: this, index: i });
  }

  /** Appends an input. */
  addInput(value: Value | undefined): void {
    this.setInput(this.inputList.length, value);
  }

  /** @internal used by Graph when creating the node */
  _setOutput(i: number, value: Value | undefined): void {
    while (this.outputList.length <= i) this.outputList.push(undefined);
    this.outputList[i] = value;
    value?._setProducer(this, i);
  }

  /** @internal unlinks every input */
  _detachInputs(): void {
    this.inputList.forEach((v, i) => v?._removeUse(this, i));
  }

  get isFused(): boolean {
    return this.domain !== '' && this.domain !== 'ai.onnx';
  }

  /** Outer-scope values read by this node's subgraphs (they count as inputs for ordering). */
  implicitInputs(): Value[] {
    if (this.subgraphs.size === 0) return [];
    const inner = new Set<Graph>();
    const collect = (g: Graph): void => {
      inner.add(g);
      for (const n of g.nodes) for (const subs of n.subgraphs.values()) subs.forEach(collect);
    };
    for (const subs of this.subgraphs.values()) subs.forEach(collect);
    const out = new Set<Value>();
    for (const g of inner) {
      for (const n of g.nodes) for (const v of n.inputs) if (v && !inner.has(v.graph)) out.add(v);
      for (const v of g.outputs) if (!inner.has(v.graph)) out.add(v);
    }
    return [...out];
  }

  attr(name: string): AttributeProto | undefined {
    return this.attributes.get(name);
  }

  attrInt(name: string): number | undefined;
  attrInt(name: string, fallback: number): number;
  attrInt(name: string, fallback?: number): number | undefined {
    const a = this.attributes.get(name);
    const isInt = a !== undefined && (a.type === 2 || (!a.type && Object.prototype.hasOwnProperty.call(a, 'i')));
    return isInt && a.i != null ? toApproxNumber(a.i) : fallback;
  }

  attrFloat(name: string): number | undefined;
  attrFloat(name: string, fallback: number): number;
  attrFloat(name: string, fallback?: number): number | undefined {
    const a = this.attributes.get(name);
    // decoded and created messages inherit field defaults (f = 0) from the prototype: go by the type, else by presence
    const isFloat = a !== undefined && (a.type === 1 || (!a.type && Object.prototype.hasOwnProperty.call(a, 'f')));
    return isFloat ? (a.f ?? 0) : fallback;
  }

  attrInts(name: string): number[] | undefined {
    const a = this.attributes.get(name);
    return a?.ints ? a.ints.map(toApproxNumber) : undefined;
  }

  attrString(name: string): string | undefined {
    const s = this.attributes.get(name)?.s;
    return s ? new TextDecoder().decode(s) : undefined;
  }

  attrTensor(name: string): TensorProto | undefined {
    return this.attributes.get(name)?.t ?? undefined;
  }

  /** "Softmax 'node_name'" — how errors and reports name a node. */
  describe(): string {
    const opType = this.opType || '(no op_type)';
    const op = this.domain && this.domain !== 'ai.onnx' ? `${this.domain}.${opType}` : opType;
    return `${op} '${this.name || '(unnamed)'}'`;
  }

  toString(): string {
    return this.describe();
  }
}

export interface NodeSpec {
  opType: string;
  domain?: string;
  name?: string;
  inputs: ReadonlyArray<Value | undefined>;
  /** output count (names are generated from `name`) or explicit output names */
  outputs?: number | string[];
  attributes?: AttributeProto[];
  /** insert before this node (default: append) */
  before?: Node;
  /** metadata_props to attach (e.g. the rule that made the node) */
  metadata?: Record<string, string>;
}

/** Names unique across a model (ONNX forbids a subgraph or function reusing an outer name). */
export class NameRegistry {
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();

  has(name: string): boolean {
    return this.used.has(name);
  }

  claim(name: string): void {
    this.used.add(name);
  }

  release(name: string): void {
    this.used.delete(name);
  }

  fresh(base: string): string {
    const stem = base || 'v';
    if (!this.used.has(stem)) {
      this.used.add(stem);
      return stem;
    }
    let n = this.counters.get(stem) ?? 1;
    while (this.used.has(`${stem}_${n}`)) n++;
    this.counters.set(stem, n + 1);
    const name = `${stem}_${n}`;
    this.used.add(name);
    return name;
  }
}

export class Graph {
  name: string;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** values defined in this scope (inputs, initializers, node outputs) by name */
  private readonly scope = new Map<string, Value>();
  /** initializer values, in the order they will be written */
  readonly initializers: Value[] = [];
  /** GraphProto fields the IR does not model, written back as read */
  proto: Record<string, unknown> = {};
  /**
   * @internal value_info entries as read, in file order, each with the value it described at lift time.
   * Lowering writes them back in this order for the values that still exist (renamed as they are now).
   */
  readonly _valueInfo: Array<{ proto: ValueInfoProto; value: Value | undefined }> = [];
  /** @internal the output ValueInfoProtos as read (a subgraph output may be an outer value with its own info) */
  readonly _outputInfo = new Map<Value, ValueInfoProto>();
  constructor(
    name: string,
    readonly names: NameRegistry,
    readonly parent: Graph | undefined = undefined,
    /** the node whose attribute holds this graph, for subgraphs */
    readonly ownerNode: Node | undefined = undefined,
  ) {
    this.name = name;
  }

  /** Finds a value by name in this scope or an enclosing one. */
  lookup(name: string): Value | undefined {
    return this.scope.get(name) ?? this.parent?.lookup(name);
  }

  /** True when `v` is defined in this graph's own scope. */
  ownsInScope(v: Value): boolean {
    return this.scope.get(v.name) === v;
  }

  /** True when `g` is this graph or nested inside it. */
  isInside(g: Graph): boolean {
    for (let cur: Graph | undefined = g; cur; cur = cur.parent) if (cur === this) return true;
    return false;
  }

  get root(): Graph {
    let g: Graph = this;
    while (g.parent) g = g.parent;
    return g;
  }

  values(): Value[] {
    return [...this.scope.values()];
  }

  /** A new value defined in this scope with a model-unique name derived from `base`. */
  createValue(base: string): Value {
    const v = new Value(this.names.fresh(base), this);
    this.scope.set(v.name, v);
    return v;
  }

  /** @internal lift: a value with exactly this name */
  _defineValue(name: string): Value {
    const existing = this.scope.get(name);
    if (existing) return existing;
    this.names.claim(name);
    const v = new Value(name, this);
    this.scope.set(name, v);
    return v;
  }

  addInput(name: string, type: TensorType | undefined, position = this.inputs.length): Value {
    const v = this.names.has(name) ? fail('usage', `cannot add graph input '${name}': the name is taken.`) : this._defineValue(name);
    v.type = type;
    this.inputs.splice(position, 0, v);
    return v;
  }

  /** Adds an initializer (the tensor's name is set to the value's unique name). */
  addInitializer(tensor: TensorProto, base = tensor.name ?? 'const'): Value {
    const v = this.createValue(base || 'const');
    tensor.name = v.name;
    v.initializer = tensor;
    v.type = { elemType: tensor.dataType ?? 0, shape: (tensor.dims ?? []).map(toApproxNumber) };
    this.initializers.push(v);
    return v;
  }

  /** Creates a node with fresh output values; inserted before `spec.before` or appended. */
  addNode(spec: NodeSpec): Node {
    const name = spec.name ? this.names.fresh(spec.name) : this.names.fresh(`${spec.opType}_node`);
    const node = new Node(this, spec.opType, spec.domain ?? '', name);
    for (const a of spec.attributes ?? []) node.attributes.set(a.name ?? '', a);
    spec.inputs.forEach((v) => node.addInput(v));
    const outs = spec.outputs ?? 1;
    const outNames = typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${name}_out${outs > 1 ? i : ''}`) : outs;
    outNames.forEach((n, i) => node._setOutput(i, this.createValue(n)));
    if (spec.metadata) {
      node.proto.metadataProps = Object.entries(spec.metadata).map(([key, value]) => ({ key, value }));
    }
    this.insert(node, spec.before);
    return node;
  }

  /** @internal places an already built node */
  insert(node: Node, before?: Node): void {
    if (before) {
      const i = this.nodes.indexOf(before);
      if (i < 0) fail('usage', `cannot insert before ${before.describe()}: it is not in graph '${this.name}'.`);
      this.nodes.splice(i, 0, node);
    } else {
      this.nodes.push(node);
    }
  }

  /** Redirects every use of `from` to `to`. Refuses to rewire a graph output unless `graphOutputs` is set. */
  replaceAllUsesWith(from: Value, to: Value, options: { graphOutputs?: boolean } = {}): void {
    if (from === to) return;
    if (from.isGraphOutput) {
      if (!options.graphOutputs) {
        fail('usage', `cannot replace ${from}: it is an output of graph '${from.graph.name}'. Pass { graphOutputs: true } to rewire the output too.`);
      }
      this.replaceGraphOutput(from, to);
    }
    for (const use of from.uses()) use.node.setInput(use.index, to);
  }

  /** Makes `to` produce the graph output that `from` was; `to` takes the output's name so callers see no change. */
  replaceGraphOutput(from: Value, to: Value): void {
    const g = from.graph;
    const i = g.outputs.indexOf(from);
    if (i < 0) return;
    const outputName = from.name;
    g.outputs[i] = to;
    if (to.graph === g && to.producer && !to.isGraphInput && !to.initializer && !g.outputs.some((o, j) => j !== i && o === to)) {
      // keep the public name stable: swap names
      g.scope.delete(to.name);
      g.scope.delete(from.name);
      const toName = to.name;
      to.name = outputName;
      from.name = toName;
      g.scope.set(to.name, to);
      g.scope.set(from.name, from);
      to.info = to.info ?? from.info;
    }
  }

  /**
   * Removes nodes. Checks everything first: each output of a removed node must be unused or used only by
   * other removed nodes (or their subgraphs), and must not be a graph output. Nothing changes on failure.
   */
  removeNodes(nodes: Iterable<Node>): void {
    const doomed = new Set(nodes);
    const inDoomed = (n: Node): boolean => {
      for (let g: Graph | undefined = n.graph; g; g = g.parent) {
        if (g === n.graph && doomed.has(n)) return true;
        if (g.ownerNode && doomed.has(g.ownerNode)) return true;
      }
      return false;
    };
    for (const node of doomed) {
      if (node.graph !== this) fail('usage', `cannot remove ${node.describe()}: it belongs to graph '${node.graph.name}', not '${this.name}'.`);
      for (const out of node.outputs) {
        if (!out) continue;
        if (out.isGraphOutput) fail('usage', `cannot remove ${node.describe()}: its output ${out} is a graph output.`);
        const live = out.uses().find((u) => !inDoomed(u.node));
        if (live) fail('usage', `cannot remove ${node.describe()}: its output ${out} is still used by ${live.node.describe()}.`);
      }
    }
    for (const node of doomed) {
      node._detachInputs();
      for (const subs of node.subgraphs.values()) subs.forEach((g) => g.detachAll());
      for (const out of node.outputs) {
        if (!out) continue;
        out._setProducer(undefined, -1);
        this.scope.delete(out.name);
        this.names.release(out.name);
      }
    }
    let kept = 0;
    for (const n of this.nodes) if (!doomed.has(n)) this.nodes[kept++] = n;
    this.nodes.length = kept;
  }

  removeNode(node: Node): void {
    this.removeNodes([node]);
  }

  /** Drops an unused initializer. */
  removeInitializer(v: Value): void {
    if (v.useCount > 0 || v.isGraphOutput) fail('usage', `cannot remove initializer ${v}: it is still used.`);
    const i = this.initializers.indexOf(v);
    if (i >= 0) this.initializers.splice(i, 1);
    const j = this.inputs.indexOf(v);
    if (j >= 0) this.inputs.splice(j, 1);
    this.scope.delete(v.name);
    this.names.release(v.name);
  }

  /** @internal unlinks every node's inputs (used when a subgraph's owner is removed) */
  detachAll(): void {
    for (const n of this.nodes) {
      n._detachInputs();
      for (const subs of n.subgraphs.values()) subs.forEach((g) => g.detachAll());
    }
  }

  /** Every node of this graph and, recursively, its subgraphs. */
  *allNodes(): Generator<Node> {
    for (const n of this.nodes) {
      yield n;
      for (const subs of n.subgraphs.values()) for (const g of subs) yield* g.allNodes();
    }
  }

  /**
   * Sorts only when a node comes before a producer of its inputs (checking just `only` when given: the
   * nodes a change touched); a graph in order is left as it is, at the cost of one scan instead of a sort.
   */
  sortIfOutOfOrder(only?: ReadonlySet<Node>): void {
    if (!isInTopologicalOrder(this, only)) this.topologicalSort();
  }

  /** Reorders nodes so every node comes after the producers of its inputs (stable). Throws on a cycle. */
  topologicalSort(): void {
    const order = topologicalOrder(this);
    if (!order.ok) {
      throw new AttnpassError('invalid-model', `graph '${this.name}' has a cycle through ${order.cycle.map((n) => n.describe()).join(' → ')}.`);
    }
    this.nodes.length = 0;
    this.nodes.push(...order.nodes);
  }
}

/**
 * True when every node (of `only`, when given) comes after the producers of its inputs, implicit ones
 * included; a graph in that order has no cycle either.
 */
export function isInTopologicalOrder(graph: Graph, only?: ReadonlySet<Node>): boolean {
  const checked = only ?? graph.nodes;
  const position = positionsIn(graph, only && withLocalProducers(graph, only));
  const producedLater = (v: Value | undefined, at: number): boolean => v?.producer?.graph === graph && (position.get(v.producer) ?? -1) >= at;
  for (const n of checked) {
    const at = position.get(n);
    if (at === undefined) continue;
    if (n.inputs.some((v) => producedLater(v, at))) return false;
    if (n.subgraphs.size > 0 && n.implicitInputs().some((v) => producedLater(v, at))) return false;
  }
  return true;
}

/** `nodes` and the producers in `graph` of everything they read. */
function withLocalProducers(graph: Graph, nodes: ReadonlySet<Node>): Set<Node> {
  const out = new Set(nodes);
  for (const n of nodes) {
    for (const v of n.inputs) if (v?.producer?.graph === graph) out.add(v.producer);
    if (n.subgraphs.size > 0) for (const v of n.implicitInputs()) if (v.producer?.graph === graph) out.add(v.producer);
  }
  return out;
}

/** The positions of `nodes` (of all, when not given) in `graph`'s node list; nodes of other graphs are absent. */
export function positionsIn(graph: Graph, nodes?: ReadonlySet<Node>): Map<Node, number> {
  const position = new Map<Node, number>();
  const all = graph.nodes;
  for (let i = 0; i < all.length; i++) if (!nodes || nodes.has(all[i]!)) position.set(all[i]!, i);
  return position;
}

export type TopoResult = { ok: true; nodes: Node[] } | { ok: false; cycle: Node[] };

/** Kahn's algorithm, stable with respect to the current order (a min-heap on position); reports one cycle on failure. */
export function topologicalOrder(graph: Graph): TopoResult {
  const index = new Map(graph.nodes.map((n, i) => [n, i] as const));
  const deps = new Map<Node, Set<Node>>();
  const dependents = new Map<Node, Node[]>();
  for (const n of graph.nodes) {
    const d = new Set<Node>();
    const implicit = n.subgraphs.size > 0 ? n.implicitInputs() : [];
    for (const v of [...n.inputs, ...implicit]) {
      const p = v?.producer;
      if (p && index.has(p)) d.add(p);
    }
    deps.set(n, d);
    for (const p of d) (dependents.get(p) ?? dependents.set(p, []).get(p)!).push(n);
  }
  const remaining = new Map([...deps].map(([n, d]) => [n, d.size] as const));
  const heap: number[] = [];
  const push = (i: number): void => {
    heap.push(i);
    for (let c = heap.length - 1; c > 0; ) {
      const p = (c - 1) >> 1;
      if (heap[p]! <= heap[c]!) break;
      [heap[p], heap[c]] = [heap[c]!, heap[p]!];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let p = 0; ; ) {
        const l = 2 * p + 1;
        const r = l + 1;
        let m = p;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === p) break;
        [heap[p], heap[m]] = [heap[m]!, heap[p]!];
        p = m;
      }
    }
    return top;
  };
  graph.nodes.forEach((n, i) => {
    if (remaining.get(n) === 0) push(i);
  });
  const out: Node[] = [];
  while (heap.length) {
    const n = graph.nodes[pop()]!;
    out.push(n);
    for (const m of dependents.get(n) ?? []) {
      const left = remaining.get(m)! - 1;
      remaining.set(m, left);
      if (left === 0) push(index.get(m)!);
    }
  }
  if (out.length === graph.nodes.length) return { ok: true, nodes: out };
  const done = new Set(out);
  const stuck = new Set(graph.nodes.filter((n) => !done.has(n)));
  // walk back through unresolved producers until a node repeats
  const cycle: Node[] = [];
  const seen = new Set<Node>();
  let cur: Node | undefined = graph.nodes.find((n) => stuck.has(n));
  while (cur && !seen.has(cur)) {
    seen.add(cur);
    cycle.push(cur);
    cur = [...deps.get(cur)!].find((p) => stuck.has(p));
  }
  const start = cur ? cycle.indexOf(cur) : 0;
  return { ok: false, cycle: cycle.slice(start).reverse() };
}
