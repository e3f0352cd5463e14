/**
 * Small attention graphs in the shapes exporters write, built as ModelProtos: the forms detection must
 * prove (with the knobs that vary between exporters) and the near-misses it must refuse.
 */
import { Long, onnx, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../src/onnx/codec.js';
import { typeToProto } from '../../src/ir/model.js';
import { rng } from '../../src/verify/inputs.js';
import { float32Tensor, int64Tensor, makeTensor } from '../../src/onnx/tensor.js';

const AT = onnx.AttributeProto.AttributeType;
export const F32 = 1;
export const I64 = 7;
export const I32 = 6;
export const BOOL = 9;

export type AttrValue = number | number[] | { f: number } | { s: string } | { t: TensorProto };
export type Dims = Array<number | string>;

export function valueInfo(name: string, elemType: number, dims: Dims): ValueInfoProto {
  return onnx.ValueInfoProto.create({ name, type: typeToProto({ elemType, shape: dims }) });
}

/** A graph under construction: values are names, every op gets fresh output names. */
export class G {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private n = 0;
  private readonly random: () => number;

  constructor(seed = 7) {
    this.random = rng(seed);
  }

  input(name: string, elemType: number, dims: Dims): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dims): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  weight(dims: number[], scale = 0.5): string {
    const n = dims.reduce((a, b) => a * b, 1);
    const name = `w${this.n++}`;
    this.inits.push(float32Tensor(name, dims, Array.from({ length: n }, () => (this.random() * 2 - 1) * scale)));
    return name;
  }

  f32(values: number[], dims: number[] = []): string {
    const name = `c${this.n++}`;
    this.inits.push(float32Tensor(name, dims, values));
    return name;
  }

  i64(values: number[], dims: number[] = [values.length]): string {
    const name = `i${this.n++}`;
    this.inits.push(int64Tensor(name, dims, values));
    return name;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: number; domain?: string; names?: string[] } = {}): string {
    return this.ops(opType, inputs, attrs, opts)[0]!;
  }

  ops(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: number; domain?: string; names?: string[] } = {}): string[] {
    const id = this.n++;
    const outs = opts.names ?? Array.from({ length: opts.outputs ?? 1 }, (_, i) => `${opType.toLowerCase()}${id}${i ? `_${i}` : ''}`);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        domain: opts.domain,
        name: `${opType}_${id}`,
        input: inputs,
        output: outs,
        attribute: Object.entries(attrs).map(([name, v]) => {
          if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: AT.INT, i: Long.fromNumber(v) });
          if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: v.map((x) => Long.fromNumber(x)) });
          if ('f' in v) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: v.f });
          if ('s' in v) return onnx.AttributeProto.create({ name, type: AT.STRING, s: new TextEncoder().encode(v.s) });
          return onnx.AttributeProto.create({ name, type: AT.TENSOR, t: v.t });
        }),
      }),
    );
    return outs;
  }

  /** Shape(x)[from:to] as a 1-D int64 tensor. */
  dims(x: string, from: number, to: number): string {
    return this.op('Slice', [this.op('Shape', [x]), this.i64([from]), this.i64([to])]);
  }

  model(opsets: Record<string, number> = { '': 17 }): ModelProto {
    return onnx.ModelProto.create({
      irVersion: Long.fromNumber(10),
      producerName: 'attnpass-tests',
      opsetImport: Object.entries(opsets).map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version: Long.fromNumber(version) })),
      graph: onnx.GraphProto.create({ name: 'g', node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs }),
    });
  }
}

export interface EagerOptions {
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  /** how the 1/√d scale is written */
  scale?: 'div' | 'mul' | 'split' | 'qproj' | 'dynamic' | 'none' | 'input';
  /** layout of the score MatMul */
  layout?: '4d' | 'bmm3d' | 'kq';
  mask?: 'none' | 'padding' | 'causal' | 'causal-padding' | 'alibi' | 'input-rank5' | 'input-rank3' | 'window' | 'trilu';
  /** how K/V are repeated for GQA */
  gqa?: 'expand' | 'gather' | 'tile' | 'broadcast';
  cache?: boolean;
  nanGuard?: boolean;
  castSoftmax?: boolean;
  /** the K Transpose's perm (the correct one is [0, 2, 3, 1] from [B, T, H, D]) */
  kPerm?: number[];
  softcap?: boolean;
  softmaxAxis?: number;
  /** replace the scores by a graph input (not Q·Kᵀ) */
  scoresFromInput?: boolean;
  window?: number;
  seed?: number;
}

/** A one-layer decoder/encoder block with attention written the way eager PyTorch exports it. */
export function eagerAttention(o: EagerOptions = {}): ModelProto {
  const H = o.heads ?? 2;
  const Hkv = o.kvHeads ?? H;
  const D = o.headDim ?? 8;
  const E = H * D;
  const rep = H / Hkv;
  const g = new G(o.seed ?? 7);
  const x = g.input('x', F32, ['batch', 'seq', E]);
  const needsMask = o.mask === 'padding' || o.mask === 'causal-padding';
  const am = needsMask ? g.input('attention_mask', I64, ['batch', o.cache ? 'total' : 'seq']) : undefined;
  const pastK = o.cache ? g.input('past_key', F32, ['batch', Hkv, 'past', D]) : undefined;
  const pastV = o.cache ? g.input('past_value', F32, ['batch', Hkv, 'past', D]) : undefined;
  const split = (t: string, heads: number) => g.op('Transpose', [g.op('Reshape', [t, g.i64([0, 0, heads, D])])], { perm: [0, 2, 1, 3] });
  const s = 1 / Math.sqrt(D);
  let qp = g.op('MatMul', [x, g.weight([E, E])]);
  if (o.scale === 'qproj') qp = g.op('Mul', [qp, g.f32([s])]);
  const q = split(qp, H);
  const kp = g.op('MatMul', [x, g.weight([E, Hkv * D])]);
  let k = o.kPerm ? g.op('Reshape', [kp, g.i64([0, 0, Hkv, D])]) : split(kp, Hkv);
  let v = split(g.op('MatMul', [x, g.weight([E, Hkv * D])]), Hkv);
  if (o.cache && !o.kPerm) {
    k = g.op('Concat', [pastK!, k], { axis: 2 });
    v = g.op('Concat', [pastV!, v], { axis: 2 });
    g.nodes.push(onnx.NodeProto.create({ opType: 'Identity', name: 'present_k', input: [k], output: ['present_key'] }));
    g.nodes.push(onnx.NodeProto.create({ opType: 'Identity', name: 'present_v', input: [v], output: ['present_value'] }));
    g.output('present_key', F32, ['batch', Hkv, 'total', D]);
    g.output('present_value', F32, ['batch', Hkv, 'total', D]);
  }
  const repeat = (t: string): string => {
    if (rep === 1 || o.gqa === 'broadcast') return t;
    if (o.gqa === 'gather') return g.op('Gather', [t, g.i64(Array.from({ length: H }, (_, h) => Math.floor(h / rep)))], { axis: 1 });
    if (o.gqa === 'tile') return g.op('Tile', [t, g.i64([1, rep, 1, 1])]);
    const target = g.op('Concat', [g.dims(t, 0, 2), g.i64([rep]), g.dims(t, 2, 4)], { axis: 0 });
    return g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [t, g.i64([2])]), target]), g.i64([0, H, -1, D])]);
  };
  const kr = repeat(k);
  const vr = repeat(v);
  let scores: string;
  let pv: (p: string) => string = (p) => g.op('MatMul', [p, vr]);
  let qs = q;
  if (o.scale === 'split') qs = g.op('Mul', [q, g.f32([Math.sqrt(s)])]);
  if (o.scoresFromInput) {
    scores = g.input('scores_in', F32, ['batch', H, 'seq', 'seq']);
  } else if (o.kPerm) {
    scores = g.op('MatMul', [qs, g.op('Transpose', [k], { perm: o.kPerm })]);
  } else if (o.layout === 'bmm3d') {
    const to3 = (t: string) => g.op('Reshape', [t, g.op('Concat', [g.i64([-1]), g.dims(t, 2, 4)], { axis: 0 })]);
    scores = g.op('MatMul', [to3(qs), g.op('Transpose', [to3(kr)], { perm: [0, 2, 1] })]);
    pv = (p) => {
      const o3 = g.op('MatMul', [p, to3(vr)]);
      return g.op('Reshape', [o3, g.op('Concat', [g.i64([-1, H]), g.dims(o3, 1, 3)], { axis: 0 })]);
    };
  } else if (o.layout === 'kq') {
    scores = g.op('Transpose', [g.op('MatMul', [kr, g.op('Transpose', [qs], { perm: [0, 1, 3, 2] })])], { perm: [0, 1, 3, 2] });
  } else {
    let kt = g.op('Transpose', [kr], { perm: [0, 1, 3, 2] });
    if (o.scale === 'split') kt = g.op('Mul', [kt, g.f32([Math.sqrt(s)])]);
    scores = g.op('MatMul', [qs, kt]);
  }
  if (o.scale === 'div' || o.scale === undefined) scores = g.op('Div', [scores, g.f32([Math.sqrt(D)])]);
  if (o.scale === 'mul') scores = g.op('Mul', [scores, g.f32([s])]);
  if (o.scale === 'input') scores = g.op('Mul', [scores, g.input('scale_in', F32, [])]);
  if (o.scale === 'dynamic') {
    const d = g.op('Cast', [g.op('Gather', [g.op('Shape', [v]), g.i64([3], [])], { axis: 0 })], { to: F32 });
    scores = g.op('Div', [scores, g.op('Sqrt', [d])]);
  }
  if (o.softcap) scores = g.op('Mul', [g.op('Tanh', [g.op('Div', [scores, g.f32([30])])]), g.f32([30])]);
  // masks
  const lengths = () => {
    const S = g.op('Gather', [g.op('Shape', [x]), g.i64([1], [])], { axis: 0 });
    const T = o.cache ? g.op('Add', [S, g.op('Gather', [g.op('Shape', [pastK!]), g.i64([2], [])], { axis: 0 })]) : S;
    return { S, T };
  };
  const causalBool = (window?: number): string => {
    const { S, T } = lengths();
    const rows = g.op('Add', [g.op('Range', [g.i64([0], []), S, g.i64([1], [])]), g.op('Sub', [T, S])]);
    const cols = g.op('Range', [g.i64([0], []), T, g.i64([1], [])]);
    const r = g.op('Unsqueeze', [rows, g.i64([1])]);
    const c = g.op('Unsqueeze', [cols, g.i64([0])]);
    let keep = g.op('LessOrEqual', [c, r]);
    if (window !== undefined) keep = g.op('And', [keep, g.op('Greater', [c, g.op('Sub', [r, g.i64([window], [])])])]);
    return keep;
  };
  const lowest = -3.4028234663852886e38;
  if (o.mask === 'padding') {
    const m = g.op('Mul', [g.op('Sub', [g.f32([1]), g.op('Cast', [am!], { to: F32 })]), g.f32([-10000])]);
    scores = g.op('Add', [scores, g.op('Unsqueeze', [m, g.i64([1, 2])])]);
  } else if (o.mask === 'causal' || o.mask === 'window') {
    scores = g.op('Where', [causalBool(o.mask === 'window' ? (o.window ?? 3) : undefined), scores, g.f32([lowest])]);
  } else if (o.mask === 'trilu') {
    // torchlib's SDPA with is_causal: Trilu(ones[S, T]) turned into an additive 0/-inf mask
    const { S, T } = lengths();
    const ones = g.op('ConstantOfShape', [g.op('Concat', [g.op('Unsqueeze', [S, g.i64([0])]), g.op('Unsqueeze', [T, g.i64([0])])], { axis: 0 })], { value: { t: int64Tensor('one', [1], [1]) } });
    const tri = g.op('Cast', [g.op('Trilu', [ones], { upper: 0 })], { to: BOOL });
    scores = g.op('Add', [scores, g.op('Where', [tri, g.f32([0]), g.f32([-Infinity])])]);
  } else if (o.mask === 'causal-padding') {
    const pad = g.op('Unsqueeze', [g.op('Cast', [am!], { to: BOOL }), g.i64([1, 2])]);
    const keep = g.op('And', [g.op('Unsqueeze', [causalBool(), g.i64([0, 1])]), pad]);
    scores = g.op('Add', [scores, g.op('Where', [keep, g.f32([0]), g.f32([lowest])])]);
  } else if (o.mask === 'alibi') {
    const { T } = lengths();
    const pos = g.op('Cast', [g.op('Range', [g.i64([0], []), T, g.i64([1], [])])], { to: F32 });
    const bias = g.op('Mul', [g.f32(Array.from({ length: H }, (_, h) => -0.5 / (h + 1)), [1, H, 1, 1]), pos]);
    const B = g.op('Gather', [g.op('Shape', [x]), g.i64([0])], { axis: 0 });
    const full = g.op('Expand', [bias, g.op('Concat', [B, g.i64([H, 1]), g.op('Unsqueeze', [T, g.i64([0])])], { axis: 0 })]);
    scores = g.op('Add', [scores, g.op('Reshape', [full, g.op('Concat', [g.i64([-1, 1]), g.op('Unsqueeze', [T, g.i64([0])])], { axis: 0 })])]);
  } else if (o.mask === 'input-rank5') {
    scores = g.op('Add', [scores, g.input('mask5', F32, [1, 'batch', 1, 1, 'seq'])]);
  } else if (o.mask === 'input-rank3') {
    scores = g.op('Add', [scores, g.input('mask3', F32, ['batch', 'seq', 'seq'])]);
  }
  if (o.castSoftmax) scores = g.op('Cast', [scores], { to: F32 });
  let p = g.op('Softmax', [scores], { axis: o.softmaxAxis ?? -1 });
  if (o.castSoftmax) p = g.op('Cast', [p], { to: F32 });
  if (o.nanGuard) p = g.op('Where', [g.op('IsNaN', [p]), g.f32([0]), p]);
  let out = pv(p);
  if (o.mask === 'input-rank5') out = g.op('Squeeze', [out, g.i64([0])]);
  const merged = g.op('Reshape', [g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), g.i64([0, 0, E])]);
  g.nodes.push(onnx.NodeProto.create({ opType: 'MatMul', name: 'o_proj', input: [merged, g.weight([E, E])], output: ['y'] }));
  g.output('y', F32, ['batch', 'seq', E]);
  return g.model();
}

export { makeTensor };
