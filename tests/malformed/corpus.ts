/**
 * The malformed corpus: broken files and broken models, each with the error it must produce. `buildCorpus`
 * writes every entry into a folder (one sub-folder per entry, so external data and links stay local) and
 * returns what each must do: exit code, a message pattern, and the words the message must name (file,
 * node, field).
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Long, onnx, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/codec.js';
import { attentionModel, attrInt, attrInts, controlFlowModel, encode, F32, floatTensor, I64, int64Init, model, node, opset, vi } from '../onnx/models.js';

export interface CorpusEntry {
  name: string;
  /** what is broken, in words */
  what: string;
  /** the model file to open */
  file: string;
  /** exit code of `inspect`: 1 for every broken input; 0 where the model is valid but odd */
  exit: number;
  /** the message on stderr (and of the library's AttnpassError) */
  message: RegExp;
  /** words the message must contain besides the file name: node names, fields, values */
  names: string[];
}

const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const field = (no: number, payload: number[]): number[] => [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
const text = (s: string): number[] => [...Buffer.from(s)];

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
}

/** The attention block with fixed sizes (batch 2, seq 5) so shape checks have numbers to compare. */
function fixedAttention(): ModelProto {
  const m = attentionModel({ mask: true });
  const g = m.graph!;
  g.input = [vi('x', F32, [2, 5, 16]), vi('mask', F32, [2, 1, 1, 5])];
  g.output = [vi('y', F32, [2, 5, 16])];
  return m;
}

const nodeNamed = (m: ModelProto, name: string): NodeProto => m.graph!.node!.find((n) => n.name === name)!;

function externalize(m: ModelProto, dir: string, edit: (t: TensorProto, entries: Map<string, string>) => void = () => {}): void {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  m.graph!.initializer = m.graph!.initializer!.map((t) => {
    if (t.dataType !== F32) return t;
    const entries = new Map([['location', 'weights.bin'], ['offset', String(offset)], ['length', String(t.rawData!.length)]]);
    chunks.push(t.rawData!);
    offset += t.rawData!.length;
    const ext = onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: t.dataType, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL });
    edit(ext, entries);
    ext.externalData = [...entries].map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
    return ext;
  });
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks));
}

type Maker = (dir: string) => Uint8Array | ModelProto | string;
interface Spec {
  name: string;
  what: string;
  make: Maker;
  exit?: number;
  message: RegExp;
  names?: string[];
}

const TRUNCATED = /the file is truncated \(\d+ bytes\) at byte \d+, in field [\w.[\]]+: the file ends .*Re-export or re-download the model/;

function specs(): Spec[] {
  const good = encode(attentionModel({ mask: true }));
  const random = seeded(20240601);
  const list: Spec[] = [
    // ---------------------------------------------------------------- files that are not models
    { name: 'empty', what: 'empty file', make: () => new Uint8Array(0), message: /the file is empty, not an ONNX model\. Re-export the model or check the path/ },
    { name: 'random-bytes', what: '4 KiB of random bytes', make: () => Uint8Array.from({ length: 4096 }, random), message: /(not an ONNX model|the file is truncated|the file is damaged)/ },
    { name: 'text', what: 'a text file', make: () => new TextEncoder().encode('This is not a model.\nJust text.\n'), message: /(not an ONNX model|the file is truncated|the file is damaged|has no 'graph' field)/ },
    { name: 'json', what: 'a JSON file', make: () => new TextEncoder().encode(JSON.stringify({ graph: { node: [] } })), message: /(not an ONNX model|the file is truncated|the file is damaged|has no 'graph' field)/ },
    { name: 'zip', what: 'a zip archive (e.g. a PyTorch .pt)', make: () => Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0, ...Array.from({ length: 200 }, random)]), message: /(not an ONNX model|the file is truncated|the file is damaged)/ },
    ...[1, Math.floor(good.length * 0.1), Math.floor(good.length * 0.5), Math.floor(good.length * 0.9), good.length - 1].map((n): Spec => {
      return { name: `truncated-${n}`, what: `valid model cut to ${n} of ${good.length} bytes`, make: () => good.subarray(0, n), message: TRUNCATED };
    }),
    { name: 'truncated-in-weight', what: 'cut inside the first weight', make: () => good.subarray(0, 1000), message: TRUNCATED, names: ['graph.initializer[0].raw_data'] },
    { name: 'bare-tensor', what: 'a TensorProto file, not a ModelProto', make: () => onnx.TensorProto.encode(floatTensor('w', [4, 4], () => 1)).finish(), message: /(not an ONNX model|has no 'graph' field|the file is damaged)/ },
    { name: 'no-graph', what: 'a ModelProto without a graph', make: () => onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: Long.fromNumber(8), producerName: 'x' })).finish(), message: /has no 'graph' field \(ModelProto field 7\), so it is not an ONNX model.*Export a full ModelProto/ },
    { name: 'wire-graph-varint', what: "ModelProto.graph sent as a varint (wrong wire type)", make: () => Uint8Array.from([0x08, 0x08, 0x38, 0x01]), message: /the file is damaged or not an ONNX model: graph at byte 2 has wire type 0 where the schema says 2.*re-export the model/, names: ['graph'] },
    {
      name: 'wire-optype-varint',
      what: 'NodeProto.op_type sent as a varint',
      make: () => {
        const m = attentionModel();
        const bytes = Uint8Array.from(encode(m));
        const nodeBytes = Buffer.from(onnx.NodeProto.encode(m.graph!.node![0]!).finish());
        const at = Buffer.from(bytes).indexOf(nodeBytes) + nodeBytes.indexOf(Buffer.from([0x22, 0x06, ...Buffer.from('MatMul')]));
        bytes.set([0x20, 0x05, 0x78, 0x01, 0x78, 0x01, 0x78, 0x01], at);
        return bytes;
      },
      message: /graph\.node\[0\]\.op_type at byte \d+ has wire type 0 where the schema says 2/,
      names: ['graph.node[0].op_type'],
    },
    { name: 'wire-dims-fixed64', what: 'TensorProto.dims sent as fixed64', make: () => Uint8Array.from([0x08, 0x08, ...field(7, field(5, [0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x01]))]), message: /graph\.initializer\[0\]\.dims at byte \d+ has wire type 1 where the schema says 0/, names: ['graph.initializer[0].dims'] },
    { name: 'wire-type-7', what: 'a tag with wire type 7', make: () => Uint8Array.from([0x08, 0x08, 0x3f, 0x00]), message: /not an ONNX model: its bytes do not decode as onnx\.ModelProto at byte 2, in field graph: 'graph' has wire type 7, which does not exist in protobuf/ },
    { name: 'group-wire-type', what: 'a field in the deprecated group encoding', make: () => Uint8Array.from([0x08, 0x08, 0x3b, 0x3c]), message: /deprecated group encoding|wire type 3/ },
    {
      name: 'nested-too-deep',
      what: '120 nested If subgraphs',
      make: () => {
        let graph: number[] = field(2, text('leaf'));
        for (let i = 0; i < 120; i++) {
          const attribute = [...field(1, text('then_branch')), 0xa0, 0x01, 0x05, ...field(6, graph)];
          graph = field(1, [...field(1, text('c')), ...field(2, text(`o${i}`)), ...field(4, text('If')), ...field(5, attribute)]);
        }
        return Uint8Array.from([0x08, 0x08, ...field(7, graph)]);
      },
      message: /messages are nested more than 100 deep/,
    },
    { name: 'ir-version-99', what: 'ir_version 99', make: () => { const m = attentionModel(); m.irVersion = Long.fromNumber(99); return m; }, message: /ir_version is 99; attnpass reads IR versions 3–14\. Convert the model with onnx\.version_converter/ },
    { name: 'ir-version-missing', what: 'no ir_version', make: () => { const m = attentionModel(); delete (m as { irVersion?: unknown }).irVersion; return m; }, message: /ir_version is 0 \(the field is missing\)/ },
    { name: 'ir-version-2e62', what: 'ir_version 2^62', make: () => { const m = attentionModel(); m.irVersion = Long.fromString('4611686018427387904'); return m; }, message: /ir_version is 4611686018427387904/ },
    { name: 'folder', what: 'a folder where the model should be', make: (dir) => { mkdirSync(join(dir, 'model.onnx')); return join(dir, 'model.onnx'); }, message: /is a folder, not a model file\. Name the \.onnx file inside it/ },
    { name: 'missing-file', what: 'a path that does not exist', make: (dir) => join(dir, 'no-such-model.onnx'), message: /cannot open the model \(no such file\)\. Check the path/ },

    // ---------------------------------------------------------------- broken graphs
    { name: 'cycle', what: 'Q projection reads the block output', make: () => { const m = attentionModel(); nodeNamed(m, 'MatMul_q').input = ['x', 'y']; return m; }, message: /has a cycle: .*MatMul 'MatMul_q'.* → back to the first\. A graph must be acyclic/, names: ['MatMul_q'] },
    { name: 'dangling-input', what: 'Softmax reads a value nobody makes', make: () => { const m = attentionModel(); nodeNamed(m, 'Softmax_probs').input = ['scores_scaled_typo']; return m; }, message: /input 'scores_scaled_typo' of Softmax 'Softmax_probs' in graph 'attention_block' is not produced by any node, graph input or initializer\. Add what makes it/, names: ['Softmax_probs', 'scores_scaled_typo'] },
    { name: 'two-producers', what: 'two nodes write one value', make: () => { const m = attentionModel(); nodeNamed(m, 'MatMul_k').output = ['q']; return m; }, message: /value 'q' is produced by MatMul 'MatMul_k' but also by MatMul 'MatMul_q'; every value must have a single producer/, names: ['MatMul_k', 'MatMul_q'] },
    { name: 'duplicate-output-name', what: 'a node lists one output name twice', make: () => { const m = attentionModel(); m.graph!.node!.push(node('Split', ['y', 'split_sizes'], ['half', 'half'], { name: 'split', attribute: [attrInt('axis', 2)] })); m.graph!.initializer!.push(int64Init('split_sizes', [8, 8])); return m; }, message: /value 'half' is produced by Split 'split' but also by another output of the same node/, names: ['split', 'half'] },
    { name: 'missing-graph-output', what: 'a graph output nobody makes', make: () => { const m = attentionModel(); m.graph!.output!.push(vi('attn_weights', F32, null as never)); return m; }, message: /graph output 'attn_weights' of graph 'attention_block' is not produced by any node, input or initializer\. Remove it from the outputs/, names: ['attn_weights'] },
    { name: 'no-outputs', what: 'a graph without outputs', make: () => { const m = attentionModel(); m.graph!.output = []; return m; }, message: /graph 'attention_block' has no outputs; a graph must have at least one/ },
    { name: 'not-topological', what: 'nodes in reverse order', make: () => { const m = attentionModel(); m.graph!.node!.reverse(); return m; }, message: /reads '\w+' before \w+ '\w+' makes it; nodes must be in topological order/ },
    { name: 'unknown-op', what: "'SoftMax' in the default domain", make: () => { const m = attentionModel(); nodeNamed(m, 'Softmax_probs').opType = 'SoftMax'; return m; }, message: /SoftMax 'Softmax_probs': 'SoftMax' is not an operator of the default ONNX domain\. Check the op name/, names: ['Softmax_probs'] },
    { name: 'unknown-op-ml', what: "'Softmax' in ai.onnx.ml", make: () => { const m = attentionModel(); m.opsetImport!.push(opset('ai.onnx.ml', 3)); nodeNamed(m, 'Softmax_probs').domain = 'ai.onnx.ml'; return m; }, message: /ai\.onnx\.ml\.Softmax 'Softmax_probs': 'Softmax' is not an operator of the ai\.onnx\.ml domain/, names: ['Softmax_probs'] },
    { name: 'op-newer-than-opset', what: 'ONNX Attention in an opset-17 model', make: () => { const m = attentionModel(); m.graph!.node!.push(node('Attention', ['qh', 'kt', 'vh'], ['att'], { name: 'fused_attention' })); return m; }, message: /Attention 'fused_attention': Attention exists from opset 23, but the model imports opset 17/, names: ['fused_attention'] },
    { name: 'no-default-opset', what: 'opset_import without the default domain', make: () => { const m = attentionModel(); m.opsetImport = [opset('com.microsoft', 1)]; return m; }, message: /the model imports no version of the default ONNX domain \(opset_import has no entry for ""\)\. Add one, e.g\. opset 17/ },
    { name: 'domain-not-imported', what: 'a com.microsoft op without its import', make: () => { const m = attentionModel(); const n = nodeNamed(m, 'Softmax_probs'); n.domain = 'com.microsoft'; n.opType = 'FastGelu'; return m; }, message: /com\.microsoft\.FastGelu 'Softmax_probs' uses domain 'com\.microsoft', which the model does not import/, names: ['Softmax_probs'] },
    { name: 'impossible-opset', what: 'default opset 1000000', make: () => { const m = attentionModel(); m.opsetImport = [opset('', 1000000)]; return m; }, message: /imports domain 'ai\.onnx' at version 1000000, which no opset has\. Fix the opset_import entry/ },
    { name: 'custom-op-without-function', what: 'an ai.attnpass op with no function', make: () => { const m = attentionModel(); m.opsetImport!.push(opset('ai.attnpass', 1)); const n = nodeNamed(m, 'Softmax_probs'); n.domain = 'ai.attnpass'; n.opType = 'BlockSparseAttention'; return m; }, message: /ai\.attnpass\.BlockSparseAttention 'Softmax_probs': (no model-local function defines ai\.attnpass\.BlockSparseAttention.*Attach its function|every ai\.attnpass op must carry its model-local function)/, names: ['Softmax_probs'] },
    {
      name: 'function-calls-itself',
      what: 'a model-local function that calls itself',
      make: () => {
        const m = controlFlowModel();
        m.functions![0]!.node = [node('Twice', ['a'], ['b'], { domain: 'test.fn', name: 'again' })];
        m.functions![0]!.opsetImport!.push(opset('test.fn', 1));
        return m;
      },
      message: /function test\.fn\.Twice calls itself \(node test\.fn\.Twice 'again'\); ONNX functions cannot be recursive/,
      names: ['again'],
    },
    {
      name: 'functions-call-each-other',
      what: 'two functions that call each other',
      make: () => {
        const m = controlFlowModel();
        const other = onnx.FunctionProto.create({ name: 'Thrice', domain: 'test.fn', input: ['a'], output: ['b'], node: [node('Twice', ['a'], ['b'], { domain: 'test.fn', name: 'back' })], opsetImport: [opset('', 17), opset('test.fn', 1)] });
        m.functions![0]!.node = [node('Thrice', ['a'], ['b'], { domain: 'test.fn', name: 'forth' })];
        m.functions![0]!.opsetImport!.push(opset('test.fn', 1));
        m.functions!.push(other);
        return m;
      },
      message: /function test\.fn\.\w+ is recursive: test\.fn\.\w+ → test\.fn\.\w+ → test\.fn\.\w+/,
    },
    { name: 'attribute-ref-outside-function', what: "Softmax axis given as ref_attr_name in the main graph", make: () => { const m = attentionModel(); nodeNamed(m, 'Softmax_probs').attribute = [onnx.AttributeProto.create({ name: 'axis', type: 2, refAttrName: 'axis' })]; return m; }, message: /Softmax 'Softmax_probs': attribute 'axis' refers to a function attribute \('axis'\) outside a function body/, names: ['Softmax_probs'] },
    { name: 'duplicate-node-names', what: 'two nodes with one name', make: () => { const m = attentionModel(); nodeNamed(m, 'MatMul_k').name = 'MatMul_q'; return m; }, message: /two nodes are named 'MatMul_q'; node names must be unique/, names: ['MatMul_q'] },
    { name: 'type-disagreement', what: 'an int64 weight in a float MatMul', make: () => { const m = attentionModel(); m.graph!.initializer![1] = int64Init('Wk', Array.from({ length: 256 }, () => 1), [16, 16]); return m; }, message: /MatMul 'MatMul_k': inputs have different element types \('x': float32, 'Wk': int64\); MatMul needs them equal\. Insert a Cast/, names: ['MatMul_k', 'Wk'] },
    { name: 'wrong-arity', what: 'a MatMul with one input', make: () => { const m = attentionModel(); nodeNamed(m, 'MatMul_v').input = ['x']; return m; }, message: /MatMul 'MatMul_v' has 1 input\(s\); MatMul takes 2/, names: ['MatMul_v'] },
    { name: 'empty-op-type', what: 'a node without op_type', make: () => { const m = attentionModel(); delete (nodeNamed(m, 'Div_scaled') as { opType?: string }).opType; return m; }, message: /\(no op_type\) 'Div_scaled' has no op_type\. Every node names its operator/, names: ['Div_scaled'] },
    { name: 'duplicate-initializer', what: 'one initializer twice', make: () => { const m = attentionModel(); m.graph!.initializer!.push(floatTensor('Wq', [16, 16], () => 0)); return m; }, message: /initializer 'Wq' is defined twice in graph 'attention_block'; keep one/, names: ['Wq'] },
    { name: 'subgraph-dangling', what: 'a then-branch reading a value nobody makes', make: () => { const m = controlFlowModel(); m.graph!.node![2]!.attribute![0]!.g!.node![0]!.input = ['x', 'outer_ghost']; return m; }, message: /input 'outer_ghost' of Add 'Add_t_out' in graph 'then_g' is not produced by any node, graph input or initializer/, names: ['outer_ghost', 'then_g'] },

    // ---------------------------------------------------------------- contradictions at attention sites
    { name: 'attention-qk-head-dim', what: 'Kᵀ declared with head dim 4 against Q head dim 8', make: () => { const m = fixedAttention(); m.graph!.valueInfo!.push(vi('kt', F32, [2, 2, 4, 5])); return m; }, message: /MatMul 'MatMul_scores': 'qh' \[2, 2, 5, 8\] times 'kt' \[2, 2, 4, 5\]: the inner dimensions 8 and 4 differ/, names: ['MatMul_scores', 'qh', 'kt'] },
    { name: 'attention-probs-int64', what: 'attention probabilities declared int64', make: () => { const m = fixedAttention(); m.graph!.valueInfo = [vi('probs', I64, [2, 2, 5, 5])]; return m; }, message: /Softmax 'Softmax_probs': output 'probs' is declared int64, but Softmax of float32 makes float32/, names: ['Softmax_probs', 'probs'] },
    { name: 'attention-heads-reshape', what: 'heads × head_dim ≠ hidden in the head split', make: () => { const m = fixedAttention(); m.graph!.initializer![4] = int64Init('heads_shape', [0, 0, 3, 8]); return m; }, message: /Reshape 'Reshape_q4': cannot reshape \[2, 5, 16\] \(160 elements\) to \[0, 0, 3, 8\].*heads × head_dim must equal the hidden size/, names: ['Reshape_q4'] },
    { name: 'attention-mask-length', what: 'a mask over 7 keys for 5 keys', make: () => { const m = fixedAttention(); m.graph!.input![1] = vi('mask', F32, [2, 1, 1, 7]); return m; }, message: /Add 'Add_masked': input shapes 'scaled' \[2, 2, 5, 5\] and 'mask' \[2, 1, 1, 7\] cannot be broadcast together/, names: ['Add_masked', 'mask'] },
    { name: 'attention-softmax-axis', what: 'softmax over axis 4 of a rank-4 tensor', make: () => { const m = fixedAttention(); nodeNamed(m, 'Softmax_probs').attribute = [attrInt('axis', 4)]; return m; }, message: /Softmax 'Softmax_probs': axis 4 is out of range for its rank-4 input/, names: ['Softmax_probs'] },
    { name: 'attention-bad-perm', what: 'head transpose with a repeated axis', make: () => { const m = fixedAttention(); nodeNamed(m, 'Transpose_kt').attribute = [attrInts('perm', [0, 2, 2, 1])]; return m; }, message: /Transpose 'Transpose_kt': perm \[0, 2, 2, 1\] is not a permutation of the 4 axes/, names: ['Transpose_kt'] },

    // ---------------------------------------------------------------- tensors and dims
    { name: 'negative-dim', what: 'an initializer with dims [-16, 16]', make: () => { const m = attentionModel(); m.graph!.initializer![0]!.dims = [Long.fromNumber(-16), Long.fromNumber(16)]; return m; }, message: /initializer 'Wq': dims\[0\] is -16; a tensor dimension must be between 0 and 2\^40/, names: ['Wq'] },
    { name: 'dim-2e62', what: 'an input declared with dim 2^62', make: () => { const m = attentionModel(); m.graph!.input![0] = onnx.ValueInfoProto.create({ name: 'x', type: { tensorType: { elemType: F32, shape: { dim: [{ dimValue: Long.fromString('4611686018427387904') }, { dimParam: 'seq' }, { dimValue: Long.fromNumber(16) }] } } } }); return m; }, message: /'x' is declared with dimension ≈4\.612e\+18 \(2\^62\).*Use dim_param for a dynamic dimension/, names: ['x'] },
    { name: 'negative-declared-dim', what: 'an output declared with dim -3', make: () => { const m = attentionModel(); m.graph!.output = [vi('y', F32, [-3, 'seq', 16])]; return m; }, message: /'y' is declared with dimension -3/, names: ['y'] },
    { name: 'initializer-dim-2e62', what: 'an initializer with a 2^62 dim', make: () => { const m = attentionModel(); m.graph!.initializer![2]!.dims = [Long.fromString('4611686018427387904'), Long.fromNumber(16)]; return m; }, message: /initializer 'Wv': dims\[0\] is 4611686018427387904; a tensor dimension must be between 0 and 2\^40/, names: ['Wv'] },
    { name: 'raw-data-length', what: 'raw_data 1000 bytes for a [16, 16] float weight', make: () => { const m = attentionModel(); m.graph!.initializer![3]!.rawData = new Uint8Array(1000); return m; }, message: /initializer 'Wo': raw_data has 1000 bytes but dims \[16, 16\] of float32 need 1024/, names: ['Wo'] },
    { name: 'typed-data-count', what: 'float_data with 3 values for 256', make: () => { const m = attentionModel(); const t = m.graph!.initializer![0]!; delete (t as { rawData?: unknown }).rawData; t.floatData = [1, 2, 3]; return m; }, message: /initializer 'Wq': holds 3 value\(s\) in float_data \(and no raw_data\) but dims \[16, 16\] of float32 need 256/, names: ['Wq'] },
    { name: 'initializer-declared-shape', what: 'a [16, 16] weight also listed as a graph output declared [2, 8] (found by the fuzzer)', make: () => { const m = attentionModel(); m.graph!.output!.push(vi('Wo', F32, [2, 8])); return m; }, message: /initializer 'Wo' holds \[16, 16\] of float32, but it is declared \(graph input, output or value_info\) as \[2, 8\] of float32\. Fix the declaration or the initializer/, names: ['Wo'] },
    { name: 'unknown-dtype', what: 'data_type 99', make: () => { const m = attentionModel(); m.graph!.initializer![0]!.dataType = 99; return m; }, message: /initializer 'Wq': data_type 99 is not an ONNX element type/, names: ['Wq'] },

    // ---------------------------------------------------------------- external data
    { name: 'external-absolute', what: 'external data at /etc/passwd', make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wq') e.set('location', '/etc/passwd'); }); return m; }, message: /tensor 'Wq': external_data location '\/etc\/passwd' is an absolute path\. External data locations must be relative to the model's folder/, names: ['Wq'] },
    { name: 'external-dotdot', what: 'external data at ../weights.bin', make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wk') e.set('location', '../weights.bin'); }); return m; }, message: /tensor 'Wk': external_data location '\.\.\/weights\.bin' has a '\.\.' segment and would leave the model's folder/, names: ['Wk'] },
    {
      name: 'external-symlink-out',
      what: 'external data through a link to /etc',
      make: (dir) => {
        const m = attentionModel();
        symlinkSync('/etc', join(dir, 'etc-link'));
        externalize(m, dir, (t, e) => { if (t.name === 'Wv') e.set('location', 'etc-link/hostname'); });
        return m;
      },
      message: /tensor 'Wv': external_data location 'etc-link\/hostname' is a link that leads outside the model's folder/,
      names: ['Wv'],
    },
    { name: 'external-offset-past-end', what: 'offset 1 MiB into a 4 KiB file', make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wo') e.set('offset', '1048576'); }); return m; }, message: /tensor 'Wo': external data offset 1048576 \+ length 1024 passes the end of 'weights\.bin' \(4096 bytes\)/, names: ['Wo', 'weights.bin'] },
    { name: 'external-length-past-end', what: 'length 8 KiB from a 4 KiB file', make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wq') e.set('length', '8192'); }); return m; }, message: /tensor 'Wq': external data offset 0 \+ length 8192 passes the end of 'weights\.bin'/, names: ['Wq'] },
    { name: 'external-missing-file', what: 'a data file that is not there', make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wk') e.set('location', 'gone.bin'); }); return m; }, message: /tensor 'Wk': external_data location 'gone\.bin' does not exist \(looked for .*gone\.bin\)\. Put the data file beside the model/, names: ['Wk'] },
    { name: 'external-no-location', what: "external_data without 'location'", make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wv') e.delete('location'); }); return m; }, message: /tensor 'Wv': external_data has no 'location' entry/, names: ['Wv'] },
    { name: 'external-bad-offset', what: "offset '-12'", make: (dir) => { const m = attentionModel(); externalize(m, dir, (t, e) => { if (t.name === 'Wv') e.set('offset', '-12'); }); return m; }, message: /tensor 'Wv': external_data 'offset' is '-12', not a non-negative integer/, names: ['Wv'] },
  ];
  return list;
}

/**
 * The attention-like site whose mask has the wrong rank (5): a valid model (it runs), which `inspect` must
 * accept, listing the site as unproven with the mask rank as the reason (convert leaves it dense).
 */
export function maskRankFive(): ModelProto {
  const m = attentionModel({ mask: true });
  const g = m.graph!;
  g.input![1] = vi('mask', F32, [1, 'batch', 1, 1, 'seq']);
  // scores [B,H,S,T] + mask [1,B,1,1,T] → [1,B,H,S,T]; the rest of the block carries the extra axis
  nodeNamed(m, 'Transpose_ctx_t').attribute = [attrInts('perm', [0, 1, 3, 2, 4])];
  g.initializer![5] = int64Init('merge_shape', [0, 0, 0, 16]);
  g.node!.push(node('Squeeze', ['y_5d', 'axis0'], ['y'], { name: 'drop_axis0' }));
  nodeNamed(m, 'MatMul_y').output = ['y_5d'];
  g.initializer!.push(int64Init('axis0', [0]));
  g.valueInfo = [];
  return m;
}

export function buildCorpus(dir: string): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  for (const s of specs()) {
    const sub = join(dir, s.name);
    mkdirSync(sub, { recursive: true });
    const made = s.make(sub);
    let file: string;
    if (typeof made === 'string') file = made;
    else {
      file = join(sub, 'model.onnx');
      writeFileSync(file, made instanceof Uint8Array ? made : encode(made));
    }
    out.push({ name: s.name, what: s.what, file, exit: s.exit ?? 1, message: s.message, names: s.names ?? [] });
  }
  const sub = join(dir, 'attention-mask-rank-5');
  mkdirSync(sub, { recursive: true });
  const file = join(sub, 'model.onnx');
  writeFileSync(file, encode(maskRankFive()));
  out.push({ name: 'attention-mask-rank-5', what: 'an attention whose mask has rank 5 (valid, but not a provable attention site)', file, exit: 0, message: /attention\s+\d+ site\(s\)/, names: [] });
  void model;
  return out;
}
