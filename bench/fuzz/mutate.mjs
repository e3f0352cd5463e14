// Seeded mutations of ONNX files: byte-level (flip, overwrite, insert, delete, truncate, duplicate) and
// field-level (decode, change a field somewhere in the tree, encode). Every mutant is a pure function of
// (seed, index), so a failure can be reproduced with `--seed S --only-index I`.
import { onnx, Long } from '../../dist/src/onnx/codec.js';

export function prng(seed) {
  let s = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (list) => list[int(list.length)];
  return { next, int, pick, chance: (p) => next() < p };
}

const EXTREMES = ['9223372036854775807', '-9223372036854775808', '4611686018427387904', '-1', '0', '1', '2147483647', '4294967296', '-5', '1099511627777'];
const OPS = ['MatMul', 'Softmax', 'Add', 'Mul', 'Div', 'Reshape', 'Transpose', 'Concat', 'Gather', 'Where', 'Constant', 'If', 'Loop', 'Scan', 'Attention', 'Cast', 'Shape', 'Slice', 'Expand', 'Squeeze', 'Unsqueeze', 'Split', 'Range', 'ConstantOfShape', 'LayerNormalization', 'Gelu', 'FooBar', '', 'SoftMax', 'MultiHeadAttention', 'GroupQueryAttention', 'TiledAttention', 'Twice'];
const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'ai.attnpass', 'ai.onnx.ml', 'test.fn', 'x.unknown'];
const LOCATIONS = ['/etc/passwd', '../weights.bin', 'sub/../../weights.bin', 'weights.bin', 'missing.bin', '', 'link-out', '.', 'model.onnx', 'C:\\x.bin', '\\\\server\\share', 'weights.bin\u0000x'];
const STRINGS = ['', 'x', 'y', 'q', 'probs', 'ghost', 'Wq', 'mask', 'branch', 'a', 'b', 'scores', 'x'.repeat(300)];

const long = (text) => Long.fromString(text);

/** Every message in the tree with its kind, and the names of values seen (for plausible rewiring). */
function collect(model) {
  const found = { node: [], tensor: [], attribute: [], valueInfo: [], graph: [], function: [], dim: [], opset: [] };
  const names = new Set();
  const visitTensor = (t) => {
    if (!t) return;
    found.tensor.push(t);
    if (t.name) names.add(t.name);
  };
  const visitGraph = (g) => {
    if (!g) return;
    found.graph.push(g);
    for (const t of g.initializer ?? []) visitTensor(t);
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) {
      found.valueInfo.push(v);
      if (v.name) names.add(v.name);
      for (const d of v.type?.tensorType?.shape?.dim ?? []) found.dim.push(d);
    }
    for (const n of g.node ?? []) visitNode(n);
  };
  const visitNode = (n) => {
    found.node.push(n);
    for (const o of n.output ?? []) names.add(o);
    for (const a of n.attribute ?? []) {
      found.attribute.push(a);
      visitTensor(a.t);
      for (const t of a.tensors ?? []) visitTensor(t);
      visitGraph(a.g);
      for (const g of a.graphs ?? []) visitGraph(g);
    }
  };
  visitGraph(model.graph);
  for (const f of model.functions ?? []) {
    found.function.push(f);
    for (const n of f.node ?? []) visitNode(n);
    for (const o of f.opsetImport ?? []) found.opset.push(o);
  }
  for (const o of model.opsetImport ?? []) found.opset.push(o);
  return { found, names: [...names] };
}

const fieldMutations = {
  node(r, n, names, model) {
    switch (r.int(12)) {
      case 0: n.opType = r.pick(OPS); break;
      case 1: n.domain = r.pick(DOMAINS); break;
      case 2: if (n.input?.length) n.input.splice(r.int(n.input.length), 1); break;
      case 3: (n.input ??= []).splice(r.int((n.input.length ?? 0) + 1), 0, r.chance(0.5) ? r.pick(names) : r.pick(STRINGS)); break;
      case 4: if (n.output?.length) n.output[r.int(n.output.length)] = r.chance(0.6) ? r.pick(names) : r.pick(STRINGS); break;
      case 5: if (n.input?.length) n.input[r.int(n.input.length)] = r.pick(names); break;
      case 6: n.name = r.pick([...names, '']); break;
      case 7: delete n.opType; break;
      case 8: n.output = []; break;
      case 9: n.attribute = []; break;
      case 10: {
        // a node that consumes its own output
        if (n.output?.length) (n.input ??= []).push(n.output[0]);
        break;
      }
      default: {
        const g = model.graph;
        if (g?.node?.length) {
          const i = r.int(g.node.length);
          const [moved] = g.node.splice(i, 1);
          if (r.chance(0.5)) g.node.splice(r.int(g.node.length + 1), 0, moved);
          if (r.chance(0.3)) g.node.push(onnx.NodeProto.decode(onnx.NodeProto.encode(moved).finish()));
        }
      }
    }
  },
  tensor(r, t) {
    switch (r.int(10)) {
      case 0: t.dims = (t.dims ?? []).map(() => long(r.pick(EXTREMES))); break;
      case 1: (t.dims ??= []).push(Long.fromNumber(r.int(5))); break;
      case 2: t.dataType = r.int(32); break;
      case 3: if (t.rawData?.length) t.rawData = t.rawData.subarray(0, r.int(t.rawData.length)); break;
      case 4: t.rawData = new Uint8Array(r.int(64)); break;
      case 5: delete t.rawData; break;
      case 6: {
        const e = (key, value) => onnx.StringStringEntryProto.create({ key, value });
        t.dataLocation = 1;
        t.externalData = [e('location', r.pick(LOCATIONS)), e('offset', r.pick(['0', '4096', '99999999999', '-1', 'abc', '1e3', ...EXTREMES])), e('length', r.pick(['1024', '0', '4096', '8192', '99999999999999999999', 'x']))];
        if (r.chance(0.3)) t.externalData.splice(r.int(3), 1);
        break;
      }
      case 7: if (t.externalData?.length) t.externalData[r.int(t.externalData.length)].value = r.pick([...LOCATIONS, ...EXTREMES]); break;
      case 8: t.floatData = Array.from({ length: r.int(10) }, () => r.next()); delete t.rawData; break;
      default: t.dataLocation = r.int(3);
    }
  },
  attribute(r, a, names) {
    switch (r.int(9)) {
      case 0: a.type = r.int(16); break;
      case 1: a.i = long(r.pick(EXTREMES)); break;
      case 2: a.ints = Array.from({ length: r.int(6) }, () => long(r.pick(EXTREMES))); break;
      case 3: a.f = r.pick([NaN, Infinity, -Infinity, 0, -0, 1e38]); break;
      case 4: a.refAttrName = r.pick(['axis', 'ax', '']); break;
      case 5: a.name = r.pick(['axis', 'perm', 'to', 'value', 'then_branch', 'body', '']); break;
      case 6: a.s = new TextEncoder().encode(r.pick(names) ?? 'x'); break;
      case 7: delete a.g; a.graphs = []; break;
      default: a.g = onnx.GraphProto.create({ name: 'injected', node: [onnx.NodeProto.create({ opType: r.pick(OPS), input: [r.pick(names) ?? 'x'], output: ['inj_out'] })], output: [{ name: r.chance(0.5) ? 'inj_out' : 'nowhere' }] });
    }
  },
  valueInfo(r, v, names) {
    switch (r.int(5)) {
      case 0: v.name = r.pick([...names, ...STRINGS]); break;
      case 1: delete v.type; break;
      case 2: if (v.type?.tensorType) v.type.tensorType.elemType = r.int(40); break;
      case 3: v.type = { tensorType: { elemType: 1, shape: { dim: Array.from({ length: r.int(7) }, () => ({ dimValue: long(r.pick(EXTREMES)) })) } } }; break;
      default: v.type = { sequenceType: { elemType: { tensorType: { elemType: 1 } } } };
    }
  },
  dim(r, d) {
    if (r.chance(0.5)) d.dimValue = long(r.pick(EXTREMES));
    else d.dimParam = r.pick(STRINGS);
  },
  graph(r, g, names) {
    switch (r.int(7)) {
      case 0: g.output = []; break;
      case 1: (g.output ??= []).push({ name: r.pick(STRINGS) }); break;
      case 2: g.node?.reverse(); break;
      case 3: if (g.initializer?.length) g.initializer.splice(r.int(g.initializer.length), 1); break;
      case 4: if (g.initializer?.length) g.initializer.push(g.initializer[r.int(g.initializer.length)]); break;
      case 5: g.input = []; break;
      default: (g.node ??= []).push(onnx.NodeProto.create({ opType: r.pick(OPS), input: [r.pick(names) ?? 'x', 'loop_back'], output: ['loop_back'], name: 'cyc' }));
    }
  },
  function(r, f) {
    switch (r.int(4)) {
      case 0: (f.node ??= []).push(onnx.NodeProto.create({ opType: f.name, domain: f.domain, input: ['a'], output: ['self_out'] })); break;
      case 1: f.opsetImport = []; break;
      case 2: f.input = []; break;
      default: f.output = ['not_made'];
    }
  },
  opset(r, o) {
    if (r.chance(0.5)) o.version = long(r.pick(EXTREMES));
    else o.domain = r.pick(DOMAINS);
  },
  model(r, m) {
    switch (r.int(5)) {
      case 0: m.irVersion = long(r.pick([...EXTREMES, '3', '7', '10', '14', '15'])); break;
      case 1: m.opsetImport = r.chance(0.5) ? [] : [...(m.opsetImport ?? []), ...(m.opsetImport ?? [])]; break;
      case 2: delete m.graph; break;
      case 3: m.functions = [...(m.functions ?? []), ...(m.functions ?? [])]; break;
      default: (m.opsetImport ??= []).push({ domain: r.pick(DOMAINS), version: long(r.pick(EXTREMES)) });
    }
  },
};

const BYTE_OPS = ['flip', 'overwrite', 'insert', 'delete', 'truncate', 'duplicate', 'varint'];

function mutateBytes(r, bytes, op) {
  const b = Uint8Array.from(bytes);
  const at = r.int(Math.max(1, b.length));
  switch (op) {
    case 'flip':
      for (let k = 1 + r.int(8); k > 0; k--) b[r.int(b.length)] ^= 1 << r.int(8);
      return b;
    case 'overwrite':
      for (let k = 1 + r.int(16); k > 0; k--) b[r.int(b.length)] = r.int(256);
      return b;
    case 'insert':
      return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + r.int(16) }, () => r.int(256)), ...b.subarray(at)]);
    case 'delete':
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + 1 + r.int(64)))]);
    case 'truncate':
      return b.subarray(0, at);
    case 'duplicate': {
      const len = 1 + r.int(128);
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at, at + len), ...b.subarray(at)]);
    }
    default: {
      // a run of continuation bytes: an over-long varint
      for (let k = 0; k < 11 && at + k < b.length; k++) b[at + k] = 0xff;
      return b;
    }
  }
}

/** One mutant of `bytes`: { bytes, ops: ['field:node', 'byte:flip', ...] } */
export function mutate(bytes, seed, index) {
  const r = prng((seed * 1_000_003) ^ (index * 7919));
  const ops = [];
  let out = bytes;
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    if (r.chance(0.35)) {
      const op = r.pick(BYTE_OPS);
      ops.push(`byte:${op}`);
      out = mutateBytes(r, out, op);
      continue;
    }
    let model;
    try {
      model = onnx.ModelProto.decode(out);
    } catch {
      const op = r.pick(BYTE_OPS);
      ops.push(`byte:${op}`);
      out = mutateBytes(r, out, op);
      continue;
    }
    const { found, names } = collect(model);
    const kinds = Object.keys(found).filter((kind) => found[kind].length > 0);
    const kind = kinds.length === 0 || r.chance(0.08) ? 'model' : r.pick(kinds);
    ops.push(`field:${kind}`);
    if (kind === 'model') fieldMutations.model(r, model);
    else fieldMutations[kind](r, r.pick(found[kind]), names, model);
    try {
      out = onnx.ModelProto.encode(model).finish();
    } catch {
      ops.push('encode-failed');
    }
  }
  return { bytes: out, ops };
}

const REWRITE_PASSES = ['att', 'ast', 'span', 'window'];

/** The conversion mutant `index` gets: a rewrite pass, sometimes its exact setting or only some layers. */
export function conversionFor(seed, index) {
  const r = prng((seed * 7_368_787) ^ (index * 104_729) ^ 0x5eed);
  const pass = r.pick(REWRITE_PASSES);
  const passOptions = {};
  if (r.chance(0.25)) passOptions.exact = true;
  if (r.chance(0.15)) passOptions.layers = r.pick(['0', '1-2', '0,3']);
  return { pass, passOptions };
}
