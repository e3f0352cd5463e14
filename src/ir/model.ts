/**
 * A model in IR form: the main graph, model-local functions and opset imports, lifted from a
 * ModelProto and lowered back. Fields the IR does not model are carried through untouched.
 */
import { fail } from '../errors.js';
import {
  Long,
  createMessage,
  fieldsExcept,
  onnx,
  toApproxNumber,
  toBigInt,
  type AttributeProto,
  type OperatorSetIdProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TypeProto,
  type ValueInfoProto,
} from '../onnx/codec.js';
import { ExternalDataFiles } from '../onnx/external.js';
import type { LoadedModel } from '../onnx/load.js';
import { Graph, NameRegistry, Node, type Dim, type TensorType, type Value } from './graph.js';

/** A problem found while lifting (kept so the validator can report it with everything else). */
export interface LiftIssue {
  graph: string;
  node?: string;
  value?: string;
  message: string;
}

export interface FunctionDef {
  domain: string;
  name: string;
  overload: string;
  /** formal input / output names of the body */
  inputs: string[];
  outputs: string[];
  body: Graph;
  opsets: Map<string, number>;
  /** FunctionProto fields the IR does not model (attribute, attribute_proto, doc_string, ...) */
  proto: Partial<FunctionProto>;
}

export class Model {
  readonly graph: Graph;
  readonly functions: FunctionDef[] = [];
  readonly opsets = new Map<string, number>();
  readonly issues: LiftIssue[] = [];
  readonly names = new NameRegistry();

  private constructor(
    /** the ModelProto it came from; graph, functions and opset_import are rebuilt on lowering */
    readonly proto: ModelProto,
    readonly external: ExternalDataFiles,
    readonly path: string | undefined,
  ) {
    this.graph = new Graph(proto.graph?.name ?? 'main', this.names);
  }

  static lift(loaded: LoadedModel | ModelProto): Model {
    const isLoaded = 'proto' in loaded && 'external' in loaded;
    const proto = isLoaded ? (loaded as LoadedModel).proto : (loaded as ModelProto);
    const model = new Model(proto, isLoaded ? (loaded as LoadedModel).external : new ExternalDataFiles(undefined), isLoaded ? (loaded as LoadedModel).path : undefined);
    liftOpsets(proto.opsetImport ?? [], model.opsets, model.issues, 'the model');
    if (!proto.graph || !Object.hasOwn(proto.graph, 'name')) defaultGraphNames.set(model.graph, model.graph.name);
    liftGraphInto(model.graph, proto.graph ?? {}, model.issues);
    const seen = new Set<string>();
    for (const fp of proto.functions ?? []) {
      const def = liftFunction(fp, model.issues);
      const key = `${def.domain}::${def.name}::${def.overload}`;
      if (seen.has(key)) model.issues.push({ graph: `function ${def.domain}.${def.name}`, message: `function ${def.domain}.${def.name} is defined twice in ModelProto.functions; keep one definition.` });
      seen.add(key);
      model.functions.push(def);
    }
    return model;
  }

  get irVersion(): number {
    return this.proto.irVersion == null ? 0 : toApproxNumber(this.proto.irVersion);
  }

  opsetVersion(domain = ''): number | undefined {
    return this.opsets.get(normalizeDomain(domain));
  }

  /** Imports `domain` at `version` (or keeps a higher import already there). */
  ensureOpset(domain: string, version: number): void {
    const d = normalizeDomain(domain);
    const cur = this.opsets.get(d);
    if (cur === undefined || cur < version) this.opsets.set(d, version);
  }

  findFunction(domain: string, name: string, overload = ''): FunctionDef | undefined {
    return this.functions.find((f) => f.domain === domain && f.name === name && f.overload === overload);
  }

  /** Adds (or replaces) a model-local function given as a FunctionProto. */
  setFunction(fp: FunctionProto): FunctionDef {
    const def = liftFunction(fp, this.issues);
    const i = this.functions.findIndex((f) => f.domain === def.domain && f.name === def.name && f.overload === def.overload);
    if (i >= 0) this.functions[i] = def;
    else this.functions.push(def);
    return def;
  }

  /** Back to a ModelProto; every field the IR did not model is as it was read. */
  lower(): ModelProto {
    const out: ModelProto = fieldsExcept(this.proto, new Set());
    out.graph = lowerGraph(this.graph);
    out.opsetImport = lowerOpsets(this.opsets, this.proto.opsetImport ?? []);
    if (this.functions.length > 0 || (this.proto.functions?.length ?? 0) > 0) out.functions = this.functions.map(lowerFunction);
    return createMessage(onnx.ModelProto, out);
  }
}

export function normalizeDomain(domain: string): string {
  return domain === 'ai.onnx' ? '' : domain;
}

export function typeFromProto(tp: TypeProto | null | undefined): TensorType | undefined {
  const t = tp?.tensorType;
  if (!t) return undefined;
  const shape: Dim[] | undefined = t.shape
    ? (t.shape.dim ?? []).map((d) => (d.dimValue != null ? toApproxNumber(d.dimValue) : d.dimParam ? d.dimParam : undefined))
    : undefined;
  return { elemType: t.elemType ?? 0, shape };
}

export function typeToProto(t: TensorType): TypeProto {
  return onnx.TypeProto.create({
    tensorType: onnx.TypeProto.Tensor.create({
      elemType: t.elemType,
      shape: t.shape
        ? onnx.TensorShapeProto.create({
            dim: t.shape.map((d) =>
              typeof d === 'number'
                ? onnx.TensorShapeProto.Dimension.create({ dimValue: Long.fromNumber(d) })
                : typeof d === 'string'
                  ? onnx.TensorShapeProto.Dimension.create({ dimParam: d })
                  : onnx.TensorShapeProto.Dimension.create({}),
            ),
          })
        : undefined,
    }),
  });
}

/** Graphs whose GraphProto had no name: the name lift made up, not written back unless changed. */
const defaultGraphNames = new WeakMap<Graph, string>();
/** opset_import entries as read, for functions (models keep theirs in `proto`). */
const functionOpsetsRead = new WeakMap<FunctionDef, OperatorSetIdProto[]>();

function liftOpsets(entries: OperatorSetIdProto[], into: Map<string, number>, issues: LiftIssue[], owner: string): void {
  for (const o of entries) {
    const domain = normalizeDomain(o.domain ?? '');
    const version = toBigInt(o.version);
    if (version < 1n || version > 10_000n) {
      issues.push({ graph: owner, message: `${owner} imports domain '${domain || 'ai.onnx'}' at version ${version}, which no opset has. Fix the opset_import entry (e.g. version 17 for the default domain).` });
    }
    if (into.has(domain) && into.get(domain) !== Number(version)) {
      issues.push({ graph: owner, message: `${owner} imports domain '${domain || 'ai.onnx'}' twice, at versions ${into.get(domain)} and ${version}; keep one opset_import entry.` });
    }
    into.set(domain, toApproxNumber(o.version));
  }
}

/** opset_import back to protobuf, reusing the entries as read where they did not change (spelling, unknown fields). */
function lowerOpsets(opsets: Map<string, number>, read: OperatorSetIdProto[]): OperatorSetIdProto[] {
  const byDomain = new Map<string, OperatorSetIdProto>();
  for (const o of read) if (!byDomain.has(normalizeDomain(o.domain ?? ''))) byDomain.set(normalizeDomain(o.domain ?? ''), o);
  return [...opsets].map(([domain, version]) => {
    const original = byDomain.get(domain);
    if (original && toApproxNumber(original.version) === version) return original as onnx.OperatorSetIdProto;
    // keep the original domain spelling of the default opset ("" vs "ai.onnx")
    return onnx.OperatorSetIdProto.create({ domain: original?.domain ?? domain, version: Long.fromNumber(version) });
  });
}

const GRAPH_FIELDS = new Set(['name', 'node', 'initializer', 'input', 'output', 'valueInfo']);

function tensorShape(t: { dims?: Array<Long | number> | null }): Dim[] {
  return (t.dims ?? []).map((d) => toApproxNumber(d));
}

function liftGraphInto(g: Graph, gp: GraphProto, issues: LiftIssue[]): void {
  g.proto = fieldsExcept(gp, GRAPH_FIELDS);
  const initializerNames = new Set<string>();
  for (const t of gp.initializer ?? []) {
    const name = t.name ?? '';
    if (name === '') issues.push({ graph: g.name, message: `graph '${g.name}' has an initializer without a name; every initializer needs one.` });
    if (initializerNames.has(name)) issues.push({ graph: g.name, value: name, message: `initializer '${name}' is defined twice in graph '${g.name}'; keep one.` });
    initializerNames.add(name);
    const v = g._defineValue(name);
    v.initializer = t;
    v.type = { elemType: t.dataType ?? 0, shape: tensorShape(t) };
    g.initializers.push(v);
  }
  for (const st of gp.sparseInitializer ?? []) {
    const name = st.values?.name ?? '';
    const v = g._defineValue(name);
    v.sparseInitializer = st;
    v.type = { elemType: st.values?.dataType ?? 0, shape: tensorShape(st) };
  }
  for (const vi of gp.input ?? []) {
    const name = vi.name ?? '';
    const v = g._defineValue(name);
    if (g.inputs.includes(v)) issues.push({ graph: g.name, value: name, message: `graph input '${name}' is listed twice in graph '${g.name}'; list it once.` });
    v.info = vi;
    v.type = typeFromProto(vi.type) ?? v.type;
    g.inputs.push(v);
  }
  for (const np of gp.node ?? []) liftNode(g, np, issues);
  for (const vi of gp.output ?? []) {
    const name = vi.name ?? '';
    let v = g.lookup(name);
    if (!v) {
      issues.push({ graph: g.name, value: name, message: `graph output '${name}' of graph '${g.name}' is not produced by any node, input or initializer. Remove it from the outputs or add the node that makes it.` });
      v = g._defineValue(name);
    }
    if (v.graph === g) {
      v.info = v.info ?? vi;
      v.type = typeFromProto(vi.type) ?? v.type;
    }
    g._outputInfo.set(v, vi);
    g.outputs.push(v);
  }
  for (const vi of gp.valueInfo ?? []) {
    const v = g.lookup(vi.name ?? '');
    g._valueInfo.push({ proto: vi, value: v });
    if (!v || v.graph !== g) continue;
    if (!v.info) v.info = vi;
    v.type = typeFromProto(vi.type) ?? v.type;
  }
  // values referenced but never defined (forward placeholders that no node produced)
  for (const v of g.values()) {
    if (!v.isDefined && v.useCount > 0) {
      const user = v.uses()[0]!.node;
      issues.push({ graph: g.name, node: user.describe(), value: v.name, message: `input '${v.name}' of ${user.describe()} in graph '${g.name}' is not produced by any node, graph input or initializer. Add what makes it, or make it a graph input.` });
    }
  }
}

const NODE_FIELDS = new Set(['input', 'output', 'name', 'opType', 'domain', 'attribute']);

function liftNode(g: Graph, np: NodeProto, issues: LiftIssue[]): Node {
  const node = new Node(g, np.opType ?? '', normalizeDomain(np.domain ?? ''), np.name ?? '');
  if (np.name) g.names.claim(np.name);
  node.proto = fieldsExcept(np, NODE_FIELDS);
  // keep fields that were present but empty, and the "ai.onnx" spelling of the default domain
  if (Object.hasOwn(np, 'domain') && (np.domain === 'ai.onnx' || np.domain === '')) node.proto.domain = np.domain;
  if (Object.hasOwn(np, 'name') && np.name === '') node.proto.name = '';
  for (const name of np.input ?? []) {
    node.addInput(name === '' ? undefined : (g.lookup(name) ?? g._defineValue(name)));
  }
  for (const a of np.attribute ?? []) {
    if (node.attributes.has(a.name ?? '')) {
      issues.push({ graph: g.name, node: node.describe(), message: `${node.describe()} has two attributes named '${a.name}'; keep one.` });
      continue;
    }
    node.attributes.set(a.name ?? '', a);
    const graphs = a.g ? [a.g] : (a.graphs ?? []);
    if (graphs.length > 0) {
      node.subgraphs.set(
        a.name ?? '',
        graphs.map((sub) => {
          const sg = new Graph(sub.name ?? `${node.name}_${a.name}`, g.names, g, node);
          if (!Object.hasOwn(sub, 'name')) defaultGraphNames.set(sg, sg.name);
          liftGraphInto(sg, sub, issues);
          return sg;
        }),
      );
    }
  }
  (np.output ?? []).forEach((name, i) => {
    if (name === '') return node._setOutput(i, undefined);
    const existing = g.lookup(name);
    if (existing && existing.graph === g && existing.isDefined) {
      const first = existing.producer ? existing.producer.describe() : existing.isGraphInput ? 'a graph input' : 'an initializer';
      issues.push({ graph: g.name, node: node.describe(), value: name, message: `value '${name}' is produced by ${node.describe()} but also by ${first === node.describe() ? 'another output of the same node' : first}; every value must have a single producer. Rename one of them.` });
      return node._setOutput(i, undefined);
    }
    if (existing && existing.graph !== g && existing.isDefined) {
      issues.push({ graph: g.name, node: node.describe(), value: name, message: `value '${name}' made by ${node.describe()} shadows a value of an outer graph; rename it (ONNX names are unique across nested graphs).` });
    }
    node._setOutput(i, g._defineValue(name));
  });
  g.nodes.push(node);
  return node;
}

function liftFunction(fp: FunctionProto, issues: LiftIssue[]): FunctionDef {
  const names = new NameRegistry();
  const body = new Graph(fp.name ?? 'function', names);
  const label = `function ${fp.domain}.${fp.name}`;
  for (const name of fp.input ?? []) {
    const v = body._defineValue(name);
    if (body.inputs.includes(v)) issues.push({ graph: label, value: name, message: `${label} lists input '${name}' twice.` });
    body.inputs.push(v);
  }
  for (const np of fp.node ?? []) liftNode(body, np, issues);
  for (const name of fp.output ?? []) {
    const v = body.lookup(name);
    if (!v) issues.push({ graph: label, value: name, message: `${label}: output '${name}' is not produced in the body. Add the node that makes it or fix the output name.` });
    body.outputs.push(v ?? body._defineValue(name));
  }
  for (const v of body.values()) {
    if (!v.isDefined && v.useCount > 0) {
      const user = v.uses()[0]!.node;
      issues.push({ graph: label, node: user.describe(), value: v.name, message: `${label}: input '${v.name}' of ${user.describe()} is not a function input and no node in the body makes it.` });
    }
  }
  const opsets = new Map<string, number>();
  liftOpsets(fp.opsetImport ?? [], opsets, issues, label);
  const rest = fieldsExcept(fp, new Set(['input', 'output', 'node', 'name', 'domain', 'overload', 'opsetImport']));
  if (Object.hasOwn(fp, 'overload') && fp.overload === '') rest.overload = '';
  const def: FunctionDef = { domain: fp.domain ?? '', name: fp.name ?? '', overload: fp.overload ?? '', inputs: [...(fp.input ?? [])], outputs: [...(fp.output ?? [])], body, opsets, proto: rest };
  functionOpsetsRead.set(def, fp.opsetImport ?? []);
  return def;
}

/** A ValueInfoProto for a graph input or output: the one read (renamed if the value was), or one from the IR type. */
function valueInfoFor(v: Value, read?: ValueInfoProto): ValueInfoProto {
  const info = read ?? v.info;
  if (info) return info.name === v.name ? (info as onnx.ValueInfoProto) : createMessage(onnx.ValueInfoProto, { ...fieldsExcept(info, new Set()), name: v.name });
  return onnx.ValueInfoProto.create({ name: v.name, type: v.type ? typeToProto(v.type) : undefined });
}

export function lowerGraph(g: Graph): GraphProto {
  const out: GraphProto = { ...(g.proto as GraphProto) };
  const unknowns = (g.proto as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknowns) (out as { $unknowns?: Uint8Array[] }).$unknowns = unknowns;
  if (defaultGraphNames.get(g) !== g.name) out.name = g.name;
  out.node = g.nodes.map(lowerNode);
  out.initializer = g.initializers.map((v) => {
    const t = v.initializer!;
    if (t.name !== v.name) t.name = v.name;
    return t;
  });
  out.input = g.inputs.map((v) => valueInfoFor(v));
  out.output = g.outputs.map((v) => valueInfoFor(v, g._outputInfo.get(v)));
  // value_info as read, in its order, for the values that remain; then info of values that stopped being inputs/outputs
  const valueInfo: ValueInfoProto[] = [];
  const covered = new Set<Value>();
  for (const { proto, value } of g._valueInfo) {
    if (!value) {
      valueInfo.push(proto);
      continue;
    }
    if (g.lookup(value.name) !== value) continue;
    covered.add(value);
    valueInfo.push(proto.name === value.name ? proto : createMessage(onnx.ValueInfoProto, { ...fieldsExcept(proto, new Set()), name: value.name }));
  }
  const io = new Set([...g.inputs, ...g.outputs]);
  const readProtos = new Set(g._valueInfo.map((e) => e.proto));
  for (const v of g.values()) {
    if (v.info && !covered.has(v) && !io.has(v) && !v.initializer && v.producer && !readProtos.has(v.info)) {
      valueInfo.push(createMessage(onnx.ValueInfoProto, { ...fieldsExcept(v.info, new Set()), name: v.name }));
    }
  }
  out.valueInfo = valueInfo;
  return createMessage(onnx.GraphProto, out);
}

function lowerAttribute(n: Node, a: AttributeProto): AttributeProto {
  const subs = n.subgraphs.get(a.name ?? '');
  if (!subs) return a;
  const fields = fieldsExcept(a, new Set(['g', 'graphs']));
  if (a.g) return createMessage(onnx.AttributeProto, { ...fields, g: lowerGraph(subs[0]!) });
  return createMessage(onnx.AttributeProto, { ...fields, graphs: subs.map(lowerGraph) });
}

function lowerNode(n: Node): NodeProto {
  const np: NodeProto = {
    ...(n.proto as NodeProto),
    input: n.inputs.map((v) => v?.name ?? ''),
    output: n.outputs.map((v) => v?.name ?? ''),
    opType: n.opType,
    attribute: [...n.attributes.values()].map((a) => lowerAttribute(n, a)),
  };
  if (n.name) np.name = n.name;
  if (n.domain) np.domain = n.domain;
  const unknowns = (n.proto as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknowns) (np as { $unknowns?: Uint8Array[] }).$unknowns = unknowns;
  return createMessage(onnx.NodeProto, np);
}

function lowerFunction(f: FunctionDef): FunctionProto {
  const fp: FunctionProto = {
    ...(f.proto as FunctionProto),
    name: f.name,
    domain: f.domain,
    input: f.body.inputs.map((v) => v.name),
    output: f.body.outputs.map((v) => v.name),
    node: f.body.nodes.map(lowerNode),
    opsetImport: lowerOpsets(f.opsets, functionOpsetsRead.get(f) ?? []),
  };
  if (f.overload) fp.overload = f.overload;
  const unknowns = (f.proto as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknowns) (fp as { $unknowns?: Uint8Array[] }).$unknowns = unknowns;
  return createMessage(onnx.FunctionProto, fp);
}

export function assertNoIssues(model: Model): void {
  if (model.issues.length > 0) fail('invalid-model', model.issues.map((i) => i.message).join('; '));
}
