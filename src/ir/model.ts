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
  toNumber,
  type AttributeProto,
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
    for (const o of proto.opsetImport ?? []) model.opsets.set(normalizeDomain(o.domain ?? ''), toNumber(o.version));
    liftGraphInto(model.graph, proto.graph ?? {}, model.issues);
    for (const fp of proto.functions ?? []) model.functions.push(liftFunction(fp, model.issues));
    return model;
  }

  get irVersion(): number {
    return this.proto.irVersion == null ? 0 : toNumber(this.proto.irVersion);
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
    out.opsetImport = [...this.opsets].map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version: Long.fromNumber(version) }));
    // keep the original domain spelling of the default opset ("" vs "ai.onnx")
    const original = new Map((this.proto.opsetImport ?? []).map((o) => [normalizeDomain(o.domain ?? ''), o.domain ?? ''] as const));
    for (const o of out.opsetImport) o.domain = original.get(o.domain ?? '') ?? o.domain;
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
    ? (t.shape.dim ?? []).map((d) => (d.dimValue != null ? toNumber(d.dimValue) : d.dimParam ? d.dimParam : undefined))
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

const GRAPH_FIELDS = new Set(['name', 'node', 'initializer', 'input', 'output', 'valueInfo']);

function liftGraphInto(g: Graph, gp: GraphProto, issues: LiftIssue[]): void {
  g.proto = fieldsExcept(gp, GRAPH_FIELDS);
  for (const t of gp.initializer ?? []) {
    const name = t.name ?? '';
    if (g.lookup(name)?.initializer) issues.push({ graph: g.name, value: name, message: `initializer '${name}' is defined twice` });
    const v = g._defineValue(name);
    v.initializer = t;
    v.type = { elemType: t.dataType ?? 0, shape: (t.dims ?? []).map((d) => toNumber(d)) };
    g.initializers.push(v);
  }
  for (const vi of gp.input ?? []) {
    const name = vi.name ?? '';
    const v = g._defineValue(name);
    if (g.inputs.includes(v)) issues.push({ graph: g.name, value: name, message: `graph input '${name}' is listed twice` });
    v.info = vi;
    v.type = typeFromProto(vi.type) ?? v.type;
    g.inputs.push(v);
  }
  for (const np of gp.node ?? []) liftNode(g, np, issues);
  for (const vi of gp.output ?? []) {
    const name = vi.name ?? '';
    let v = g.lookup(name);
    if (!v) {
      issues.push({ graph: g.name, value: name, message: `graph output '${name}' is not produced by any node, input or initializer` });
      v = g._defineValue(name);
    }
    if (v.graph === g) {
      v.info = v.info ?? vi;
      v.type = typeFromProto(vi.type) ?? v.type;
    }
    g.outputs.push(v);
  }
  for (const vi of gp.valueInfo ?? []) {
    const v = g.lookup(vi.name ?? '');
    if (!v || v.graph !== g) continue;
    if (!v.info) v.info = vi;
    v.type = typeFromProto(vi.type) ?? v.type;
  }
  // values referenced but never defined (forward placeholders that no node produced)
  for (const v of g.values()) {
    if (!v.producer && !v.initializer && !v.isGraphInput && v.useCount > 0) {
      const user = v.uses()[0]!.node;
      issues.push({ graph: g.name, node: user.describe(), value: v.name, message: `input '${v.name}' of ${user.describe()} is not produced by any node, graph input or initializer` });
    }
  }
}

const NODE_FIELDS = new Set(['input', 'output', 'name', 'opType', 'domain', 'attribute']);

function liftNode(g: Graph, np: NodeProto, issues: LiftIssue[]): Node {
  const node = new Node(g, np.opType ?? '', normalizeDomain(np.domain ?? ''), np.name ?? '');
  if (np.name) g.names.claim(np.name);
  node.proto = fieldsExcept(np, NODE_FIELDS);
  if (np.domain === 'ai.onnx') node.proto.domain = 'ai.onnx';
  for (const name of np.input ?? []) {
    node.addInput(name === '' ? undefined : (g.lookup(name) ?? g._defineValue(name)));
  }
  for (const a of np.attribute ?? []) {
    node.attributes.set(a.name ?? '', a);
    const graphs = a.g ? [a.g] : (a.graphs ?? []);
    if (graphs.length > 0) {
      node.subgraphs.set(
        a.name ?? '',
        graphs.map((sub) => {
          const sg = new Graph(sub.name ?? `${node.name}_${a.name}`, g.names, g, node);
          liftGraphInto(sg, sub, issues);
          return sg;
        }),
      );
    }
  }
  (np.output ?? []).forEach((name, i) => {
    if (name === '') return node._setOutput(i, undefined);
    const existing = g.lookup(name);
    if (existing && existing.graph === g && (existing.producer || existing.initializer || existing.isGraphInput)) {
      const first = existing.producer ? existing.producer.describe() : existing.initializer ? 'an initializer' : 'a graph input';
      issues.push({ graph: g.name, node: node.describe(), value: name, message: `value '${name}' is produced by ${node.describe()} but also by ${first}; every value must have a single producer` });
      return;
    }
    if (existing && existing.graph !== g && (existing.producer || existing.initializer || existing.isGraphInput)) {
      issues.push({ graph: g.name, node: node.describe(), value: name, message: `value '${name}' made by ${node.describe()} shadows a value of an outer graph` });
    }
    node._setOutput(i, g._defineValue(name));
  });
  g.nodes.push(node);
  return node;
}

function liftFunction(fp: FunctionProto, issues: LiftIssue[]): FunctionDef {
  const names = new NameRegistry();
  const body = new Graph(fp.name ?? 'function', names);
  for (const name of fp.input ?? []) body.inputs.push(body._defineValue(name));
  for (const np of fp.node ?? []) liftNode(body, np, issues);
  for (const name of fp.output ?? []) {
    const v = body.lookup(name);
    if (!v) issues.push({ graph: `function ${fp.domain}.${fp.name}`, value: name, message: `function output '${name}' is not produced in the body` });
    body.outputs.push(v ?? body._defineValue(name));
  }
  const opsets = new Map<string, number>();
  for (const o of fp.opsetImport ?? []) opsets.set(normalizeDomain(o.domain ?? ''), toNumber(o.version));
  const rest = fieldsExcept(fp, new Set(['input', 'output', 'node', 'name', 'domain', 'overload', 'opsetImport']));
  return { domain: fp.domain ?? '', name: fp.name ?? '', overload: fp.overload ?? '', inputs: [...(fp.input ?? [])], outputs: [...(fp.output ?? [])], body, opsets, proto: rest };
}

function valueInfoFor(v: Value): ValueInfoProto {
  if (v.info) return createMessage(onnx.ValueInfoProto, { ...fieldsExcept(v.info, new Set()), name: v.name, type: v.info.type ?? (v.type ? typeToProto(v.type) : undefined) });
  return onnx.ValueInfoProto.create({ name: v.name, type: v.type ? typeToProto(v.type) : undefined });
}

export function lowerGraph(g: Graph): GraphProto {
  const out: GraphProto = { ...(g.proto as GraphProto) };
  const unknowns = (g.proto as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknowns) (out as { $unknowns?: Uint8Array[] }).$unknowns = unknowns;
  out.name = g.name;
  out.node = g.nodes.map(lowerNode);
  out.initializer = g.initializers.map((v) => {
    const t = v.initializer!;
    if (t.name !== v.name) t.name = v.name;
    return t;
  });
  out.input = g.inputs.map(valueInfoFor);
  out.output = g.outputs.map(valueInfoFor);
  const io = new Set([...g.inputs, ...g.outputs]);
  out.valueInfo = g.values().filter((v) => v.info && !io.has(v) && !v.initializer && v.producer).map((v) => createMessage(onnx.ValueInfoProto, { ...fieldsExcept(v.info!, new Set()), name: v.name }));
  return createMessage(onnx.GraphProto, out);
}

function lowerNode(n: Node): NodeProto {
  const attribute: AttributeProto[] = [...n.attributes.values()].map((a) => {
    const subs = n.subgraphs.get(a.name ?? '');
    if (!subs) return a;
    if (a.g) return { ...a, g: lowerGraph(subs[0]!) };
    return { ...a, graphs: subs.map(lowerGraph) };
  });
  const np: NodeProto = {
    ...(n.proto as NodeProto),
    input: n.inputs.map((v) => v?.name ?? ''),
    output: n.outputs.map((v) => v?.name ?? ''),
    opType: n.opType,
    attribute,
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
    opsetImport: [...f.opsets].map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version: Long.fromNumber(version) })),
  };
  if (f.overload) fp.overload = f.overload;
  const unknowns = (f.proto as { $unknowns?: Uint8Array[] }).$unknowns;
  if (unknowns) (fp as { $unknowns?: Uint8Array[] }).$unknowns = unknowns;
  return createMessage(onnx.FunctionProto, fp);
}

export function assertNoIssues(model: Model): void {
  if (model.issues.length > 0) fail('invalid-model', model.issues.map((i) => i.message).join('; '));
}
