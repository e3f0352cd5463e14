#!/usr/bin/env node
// Generates large benchmark models shaped like real exporter output (never into the repository).
//
//   npm run build
//   node bench/models/generate.mjs llama7b --out /tmp/attnpass-bench/llama7b   # model.onnx + model.onnx_data (sparse, ~27 GB apparent, ~0 on disk)
//   node bench/models/generate.mjs gpt2 --out /tmp/attnpass-bench/gpt2         # model.onnx, weights embedded (~650 MB)
//   node bench/models/generate.mjs llama-tiny --out DIR                         # same graph, tiny sizes, random weights (runs in onnxruntime)
//   options: --layers N (override), --scale div|mul (how Q·Kᵀ is scaled; default div), --weights sparse|random|pattern
//
// The graphs mirror what the legacy TorchScript exporter (torch.onnx.export(dynamo=False), opset 17) writes
// for Hugging Face models with attn_implementation="eager" — see fixtures/models/llama-gqa-legacy and
// gpt2-legacy: every shape computed at run time (Shape → Gather → Unsqueeze → Concat), Reshape to
// [B,S,H,D] and Transpose to [B,H,S,D], rotary as Mul/Slice/Neg/Concat/Add, GQA repeat of K/V as
// Unsqueeze/Expand/Reshape, MatMul(Q, Transpose(K)), Div by √d (or Mul by 1/√d), Add of an additive
// causal + padding mask built once from attention_mask (Range, LessOrEqual, Flatten/Gather, And, Where),
// Softmax, MatMul with V, Transpose/Reshape back, o_proj. Weights of MatMuls are stored transposed as
// `onnx::MatMul_N` initializers, as that exporter does.
//
// Llama weights go to an external data file whose size is set with ftruncate: offsets and lengths are real,
// the bytes are a hole (zeros) unless --weights random. GPT-2 weights are embedded (raw_data); their bytes
// are views of one shared pattern buffer and the file is written with the streaming encoder, so the generator
// itself needs little memory.
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { onnx, Long } = await import(join(root, 'dist/src/onnx/codec.js'));
const { encodeModelParts, writeParts } = await import(join(root, 'dist/src/onnx/stream.js'));
const { typeToProto } = await import(join(root, 'dist/src/ir/model.js'));

const FLOAT = 1;
const BOOL = 9;
const INT64 = 7;
const INT64_MAX = 0x7fffffffffffffffn;
const FLT_LOWEST = -3.4028234663852886e38;

export const CONFIGS = {
  llama7b: { family: 'llama', layers: 32, hidden: 4096, heads: 32, kvHeads: 8, headDim: 128, intermediate: 11008, vocab: 32000, eps: 1e-5, ropeTheta: 10000, weights: 'sparse' },
  'llama-tiny': { family: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 128, eps: 1e-5, ropeTheta: 10000, weights: 'random' },
  gpt2: { family: 'gpt2', layers: 12, hidden: 768, heads: 12, intermediate: 3072, vocab: 50257, positions: 1024, eps: 1e-5, weights: 'pattern' },
  'gpt2-tiny': { family: 'gpt2', layers: 2, hidden: 64, heads: 4, intermediate: 128, vocab: 128, positions: 64, eps: 1e-5, weights: 'random' },
};

// ---------- small helpers to build protos ----------

function i64Tensor(dims, values) {
  const data = new BigInt64Array(values.map((v) => BigInt(v)));
  return onnx.TensorProto.create({ dims: dims.map((d) => Long.fromNumber(d)), dataType: INT64, rawData: new Uint8Array(data.buffer) });
}
function f32Tensor(dims, values) {
  const data = Float32Array.from(values);
  return onnx.TensorProto.create({ dims: dims.map((d) => Long.fromNumber(d)), dataType: FLOAT, rawData: new Uint8Array(data.buffer) });
}
function boolTensor(dims, values) {
  return onnx.TensorProto.create({ dims: dims.map((d) => Long.fromNumber(d)), dataType: BOOL, rawData: Uint8Array.from(values) });
}

function attr(name, value) {
  const A = onnx.AttributeProto;
  if (value instanceof onnx.TensorProto) return A.create({ name, type: A.AttributeType.TENSOR, t: value });
  if (Array.isArray(value)) return A.create({ name, type: A.AttributeType.INTS, ints: value.map((v) => Long.fromNumber(v)) });
  if (typeof value === 'object' && value && 'float' in value) return A.create({ name, type: A.AttributeType.FLOAT, f: value.float });
  return A.create({ name, type: A.AttributeType.INT, i: Long.fromNumber(value) });
}
const float = (v) => ({ float: v });

function valueInfo(name, elemType, dims) {
  return onnx.ValueInfoProto.create({ name, type: typeToProto({ elemType, shape: dims }) });
}

/** Collects nodes and initializers, naming them the way the TorchScript exporter does. */
class Builder {
  nodes = [];
  initializers = [];
  /** initializer byte layout in the external file / pattern buffer: { tensor, bytes } */
  weights = [];
  anon = 200;
  matmul = 600;

  scope(path) {
    return new Scope(this, path);
  }

  /** `Constant_<n>` → `onnx::<Consumer>_<m>`: the exporter's unnamed constants (mostly Unsqueeze axes). */
  anonConst(tensor, consumer) {
    const n = this.anon++;
    const out = `onnx::${consumer}_${n - 100}`;
    this.nodes.push(onnx.NodeProto.create({ name: `Constant_${n}`, opType: 'Constant', input: [], output: [out], attribute: [attr('value', tensor)] }));
    return out;
  }

  weight(name, dims) {
    const bytes = dims.reduce((a, b) => a * b, 1) * 4;
    const tensor = onnx.TensorProto.create({ name, dims: dims.map((d) => Long.fromNumber(d)), dataType: FLOAT });
    this.initializers.push(tensor);
    this.weights.push({ tensor, bytes, dims });
    return name;
  }

  matmulWeight(dims) {
    return this.weight(`onnx::MatMul_${this.matmul++}`, dims);
  }
}

class Scope {
  counters = new Map();
  constructor(builder, path) {
    this.b = builder;
    this.path = path;
  }
  child(name) {
    return new Scope(this.b, `${this.path}/${name}`);
  }
  nodeName(op) {
    const n = this.counters.get(op) ?? 0;
    this.counters.set(op, n + 1);
    return `${this.path}/${op}${n ? `_${n}` : ''}`;
  }
  op(opType, inputs, attrs = {}, outputs = 1, outName) {
    const name = this.nodeName(opType);
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`) : outputs;
    if (outName) outs[0] = outName;
    this.b.nodes.push(onnx.NodeProto.create({ name, opType, input: inputs, output: outs, attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)) }));
    return outs.length === 1 ? outs[0] : outs;
  }
  const(tensor) {
    return this.op('Constant', [], { value: tensor });
  }
  ints(values) {
    return this.const(i64Tensor([values.length], values));
  }
  scalarInt(v) {
    return this.const(i64Tensor([], [v]));
  }
  scalarFloat(v) {
    return this.const(f32Tensor([], [v]));
  }
  /** x.shape[i] as an int64 scalar: Shape → Constant → Gather */
  dim(x, i) {
    const shape = this.op('Shape', [x]);
    return this.op('Gather', [shape, this.scalarInt(i)], { axis: 0 });
  }
  /** the exporter's Unsqueeze of a shape scalar, with an unnamed axes constant */
  unsq(x) {
    return this.op('Unsqueeze', [x, this.b.anonConst(i64Tensor([1], [0]), 'Unsqueeze')]);
  }
  unsqAxis(x, axis) {
    return this.op('Unsqueeze', [x, this.ints([axis])]);
  }
  /** torch's expand(..., -1, ...) as traced: -1 entries replaced by 1 before Expand */
  expandShape(concat) {
    const flat = this.op('Reshape', [concat, this.ints([-1])], { allowzero: 0 });
    const ones = this.op('ConstantOfShape', [this.op('Shape', [flat])], { value: i64Tensor([1], [1]) });
    const minus = this.op('Mul', [ones, this.scalarInt(-1)]);
    return this.op('Where', [this.op('Equal', [flat, minus]), ones, flat]);
  }
}

// ---------- the causal + padding mask, as transformers' sdpa_mask / eager mask traces ----------

function causalPaddingMask(s, embeds, maskBool, seq, batchOf, seqOf) {
  const T = s.dim(maskBool, 1);
  const batch = batchOf;
  const range = (n) => s.op('Range', [s.scalarInt(0), s.op('Cast', [n], { to: INT64 }), s.scalarInt(1)]);
  const batchIdx = range(batch);
  const kvRange = range(T);
  const b1 = s.unsqAxis(s.unsqAxis(s.unsqAxis(batchIdx, 1), 2), 3);
  const q1 = s.unsqAxis(s.unsqAxis(seq, 1), 3);
  const kv1 = s.unsqAxis(s.unsqAxis(s.unsqAxis(kvRange, 0), 1), 2);
  const yes = s.op('ConstantOfShape', [s.const(i64Tensor([0], []))], { value: boolTensor([1], [1]) });
  const causal = s.op('And', [yes, s.op('Cast', [s.op('LessOrEqual', [kv1, q1])], { to: BOOL })]);
  const T2 = s.dim(maskBool, 1);
  const flat = s.op('Flatten', [maskBool], { axis: 2 });
  const index = s.op('Add', [kv1, s.op('Mul', [b1, T2])]);
  const picked = s.op('Gather', [flat, index], { axis: 0 });
  const picked1 = s.op('Reshape', [picked, s.ints([-1])], { allowzero: 0 });
  const padded = s.op('Reshape', [picked1, s.op('Concat', [s.op('Shape', [index])], { axis: 0 })], { allowzero: 0 });
  const both = s.op('And', [causal, s.op('Cast', [padded], { to: BOOL })]);
  const shape = s.op('Concat', [s.unsqAxis(batch, 0), s.ints([-1]), s.unsqAxis(seqOf, 0), s.unsqAxis(T, 0)], { axis: 0 });
  const expanded = s.op('Expand', [both, s.expandShape(shape)]);
  void embeds;
  return s.op('Where', [expanded, s.scalarFloat(0), s.scalarFloat(FLT_LOWEST)]);
}

// ---------- Llama ----------

function rmsNorm(s, x, weight, eps) {
  const x32 = s.op('Cast', [x], { to: FLOAT });
  const pow = s.op('Pow', [x32, s.scalarFloat(2)]);
  const mean = s.op('ReduceMean', [pow], { axes: [-1], keepdims: 1 });
  const rstd = s.op('Div', [s.scalarFloat(1), s.op('Sqrt', [s.op('Add', [mean, s.scalarFloat(eps)])])]);
  const normed = s.op('Cast', [s.op('Mul', [x32, rstd])], { to: FLOAT });
  return { out: s.op('Mul', [weight, normed]), x32 };
}

/** rotate_half(x) * sin + x * cos, as traced */
function rope(s, x, cos, sin) {
  const xc = s.op('Mul', [x, cos]);
  const half = s.op('Shape', [x]);
  const d = s.op('Gather', [half, s.scalarInt(3)], { axis: 0 });
  const h = s.op('Cast', [s.op('Cast', [s.op('Div', [d, s.scalarInt(2)])], { to: INT64 })], { to: INT64 });
  const axes1 = s.ints([3]);
  const starts1 = s.ints([0]);
  const ends1 = s.unsqAxis(h, 0);
  const x1 = s.op('Slice', [x, starts1, ends1, axes1, s.ints([1])]);
  const axes2 = s.ints([3]);
  const starts2 = s.unsqAxis(h, 0);
  const x2 = s.op('Slice', [x, starts2, s.const(i64Tensor([1], [INT64_MAX])), axes2, s.ints([1])]);
  const rotated = s.op('Concat', [s.op('Neg', [x2]), x1], { axis: -1 });
  return s.op('Add', [xc, s.op('Mul', [rotated, sin])]);
}

/** repeat_kv: [B, Hkv, T, D] → [B, Hkv·n, T, D] via Unsqueeze / Expand / Reshape */
function repeatKv(s, x, nRep) {
  const B = s.dim(x, 0);
  const H = s.dim(x, 1);
  const T = s.dim(x, 2);
  const D = s.dim(x, 3);
  const u = s.unsqAxis(x, 2);
  const shape = s.op('Concat', [s.unsqAxis(B, 0), s.unsqAxis(H, 0), s.ints([nRep]), s.unsqAxis(T, 0), s.unsqAxis(D, 0)], { axis: 0 });
  const expanded = s.op('Expand', [u, s.expandShape(shape)]);
  const heads = s.op('Mul', [H, s.scalarInt(nRep)]);
  const target = s.op('Concat', [s.unsq(B), s.unsq(heads), s.unsq(T), s.unsq(D)], { axis: 0 });
  return s.op('Reshape', [expanded, target], { allowzero: 0 });
}

export function buildLlama(cfg, options = {}) {
  const scaleOp = options.scale ?? 'div';
  const b = new Builder();
  const D = cfg.headDim;
  const nRep = cfg.heads / cfg.kvHeads;
  const embedW = b.weight('model.embed_tokens.weight', [cfg.vocab, cfg.hidden]);
  const norms = [];
  for (let i = 0; i < cfg.layers; i++) norms.push([b.weight(`model.layers.${i}.input_layernorm.weight`, [cfg.hidden]), b.weight(`model.layers.${i}.post_attention_layernorm.weight`, [cfg.hidden])]);
  const finalNormW = b.weight('model.norm.weight', [cfg.hidden]);

  const embeds = b.scope('/model/embed_tokens').op('Gather', [embedW, 'input_ids']);
  const m = b.scope('/model');
  const S = m.dim(embeds, 1);
  const cachePos = m.op('Range', [m.scalarInt(0), m.op('Cast', [S], { to: INT64 }), m.scalarInt(1)]);
  const positionIds = m.unsqAxis(cachePos, 0);
  const maskBool = m.op('Cast', ['attention_mask'], { to: BOOL });
  const batch = m.dim(embeds, 0);
  const mask = causalPaddingMask(m, embeds, maskBool, positionIds, batch, S);

  // rotary embedding: inv_freq [1, D/2, 1] · positions → cos, sin [1, S, D]
  const r = b.scope('/model/rotary_emb');
  const invFreq = Array.from({ length: D / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / D));
  const invFreqOut = b.anonConst(f32Tensor([1, D / 2, 1], invFreq), 'Expand');
  const rb = r.dim(positionIds, 0);
  const rshape = r.op('Concat', [r.unsqAxis(rb, 0), r.ints([-1]), r.ints([1])], { axis: 0 });
  const inv = r.op('Cast', [r.op('Expand', [invFreqOut, r.expandShape(rshape)])], { to: FLOAT });
  const pos = r.op('Cast', [r.unsqAxis(positionIds, 1)], { to: FLOAT });
  const freqs = r.op('Transpose', [r.op('MatMul', [inv, pos])], { perm: [0, 2, 1] });
  const emb = r.op('Concat', [freqs, freqs], { axis: -1 });
  const cosRaw = r.op('Mul', [r.op('Cos', [emb]), r.scalarFloat(1)]);
  const sinRaw = r.op('Mul', [r.op('Sin', [emb]), r.scalarFloat(1)]);
  const cos = r.op('Cast', [cosRaw], { to: FLOAT });
  const sin = r.op('Cast', [sinRaw], { to: FLOAT });

  let hidden = embeds;
  let cosU;
  let sinU;
  for (let i = 0; i < cfg.layers; i++) {
    const L = b.scope(`/model/layers.${i}`);
    const ln1 = rmsNorm(L.child('input_layernorm'), hidden, norms[i][0], cfg.eps);
    const a = L.child('self_attn');
    const h = ln1.out;
    const B = a.dim(h, 0);
    const Sq = a.dim(h, 1);
    const wq = b.matmulWeight([cfg.hidden, cfg.heads * D]);
    const q = a.child('q_proj').op('MatMul', [h, wq]);
    const headsShape = () => a.op('Concat', [a.unsq(B), a.unsq(Sq), a.ints([-1]), a.ints([D])], { axis: 0 });
    const shapeQ = headsShape();
    const shapeK = headsShape();
    const shapeV = headsShape();
    const qT = a.op('Transpose', [a.op('Reshape', [q, shapeQ], { allowzero: 0 })], { perm: [0, 2, 1, 3] });
    const wk = b.matmulWeight([cfg.hidden, cfg.kvHeads * D]);
    const k = a.child('k_proj').op('MatMul', [h, wk]);
    const kT = a.op('Transpose', [a.op('Reshape', [k, shapeK], { allowzero: 0 })], { perm: [0, 2, 1, 3] });
    const wv = b.matmulWeight([cfg.hidden, cfg.kvHeads * D]);
    const v = a.child('v_proj').op('MatMul', [h, wv]);
    const vT = a.op('Transpose', [a.op('Reshape', [v, shapeV], { allowzero: 0 })], { perm: [0, 2, 1, 3] });
    if (i === 0) {
      cosU = a.unsqAxis(cos, 1);
      sinU = a.unsqAxis(sin, 1);
    }
    const qe = rope(a, qT, cosU, sinU);
    const ke = rope(a, kT, cosU, sinU);
    const kr = nRep > 1 ? repeatKv(a, ke, nRep) : ke;
    const vr = nRep > 1 ? repeatKv(a, vT, nRep) : vT;
    const scores = a.op('MatMul', [qe, a.op('Transpose', [kr], { perm: [0, 1, 3, 2] })]);
    const scaled = scaleOp === 'mul' ? a.op('Mul', [scores, a.scalarFloat(1 / Math.sqrt(D))]) : a.op('Div', [scores, a.scalarFloat(Math.sqrt(D))]);
    const probs = a.op('Softmax', [a.op('Add', [scaled, mask])], { axis: -1 });
    const probs32 = a.op('Cast', [a.op('Cast', [probs], { to: FLOAT })], { to: FLOAT });
    const ctx = a.op('Transpose', [a.op('MatMul', [probs32, vr])], { perm: [0, 2, 1, 3] });
    const merged = a.op('Reshape', [ctx, a.op('Concat', [a.unsq(B), a.unsq(Sq), a.ints([-1])], { axis: 0 })], { allowzero: 0 });
    const wo = b.matmulWeight([cfg.heads * D, cfg.hidden]);
    const attnOut = a.child('o_proj').op('MatMul', [merged, wo]);
    const resid1 = L.op('Add', [ln1.x32, attnOut]);
    const ln2 = rmsNorm(L.child('post_attention_layernorm'), resid1, norms[i][1], cfg.eps);
    const mlp = L.child('mlp');
    const wg = b.matmulWeight([cfg.hidden, cfg.intermediate]);
    const wu = b.matmulWeight([cfg.hidden, cfg.intermediate]);
    const wd = b.matmulWeight([cfg.intermediate, cfg.hidden]);
    const gate = mlp.child('gate_proj').op('MatMul', [ln2.out, wg]);
    const act = mlp.child('act_fn');
    const silu = act.op('Mul', [gate, act.op('Sigmoid', [gate])]);
    const up = mlp.child('up_proj').op('MatMul', [ln2.out, wu]);
    const down = mlp.child('down_proj').op('MatMul', [mlp.op('Mul', [silu, up]), wd]);
    hidden = L.op('Add', [ln2.x32, down]);
  }
  const fin = rmsNorm(b.scope('/model/norm'), hidden, finalNormW, cfg.eps);
  const wl = b.matmulWeight([cfg.hidden, cfg.vocab]);
  b.scope('/lm_head').op('MatMul', [fin.out, wl], {}, 1, 'logits');

  return finishModel(b, cfg, [valueInfo('input_ids', INT64, ['batch', 'sequence']), valueInfo('attention_mask', INT64, ['batch', 'sequence'])], [valueInfo('logits', FLOAT, ['batch', 'sequence', cfg.vocab])], 'llama');
}

// ---------- GPT-2 ----------

/** transformers' Conv1D as traced: flatten to 2-D, Gemm(x, W, b), reshape back */
function conv1d(s, x, w, bias, outFeatures) {
  const B = s.dim(x, 0);
  const S = s.dim(x, 1);
  const shape = s.op('Shape', [x]);
  const axes = s.ints([0]);
  const last = s.op('Squeeze', [s.op('Slice', [shape, s.ints([-1]), s.const(i64Tensor([1], [INT64_MAX])), axes]), s.ints([0])]);
  const flat = s.op('Reshape', [x, s.op('Concat', [s.ints([-1]), s.unsq(last)], { axis: 0 })], { allowzero: 0 });
  const y = s.op('Gemm', [flat, w, bias], { alpha: float(1), beta: float(1) });
  return s.op('Reshape', [y, s.op('Concat', [s.unsq(B), s.unsq(S), s.ints([outFeatures])], { axis: 0 })], { allowzero: 0 });
}

export function buildGpt2(cfg, options = {}) {
  const scaleOp = options.scale ?? 'mul';
  const b = new Builder();
  const E = cfg.hidden;
  const D = E / cfg.heads;
  const wte = b.weight('transformer.wte.weight', [cfg.vocab, E]);
  const wpe = b.weight('transformer.wpe.weight', [cfg.positions, E]);
  const layerW = [];
  for (let i = 0; i < cfg.layers; i++) {
    const p = `transformer.h.${i}`;
    layerW.push({
      ln1w: b.weight(`${p}.ln_1.weight`, [E]),
      ln1b: b.weight(`${p}.ln_1.bias`, [E]),
      attnW: b.weight(`${p}.attn.c_attn.weight`, [E, 3 * E]),
      attnB: b.weight(`${p}.attn.c_attn.bias`, [3 * E]),
      projW: b.weight(`${p}.attn.c_proj.weight`, [E, E]),
      projB: b.weight(`${p}.attn.c_proj.bias`, [E]),
      ln2w: b.weight(`${p}.ln_2.weight`, [E]),
      ln2b: b.weight(`${p}.ln_2.bias`, [E]),
      fcW: b.weight(`${p}.mlp.c_fc.weight`, [E, cfg.intermediate]),
      fcB: b.weight(`${p}.mlp.c_fc.bias`, [cfg.intermediate]),
      fcProjW: b.weight(`${p}.mlp.c_proj.weight`, [cfg.intermediate, E]),
      fcProjB: b.weight(`${p}.mlp.c_proj.bias`, [E]),
    });
  }
  const lnfW = b.weight('transformer.ln_f.weight', [E]);
  const lnfB = b.weight('transformer.ln_f.bias', [E]);

  const t = b.scope('/transformer');
  const S0 = t.dim('input_ids', 1);
  const ids = t.op('Reshape', ['input_ids', t.op('Concat', [t.ints([-1]), t.unsq(S0)], { axis: 0 })], { allowzero: 0 });
  const B0 = t.dim(ids, 0);
  const tokens = b.scope('/transformer/wte').op('Gather', [wte, ids]);
  const S = t.dim(tokens, 1);
  const positions = t.unsqAxis(t.op('Range', [t.scalarInt(0), t.op('Cast', [S], { to: INT64 }), t.scalarInt(1)]), 0);
  const posEmb = t.op('Cast', [b.scope('/transformer/wpe').op('Gather', [wpe, positions])], { to: FLOAT });
  let hidden = t.op('Add', [tokens, posEmb]);
  const maskBool = t.op('Cast', [t.op('Reshape', ['attention_mask', t.op('Concat', [t.unsq(B0), t.ints([-1])], { axis: 0 })], { allowzero: 0 })], { to: BOOL });
  const batch = t.dim(tokens, 0);
  const mask = causalPaddingMask(t, tokens, maskBool, positions, batch, S);
  const hiddenSize = t.op('Squeeze', [t.op('Slice', [t.op('Shape', [hidden]), t.ints([-1]), t.const(i64Tensor([1], [INT64_MAX])), t.ints([0])]), t.ints([0])]);

  for (let i = 0; i < cfg.layers; i++) {
    const w = layerW[i];
    const L = b.scope(`/transformer/h.${i}`);
    const ln1 = L.child('ln_1').op('LayerNormalization', [hidden, w.ln1w, w.ln1b], { axis: -1, epsilon: float(cfg.eps) });
    const a = L.child('attn');
    const qkv = conv1d(a.child('c_attn'), ln1, w.attnW, w.attnB, 3 * E);
    const [q, k, v] = a.op('Split', [qkv, a.ints([E, E, E])], { axis: 2 }, 3);
    const Bk = a.dim(k, 0);
    const Sk = a.dim(k, 1);
    const shapeK = a.op('Concat', [a.unsq(Bk), a.unsq(Sk), a.ints([-1]), a.ints([D])], { axis: 0 });
    const shapeV = a.op('Concat', [a.unsq(Bk), a.unsq(Sk), a.ints([-1]), a.ints([D])], { axis: 0 });
    const kr = a.op('Reshape', [k, shapeK], { allowzero: 0 });
    const vT = a.op('Transpose', [a.op('Reshape', [v, shapeV], { allowzero: 0 })], { perm: [0, 2, 1, 3] });
    const Bq = a.dim(q, 0);
    const Sq = a.dim(q, 1);
    const shapeQ = a.op('Concat', [a.unsq(Bq), a.unsq(Sq), a.ints([-1]), a.ints([D])], { axis: 0 });
    const qT = a.op('Transpose', [a.op('Reshape', [q, shapeQ], { allowzero: 0 })], { perm: [0, 2, 1, 3] });
    const kTT = a.op('Transpose', [kr], { perm: [0, 2, 3, 1] });
    const scores = a.op('MatMul', [qT, kTT]);
    const scaled = scaleOp === 'mul' ? a.op('Mul', [scores, a.scalarFloat(1 / Math.sqrt(D))]) : a.op('Div', [scores, a.scalarFloat(Math.sqrt(D))]);
    const probs = a.op('Cast', [a.op('Softmax', [a.op('Add', [scaled, mask])], { axis: -1 })], { to: FLOAT });
    const ctx = a.op('Transpose', [a.op('MatMul', [probs, vT])], { perm: [0, 2, 1, 3] });
    const Bo = a.dim(ctx, 0);
    const So = a.dim(ctx, 1);
    const merged = a.op('Reshape', [ctx, a.op('Concat', [a.unsq(Bo), a.unsq(So), a.ints([-1])], { axis: 0 })], { allowzero: 0 });
    const attnOut = conv1d(a.child('c_proj'), merged, w.projW, w.projB, E);
    const resid = L.op('Add', [attnOut, hidden]);
    const ln2 = L.child('ln_2').op('LayerNormalization', [resid, w.ln2w, w.ln2b], { axis: -1, epsilon: float(cfg.eps) });
    const mlp = L.child('mlp');
    const fc = conv1d(mlp.child('c_fc'), ln2, w.fcW, w.fcB, cfg.intermediate);
    const act = mlp.child('act');
    const halfX = act.op('Mul', [fc, act.scalarFloat(0.5)]);
    const cube = act.op('Mul', [act.op('Pow', [fc, act.scalarFloat(3)]), act.scalarFloat(0.044715)]);
    const inner = act.op('Mul', [act.op('Add', [fc, cube]), act.scalarFloat(Math.sqrt(2 / Math.PI))]);
    const gelu = act.op('Mul', [halfX, act.op('Add', [act.op('Tanh', [inner]), act.scalarFloat(1)])]);
    const proj = conv1d(mlp.child('c_proj'), gelu, w.fcProjW, w.fcProjB, E);
    hidden = L.op('Add', [resid, proj]);
  }
  const lnf = b.scope('/transformer/ln_f').op('LayerNormalization', [hidden, lnfW, lnfB], { axis: -1, epsilon: float(cfg.eps) });
  const out = t.op('Reshape', [lnf, t.op('Concat', [t.ints([-1]), t.unsq(S0), t.unsq(hiddenSize)], { axis: 0 })], { allowzero: 0 });
  const lmW = b.matmulWeight([E, cfg.vocab]);
  b.scope('/lm_head').op('MatMul', [out, lmW], {}, 1, 'logits');

  return finishModel(b, cfg, [valueInfo('input_ids', INT64, ['batch', 'sequence']), valueInfo('attention_mask', INT64, ['batch', 'sequence'])], [valueInfo('logits', FLOAT, ['batch', 'sequence', cfg.vocab])], 'gpt2');
}

function finishModel(b, cfg, inputs, outputs, family) {
  const graph = onnx.GraphProto.create({ name: 'main_graph', node: b.nodes, initializer: b.initializers, input: inputs, output: outputs });
  const proto = onnx.ModelProto.create({
    irVersion: Long.fromNumber(8),
    producerName: 'pytorch',
    producerVersion: '2.1.0',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
    graph,
    metadataProps: [onnx.StringStringEntryProto.create({ key: 'attnpass.bench', value: `${family}: ${JSON.stringify(cfg)}` })],
  });
  return { proto, weights: b.weights };
}

// ---------- weight bytes ----------

/** Deterministic small random float32 values (xorshift32), scaled like an initialised transformer. */
function randomFloats(n, seed, scale = 0.02) {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

function weightValues(w, index) {
  const n = w.bytes / 4;
  const name = w.tensor.name;
  if (/norm|ln_\d|ln_f/.test(name) && /weight$/.test(name)) return new Float32Array(n).fill(1);
  if (/bias$/.test(name)) return new Float32Array(n);
  return randomFloats(n, 0x9e3779b9 ^ (index * 2654435761), name.includes('wte') || name.includes('embed') ? 1 : 0.05);
}

/**
 * Writes the model with its weights in one external data file (4 KiB-aligned, like onnx's saver for large
 * tensors). weights: 'sparse' sets the file size with ftruncate (a hole; nothing is written), 'random'
 * writes deterministic values. Tensors under 1 KiB stay embedded, as onnx.save_model(size_threshold=1024) does.
 */
export function writeExternal(dir, model, { weights = 'sparse', modelName = 'model.onnx', dataName = 'model.onnx_data' } = {}) {
  mkdirSync(dir, { recursive: true });
  const dataPath = join(dir, dataName);
  const fd = openSync(dataPath, 'w');
  let offset = 0;
  try {
    model.weights.forEach((w, i) => {
      if (w.bytes < 1024) {
        w.tensor.rawData = new Uint8Array(weightValues(w, i).buffer);
        return;
      }
      offset = Math.ceil(offset / 4096) * 4096;
      w.tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      w.tensor.externalData = [
        onnx.StringStringEntryProto.create({ key: 'location', value: dataName }),
        onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
        onnx.StringStringEntryProto.create({ key: 'length', value: String(w.bytes) }),
      ];
      if (weights === 'random') {
        const values = weightValues(w, i);
        writeSync(fd, new Uint8Array(values.buffer), 0, values.byteLength, offset);
      }
      offset += w.bytes;
    });
    ftruncateSync(fd, offset);
  } finally {
    closeSync(fd);
  }
  const bytes = onnx.ModelProto.encode(model.proto).finish();
  writeFileSync(join(dir, modelName), bytes);
  return { modelPath: join(dir, modelName), dataPath, modelBytes: bytes.length, dataBytes: offset };
}

/**
 * Writes the model with every weight embedded as raw_data. weights: 'random' gives each tensor its own
 * values; 'pattern' makes every tensor a view of one shared buffer of random values (cheap to generate, same
 * file size and parse cost). Written with the streaming encoder, so no second copy of the weights is built.
 */
export function writeEmbedded(dir, model, { weights = 'pattern', modelName = 'model.onnx' } = {}) {
  mkdirSync(dir, { recursive: true });
  let shared;
  if (weights === 'pattern') {
    const largest = Math.max(...model.weights.map((w) => w.bytes));
    shared = new Uint8Array(randomFloats(largest / 4, 12345, 0.02).buffer);
  }
  model.weights.forEach((w, i) => {
    w.tensor.rawData = shared ? shared.subarray(0, w.bytes) : new Uint8Array(weightValues(w, i).buffer);
  });
  const encoded = encodeModelParts(model.proto);
  const path = join(dir, modelName);
  const fd = openSync(path, 'w');
  try {
    let at = 0;
    writeParts(encoded, { write: (chunk) => { for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done, at + done); at += chunk.length; } });
  } finally {
    closeSync(fd);
  }
  return { modelPath: path, modelBytes: encoded.length, dataBytes: 0 };
}

/** Builds and writes a named configuration into `dir`. */
export function generate(name, dir, overrides = {}) {
  const base = CONFIGS[name];
  if (!base) throw new Error(`unknown model '${name}'; one of ${Object.keys(CONFIGS).join(', ')}`);
  const { scale, weights, ...cfgOverrides } = overrides;
  const cfg = { ...base, ...cfgOverrides };
  const model = cfg.family === 'llama' ? buildLlama(cfg, { scale }) : buildGpt2(cfg, { scale });
  const w = weights ?? cfg.weights;
  const written = cfg.family === 'llama' ? writeExternal(dir, model, { weights: w === 'pattern' ? 'sparse' : w }) : writeEmbedded(dir, model, { weights: w });
  return { name, config: cfg, nodes: model.proto.graph.node.length, initializers: model.weights.length, ...written };
}

function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const [k, v] = a.includes('=') ? a.slice(2).split('=') : [a.slice(2), argv[++i]];
      out[k] = v;
    } else out._.push(a);
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  const names = args._.length ? args._ : ['llama7b', 'gpt2'];
  if (!args.out) {
    console.error('usage: node bench/models/generate.mjs <llama7b|gpt2|llama-tiny|gpt2-tiny>... --out DIR [--layers N] [--scale div|mul] [--weights sparse|random|pattern]');
    process.exit(2);
  }
  for (const name of names) {
    const dir = names.length > 1 ? join(args.out, name) : args.out;
    const overrides = {};
    if (args.layers) overrides.layers = Number(args.layers);
    if (args.scale) overrides.scale = args.scale;
    if (args.weights) overrides.weights = args.weights;
    const t0 = performance.now();
    const r = generate(name, dir, overrides);
    console.log(`${name}: ${r.modelPath} (${r.modelBytes} bytes${r.dataBytes ? ` + ${r.dataBytes} bytes external data` : ''}), ${r.nodes} nodes, ${r.initializers} weights, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}
