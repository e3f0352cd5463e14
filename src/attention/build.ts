/**
 * Building the few standard nodes that splicing a site needs (layout changes, mask conversion, the
 * KV-cache concat of fused ops), inserted at one place in the graph and tagged with the rule that
 * made them (metadata `attnpass.rule`).
 */
import { Long, onnx, DataType, type AttributeProto } from '../onnx/codec.js';
import { makeTensor } from '../onnx/tensor.js';
import { numberToFloat16 } from '../onnx/dtype.js';
import type { Dim, Graph, Node, Value } from '../ir/graph.js';

const AT = onnx.AttributeProto.AttributeType;

export type Attr = number | number[] | { float: number } | { string: string };

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: AT.INT, i: Long.fromNumber(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: v.map((x) => Long.fromNumber(x)) });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: AT.STRING, s: new TextEncoder().encode(v.string) });
}

/** The lowest finite value of a float type (what exporters use to mask), as a JS number. */
export function lowestOf(elemType: number): number {
  if (elemType === DataType.FLOAT16) return -65504;
  if (elemType === DataType.BFLOAT16) return -3.3895313892515355e38;
  if (elemType === DataType.DOUBLE) return -Number.MAX_VALUE;
  return -3.4028234663852886e38;
}

export class Builder {
  /** nodes this builder made, in order */
  readonly made: Node[] = [];

  constructor(
    readonly graph: Graph,
    /** new nodes go right before this node (undefined: appended) */
    readonly before: Node | undefined,
    readonly rule: string,
    readonly hint: string,
  ) {}

  node(opType: string, inputs: ReadonlyArray<Value | undefined>, attrs: Record<string, Attr> = {}, outputs = 1, domain = ''): Value[] {
    const n = this.graph.addNode({
      opType,
      domain,
      name: `${this.hint}/${opType}`,
      inputs,
      outputs,
      attributes: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      before: this.before,
      metadata: { 'attnpass.rule': this.rule },
    });
    this.made.push(n);
    return n.outputs.map((o) => o!);
  }

  op(opType: string, inputs: ReadonlyArray<Value | undefined>, attrs: Record<string, Attr> = {}): Value {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** An int64 initializer. */
  ints(values: number[], dims: number[] = [values.length]): Value {
    return this.graph.addInitializer(makeTensor(`${this.hint}/ints`, dims, BigInt64Array.from(values, (v) => BigInt(v))), `${this.hint}/ints`);
  }

  /** A scalar (or [1]-shaped) float initializer of `elemType`. */
  scalarOf(value: number, elemType: number, dims: number[] = []): Value {
    const name = `${this.hint}/const`;
    if (elemType === DataType.FLOAT16 || elemType === DataType.BFLOAT16) {
      const bits = elemType === DataType.FLOAT16 ? numberToFloat16(value) : bfloat16Bits(value);
      const raw = new Uint16Array([bits]);
      return this.graph.addInitializer(makeTensor(name, dims, new Uint8Array(raw.buffer), elemType), name);
    }
    if (elemType === DataType.DOUBLE) return this.graph.addInitializer(makeTensor(name, dims, Float64Array.of(value)), name);
    return this.graph.addInitializer(makeTensor(name, dims, Float32Array.of(value)), name);
  }

  transpose(v: Value, perm: number[]): Value {
    if (perm.every((p, i) => p === i)) return v;
    const out = this.op('Transpose', [v], { perm });
    if (v.type?.shape) out.type = { elemType: v.type.elemType, shape: perm.map((p) => v.type!.shape![p]) };
    return out;
  }

  reshape(v: Value, target: number[], shape?: Dim[]): Value {
    const out = this.op('Reshape', [v, this.ints(target)]);
    out.type = { elemType: v.type?.elemType ?? 0, shape: shape ?? target.map((d, i) => (d === 0 ? v.type?.shape?.[i] : d === -1 ? undefined : d)) };
    return out;
  }

  cast(v: Value, to: number): Value {
    if (v.type?.elemType === to) return v;
    const out = this.op('Cast', [v], { to });
    out.type = { elemType: to, shape: v.type?.shape };
    return out;
  }

  /** [B, S, H*D] → [B, H, S, D] */
  splitHeads(v: Value, heads: number, headDim: number): Value {
    const s = v.type?.shape;
    const r = this.reshape(v, [0, 0, heads, headDim], s ? [s[0], s[1], heads, headDim] : undefined);
    return this.transpose(r, [0, 2, 1, 3]);
  }

  /** [B, H, S, D] → [B, S, H*D] */
  mergeHeads(v: Value): Value {
    const t = this.transpose(v, [0, 2, 1, 3]);
    const s = t.type?.shape;
    const hd = s && typeof s[2] === 'number' && typeof s[3] === 'number' ? s[2] * s[3] : undefined;
    return this.reshape(t, [0, 0, -1], s ? [s[0], s[1], hd] : undefined);
  }

  add(a: Value | undefined, b: Value | undefined): Value | undefined {
    if (!a) return b;
    if (!b) return a;
    return this.op('Add', [a, b]);
  }
}

function bfloat16Bits(value: number): number {
  const f = new Float32Array([value]);
  const u = new Uint32Array(f.buffer)[0]!;
  return (u + 0x7fff + ((u >> 16) & 1)) >>> 16;
}
