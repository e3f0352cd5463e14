/**
 * A tiny builder for ONNX function bodies, so that each operator's body reads like its math:
 * `const logits = b.add(b.mul(b.matmul(q, kT), scale), mask)`. Values are plain names; every node
 * gets a fresh output name. Only this folder builds NodeProtos.
 */
import { Long, onnx, type AttributeProto, type FunctionProto, type NodeProto, type TensorProto } from '../../src/onnx/codec.js';

const AT = onnx.AttributeProto.AttributeType;
const DT = onnx.TensorProto.DataType;

/** An attribute value of a body node: int, ints, a float, a tensor or a reference to a call-site attribute. */
export type AttrValue = number | number[] | { float: number } | { tensor: TensorProto } | { ref: string; type: 'int' | 'float' };

export function attributeProto(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: AT.INT, i: Long.fromNumber(value) });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: value.map((v) => Long.fromNumber(v)) });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: value.float });
  if ('tensor' in value) return onnx.AttributeProto.create({ name, type: AT.TENSOR, t: value.tensor });
  return onnx.AttributeProto.create({ name, refAttrName: value.ref, type: value.type === 'int' ? AT.INT : AT.FLOAT });
}

/** A declared attribute of the function with its default (FunctionProto.attribute_proto). */
export function defaultAttribute(name: string, type: 'int' | 'float', value: number): AttributeProto {
  return type === 'int'
    ? onnx.AttributeProto.create({ name, type: AT.INT, i: Long.fromNumber(value) })
    : onnx.AttributeProto.create({ name, type: AT.FLOAT, f: value });
}

export const FLOAT = DT.FLOAT;
export const DOUBLE = DT.DOUBLE;
export const INT64 = DT.INT64;
export const BOOL = DT.BOOL;

/**
 * What the body is built for. ONNX Runtime inlines a function with the MODEL's default opset (checked:
 * a ReduceMean-18 body fails inside an opset-17 model), so bodies are written for the calling model's
 * opset (13 and later): axes as attributes before 18, Cast instead of CastLike before 15, Shape without
 * start/end before 15.
 */
export interface BodyTarget {
  opset: number;
  /** element type of Q (used where CastLike is not available) */
  elemType: number;
}

export const DEFAULT_TARGET: BodyTarget = { opset: 18, elemType: DT.FLOAT };

export class BodyBuilder {
  readonly nodes: NodeProto[] = [];
  private count = 0;

  constructor(readonly target: BodyTarget = DEFAULT_TARGET) {}

  /** One node; returns its output names (`outputs` of them). */
  node(opType: string, inputs: ReadonlyArray<string | undefined>, attrs: Record<string, AttrValue> = {}, outputs = 1, hint = opType): string[] {
    const n = this.count++;
    const outs = Array.from({ length: outputs }, (_, i) => `${hint}_${n}${outputs > 1 ? `_${i}` : ''}`);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: `${hint}_${n}`,
        input: inputs.map((x) => x ?? ''),
        output: outs,
        attribute: Object.entries(attrs).map(([k, v]) => attributeProto(k, v)),
      }),
    );
    return outs;
  }

  /** One node with one output. */
  op(opType: string, inputs: ReadonlyArray<string | undefined>, attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.node(opType, inputs, attrs, 1, hint)[0]!;
  }

  /** Renames value `value` to `name` everywhere in the body (to produce the function's formal outputs). */
  rename(value: string, name: string): string {
    for (const n of this.nodes) {
      n.output = (n.output ?? []).map((o) => (o === value ? name : o));
      n.input = (n.input ?? []).map((i) => (i === value ? name : i));
    }
    return name;
  }

  // ---- constants ---------------------------------------------------------------------------
  int(v: number): string {
    return this.op('Constant', [], { value_int: v }, 'c');
  }
  ints(v: number[]): string {
    return this.op('Constant', [], { value_ints: v }, 'c');
  }
  float(v: number): string {
    return this.op('Constant', [], { value_float: { float: v } }, 'c');
  }
  /** a float32 scalar constant held as a tensor (used for ±Infinity) */
  floatTensor(v: number): string {
    const t = onnx.TensorProto.create({ dataType: DT.FLOAT, dims: [], rawData: new Uint8Array(Float32Array.of(v).buffer) });
    return this.op('Constant', [], { value: { tensor: t } }, 'c');
  }
  /** the call site's int attribute `name` as an int64 scalar */
  attrInt(name: string): string {
    return this.op('Constant', [], { value_int: { ref: name, type: 'int' } }, name);
  }
  /** the call site's float attribute `name` as a float32 scalar */
  attrFloat(name: string): string {
    return this.op('Constant', [], { value_float: { ref: name, type: 'float' } }, name);
  }

  // ---- arithmetic and logic (numpy broadcasting) ---------------------------------------------
  add(a: string, b: string): string { return this.op('Add', [a, b]); }
  sub(a: string, b: string): string { return this.op('Sub', [a, b]); }
  mul(a: string, b: string): string { return this.op('Mul', [a, b]); }
  div(a: string, b: string): string { return this.op('Div', [a, b]); }
  max(a: string, b: string): string { return this.op('Max', [a, b]); }
  min(a: string, b: string): string { return this.op('Min', [a, b]); }
  matmul(a: string, b: string): string { return this.op('MatMul', [a, b]); }
  exp(a: string): string { return this.op('Exp', [a]); }
  log(a: string): string { return this.op('Log', [a]); }
  sqrt(a: string): string { return this.op('Sqrt', [a]); }
  abs(a: string): string { return this.op('Abs', [a]); }
  ceil(a: string): string { return this.op('Ceil', [a]); }
  floor(a: string): string { return this.op('Floor', [a]); }
  less(a: string, b: string): string { return this.op('Less', [a, b]); }
  lessEq(a: string, b: string): string { return this.op('LessOrEqual', [a, b]); }
  greater(a: string, b: string): string { return this.op('Greater', [a, b]); }
  greaterEq(a: string, b: string): string { return this.op('GreaterOrEqual', [a, b]); }
  equal(a: string, b: string): string { return this.op('Equal', [a, b]); }
  and(a: string, b: string): string { return this.op('And', [a, b]); }
  or(a: string, b: string): string { return this.op('Or', [a, b]); }
  not(a: string): string { return this.op('Not', [a]); }
  where(c: string, a: string, b: string): string { return this.op('Where', [c, a, b]); }
  cast(a: string, to: number): string { return this.op('Cast', [a], { to }); }
  /** `a` cast to the type of `like`, which is always Q's type in these bodies */
  castLike(a: string, like: string): string {
    return this.target.opset >= 15 ? this.op('CastLike', [a, like]) : this.cast(a, this.target.elemType);
  }

  // ---- shapes ------------------------------------------------------------------------------
  shape(a: string, start?: number, end?: number): string {
    if (this.target.opset < 15 && (start !== undefined || end !== undefined)) {
      return this.op('Slice', [this.op('Shape', [a]), this.ints([start ?? 0]), this.ints([end ?? 2 ** 62]), this.ints([0])]);
    }
    const attrs: Record<string, AttrValue> = {};
    if (start !== undefined) attrs.start = start;
    if (end !== undefined) attrs.end = end;
    return this.op('Shape', [a], attrs);
  }
  /** dimension `axis` of `a` as an int64 scalar */
  dim(a: string, axis: number): string {
    return this.squeeze(this.shape(a, axis, axis === -1 ? undefined : axis + 1), [0]);
  }
  reshape(a: string, shape: string): string { return this.op('Reshape', [a, shape]); }
  expand(a: string, shape: string): string { return this.op('Expand', [a, shape]); }
  unsqueeze(a: string, axes: number[]): string { return this.op('Unsqueeze', [a, this.ints(axes)]); }
  squeeze(a: string, axes: number[]): string { return this.op('Squeeze', [a, this.ints(axes)]); }
  concat(xs: string[], axis: number): string { return this.op('Concat', xs, { axis }); }
  /** a 1-D int64 vector from int64 scalars (each unsqueezed) */
  vec(scalars: string[]): string { return this.concat(scalars.map((s) => this.unsqueeze(s, [0])), 0); }
  transpose(a: string, perm: number[]): string { return this.op('Transpose', [a], { perm }); }
  gather(a: string, idx: string, axis: number): string { return this.op('Gather', [a, idx], { axis }); }
  range(start: string, limit: string, delta: string): string { return this.op('Range', [start, limit, delta]); }
  /**
   * Pads `a` on one axis with `before` / `after` copies of the scalar `value`, which has a's type (Concat of Expand-ed blocks:
   * valid in every opset from 13, unlike Pad's `axes` input, which needs 18).
   */
  pad(a: string, axes: number[], before: string[], after: string[], value: string): string {
    if (axes.length !== 1) throw new Error('BodyBuilder.pad pads one axis');
    const axis = axes[0]!;
    const dims = this.shape(a);
    const block = (count: string): string => {
      const head = axis === 0 ? undefined : this.op('Slice', [dims, this.ints([0]), this.ints([axis]), this.ints([0])]);
      const tail = axis === -1 ? undefined : this.op('Slice', [dims, this.ints([axis + 1]), this.ints([2 ** 62]), this.ints([0])]);
      const shape = this.concat([head, this.unsqueeze(count, [0]), tail].filter((x): x is string => x !== undefined), 0);
      return this.expand(value, shape);
    };
    return this.concat([block(before[0]!), a, block(after[0]!)], axis);
  }
  slice(a: string, starts: string, ends: string, axes: number[]): string {
    return this.op('Slice', [a, starts, ends, this.ints(axes)]);
  }

  // ---- reductions ------------------------------------------------
  reduce(op: 'ReduceSum' | 'ReduceMax' | 'ReduceMean' | 'ReduceL2', a: string, axes: number[], keepdims: 0 | 1): string {
    // axes became an input in opset 13 for ReduceSum, in 18 for the others
    if (op !== 'ReduceSum' && this.target.opset < 18) return this.op(op, [a], { axes, keepdims });
    return this.op(op, [a, this.ints(axes)], { keepdims });
  }
}

/** A FunctionProto of domain `ai.attnpass` from a body, importing the default domain at `opset`. */
export function functionProto(args: {
  name: string;
  domain: string;
  doc: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
  body: BodyBuilder;
  opset: number;
}): FunctionProto {
  return onnx.FunctionProto.create({
    name: args.name,
    domain: args.domain,
    docString: args.doc,
    input: args.inputs,
    output: args.outputs,
    attributeProto: args.attributes,
    node: args.body.nodes,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(args.opset) })],
  });
}
