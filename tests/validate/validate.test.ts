/**
 * The validator: each kind of broken graph is reported with its rule and a message that names the graph,
 * the node (op and name) or value, and the fix. Valid models give no diagnostics.
 */
import { describe, expect, it } from 'vitest';
import { Long, onnx, type GraphProto, type ModelProto, type NodeProto } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/load.js';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { assertValid, validateModel, type Diagnostic } from '../../src/validate/index.js';
import { AttnpassError } from '../../src/errors.js';
import { attentionModel, attrGraph, attrInt, attrInts, controlFlowModel, encode, F32, floatTensor, I64, int64Init, model, node, opset, vi } from '../onnx/models.js';

/** x [2, 4] → MatMul W [4, 3] → Softmax → y [2, 3] */
function base(): ModelProto {
  const g = onnx.GraphProto.create({
    name: 'main',
    node: [node('MatMul', ['x', 'W'], ['h'], { name: 'mm' }), node('Softmax', ['h'], ['y'], { name: 'sm', attribute: [attrInt('axis', -1)] })],
    initializer: [floatTensor('W', [4, 3], (i) => i / 10)],
    input: [vi('x', F32, [2, 4])],
    output: [vi('y', F32, [2, 3])],
  });
  return model(g);
}

function diagnose(m: ModelProto, infer = true): Diagnostic[] {
  const lifted = Model.lift(loadModel(encode(m)));
  if (infer) inferModel(lifted);
  return validateModel(lifted, { infer });
}

function g(m: ModelProto): GraphProto {
  return m.graph!;
}

const fnProto = (name: string, body: NodeProto[], extra: Partial<onnx.FunctionProto> = {}) =>
  onnx.FunctionProto.create({ name, domain: 'my.fn', input: ['a'], output: ['b'], node: body, opsetImport: [opset('', 17), opset('my.fn', 1)], ...extra });

/** x [1, 2, 4] → com.microsoft `op`(x, x, x) → h → `tail` (reading h and the initializer `w`) → y */
function afterFusedAttention(op: string, tail: NodeProto, w: onnx.TensorProto): ModelProto {
  const attention = node(op, ['x', 'x', 'x'], ['h'], { name: 'fused', domain: 'com.microsoft', attribute: [attrInt('num_heads', 2), attrInt('kv_num_heads', 2)] });
  const graph = onnx.GraphProto.create({ name: 'main', node: [attention, tail], initializer: [w], input: [vi('x', F32, [1, 2, 4])], output: [vi('y', F32, undefined)] });
  return model(graph, { opsetImport: [opset('', 17), opset('com.microsoft', 1)] });
}

interface Case {
  kind: string;
  make: () => ModelProto;
  rule: string;
  message: RegExp;
}

const cases: Case[] = [
  {
    kind: 'dangling input',
    make: () => {
      const m = base();
      g(m).node![1]!.input = ['h_missing'];
      return m;
    },
    rule: 'structure',
    message: /input 'h_missing' of Softmax 'sm' in graph 'main' is not produced by any node, graph input or initializer\. Add what makes it/,
  },
  {
    kind: 'two producers',
    make: () => {
      const m = base();
      g(m).node!.push(node('Relu', ['x'], ['h'], { name: 'relu_dup' }));
      return m;
    },
    rule: 'structure',
    message: /value 'h' is produced by Relu 'relu_dup' but also by MatMul 'mm'; every value must have a single producer\. Rename one/,
  },
  {
    kind: 'cycle',
    make: () => {
      const m = base();
      g(m).node![0]!.input = ['x', 'y2'];
      g(m).node!.push(node('Relu', ['y'], ['y2'], { name: 'back' }));
      return m;
    },
    rule: 'acyclic',
    message: /graph 'main' has a cycle: (MatMul 'mm'|Softmax 'sm'|Relu 'back') → .* → back to the first\. A graph must be acyclic/,
  },
  {
    kind: 'not topological',
    make: () => {
      const m = base();
      g(m).node!.reverse();
      return m;
    },
    rule: 'order',
    message: /graph 'main': Softmax 'sm' reads 'h' before MatMul 'mm' makes it; nodes must be in topological order/,
  },
  {
    kind: 'missing graph output',
    make: () => {
      const m = base();
      g(m).output!.push(vi('nothing', F32, [1]));
      return m;
    },
    rule: 'structure',
    message: /graph output 'nothing' of graph 'main' is not produced by any node, input or initializer\. Remove it from the outputs/,
  },
  {
    kind: 'graph without outputs',
    make: () => {
      const m = base();
      g(m).output = [];
      return m;
    },
    rule: 'outputs',
    message: /graph 'main' has no outputs; a graph must have at least one/,
  },
  {
    kind: 'output listed twice',
    make: () => {
      const m = base();
      g(m).output!.push(vi('y', F32, [2, 3]));
      return m;
    },
    rule: 'outputs',
    message: /graph 'main': output 'y' is listed twice/,
  },
  {
    kind: 'missing opset import',
    make: () => {
      const m = base();
      m.opsetImport = [opset('com.example', 1)];
      return m;
    },
    rule: 'opset',
    message: /imports no version of the default ONNX domain \(opset_import has no entry for ""\)\. Add one, e.g\. opset 17/,
  },
  {
    kind: 'domain used but not imported',
    make: () => {
      const m = base();
      g(m).node![1]!.domain = 'com.microsoft';
      g(m).node![1]!.opType = 'FastGelu';
      return m;
    },
    rule: 'opset',
    message: /com\.microsoft\.FastGelu 'sm' uses domain 'com\.microsoft', which the model does not import\. Add an opset_import entry/,
  },
  {
    kind: 'unknown default-domain op',
    make: () => {
      const m = base();
      g(m).node![1]!.opType = 'SoftMax';
      return m;
    },
    rule: 'unknown-op',
    message: /SoftMax 'sm': 'SoftMax' is not an operator of the default ONNX domain\. Check the op name/,
  },
  {
    kind: 'unknown op in ai.onnx.ml',
    make: () => {
      const m = base();
      m.opsetImport!.push(opset('ai.onnx.ml', 3));
      g(m).node![1]!.domain = 'ai.onnx.ml';
      g(m).node![1]!.opType = 'Softmax';
      return m;
    },
    rule: 'unknown-op',
    message: /'Softmax' is not an operator of the ai\.onnx\.ml domain/,
  },
  {
    kind: 'op newer than the imported opset',
    make: () => {
      const m = base();
      g(m).node![1]!.opType = 'Gelu';
      g(m).node![1]!.attribute = [];
      return m;
    },
    rule: 'opset',
    message: /Gelu 'sm': Gelu exists from opset 20, but the model imports opset 17\. Export with opset ≥ 20/,
  },
  {
    kind: 'custom op without function',
    make: () => {
      const m = base();
      m.opsetImport!.push(opset('ai.attnpass', 1));
      g(m).node![1]!.domain = 'ai.attnpass';
      g(m).node![1]!.opType = 'TiledAttention';
      return m;
    },
    rule: 'unknown-op',
    message: /ai\.attnpass\.TiledAttention 'sm': no model-local function defines ai\.attnpass\.TiledAttention, and no runtime implements that domain/,
  },
  {
    kind: 'recursive function',
    make: () => {
      const m = base();
      m.opsetImport!.push(opset('my.fn', 1));
      m.functions = [fnProto('Loopy', [node('Loopy', ['a'], ['b'], { domain: 'my.fn', name: 'self_call' })])];
      g(m).node![1] = node('Loopy', ['h'], ['y'], { domain: 'my.fn', name: 'call' });
      return m;
    },
    rule: 'recursion',
    message: /function my\.fn\.Loopy calls itself \(node my\.fn\.Loopy 'self_call'\); ONNX functions cannot be recursive/,
  },
  {
    kind: 'mutually recursive functions',
    make: () => {
      const m = base();
      m.opsetImport!.push(opset('my.fn', 1));
      m.functions = [fnProto('Ping', [node('Pong', ['a'], ['b'], { domain: 'my.fn', name: 'to_pong' })]), fnProto('Pong', [node('Ping', ['a'], ['b'], { domain: 'my.fn', name: 'to_ping' })])];
      g(m).node![1] = node('Ping', ['h'], ['y'], { domain: 'my.fn', name: 'call' });
      return m;
    },
    rule: 'recursion',
    message: /function my\.fn\.(Ping|Pong) is recursive: my\.fn\.(Ping|Pong) → my\.fn\.(Ping|Pong) → my\.fn\.(Ping|Pong)/,
  },
  {
    kind: 'function without a default-domain import',
    make: () => {
      const m = base();
      m.opsetImport!.push(opset('my.fn', 1));
      m.functions = [fnProto('Twice', [node('Add', ['a', 'a'], ['b'], { name: 'add' })], { opsetImport: [] })];
      g(m).node![1] = node('Twice', ['h'], ['y'], { domain: 'my.fn', name: 'call' });
      return m;
    },
    rule: 'function',
    message: /function my\.fn\.Twice uses default-domain ops but its opset_import has no entry for ""/,
  },
  {
    kind: 'type disagreement',
    make: () => {
      const m = base();
      g(m).initializer = [int64Init('W', Array.from({ length: 12 }, (_, i) => i), [4, 3])];
      return m;
    },
    rule: 'types',
    message: /MatMul 'mm': inputs have different element types \('x': float32, 'W': int64\); MatMul needs them equal\. Insert a Cast/,
  },
  {
    // found by the fuzzer: unknown before, the clash surfaced only once a rewrite replaced the fused op
    kind: 'type disagreement after a fused com.microsoft attention',
    make: () => afterFusedAttention('MultiHeadAttention', node('MatMul', ['h', 'W'], ['y'], { name: 'mm' }), int64Init('W', Array.from({ length: 12 }, (_, i) => i), [4, 3])),
    rule: 'types',
    message: /MatMul 'mm': inputs have different element types \('h': float32, 'W': int64\)/,
  },
  {
    // found by the fuzzer: GroupQueryAttention keeps the query's shape, so h is [1, 2, 4]
    kind: 'shape disagreement after a fused com.microsoft attention',
    make: () => afterFusedAttention('GroupQueryAttention', node('Add', ['h', 'W'], ['y'], { name: 'add' }), floatTensor('W', [2, 3], () => 0)),
    rule: 'shapes',
    message: /Add 'add': input shapes 'h' \[1, 2, 4\] and 'W' \[2, 3\] cannot be broadcast together/,
  },
  {
    // found by the fuzzer: the declaration replaced the weight's type, and shapes lied downstream
    kind: 'an initializer declared with another shape',
    make: () => {
      const m = base();
      g(m).output!.push(vi('W', F32, [2, 'n']));
      return m;
    },
    rule: 'types',
    message: /initializer 'W' holds \[4, 3\] of float32, but it is declared \(graph input, output or value_info\) as \[2, n\] of float32/,
  },
  {
    // found by the fuzzer: a past_key input of element type 31 went unnoticed until a rewrite concatenated it
    kind: 'a graph input of an element type ONNX does not define',
    make: () => {
      const m = base();
      g(m).input = [vi('x', 31, [2, 4])];
      return m;
    },
    rule: 'types',
    message: /graph input 'x' is declared with element type 31, which ONNX does not define\. Fix its declared type/,
  },
  {
    // found by the fuzzer: the unchecked axis made inference build a 2^31-long shape array (a hang)
    kind: 'a Concat axis out of range',
    make: () => {
      const m = base();
      g(m).node!.push(node('Concat', ['y', 'y'], ['z'], { name: 'cat', attribute: [attrInt('axis', 2 ** 31 - 1)] }));
      g(m).output = [vi('z', F32, undefined)];
      return m;
    },
    rule: 'shapes',
    message: /Concat 'cat': axis 2147483647 is out of range for its rank-2 input\. Use an axis in \[-2, 1\]/,
  },
  {
    kind: 'declared output type contradicts the op',
    make: () => {
      const m = base();
      g(m).output = [vi('y', I64, [2, 3])];
      return m;
    },
    rule: 'types',
    message: /Softmax 'sm': output 'y' is declared int64, but Softmax of float32 makes float32/,
  },
  {
    kind: 'duplicate node names',
    make: () => {
      const m = base();
      g(m).node![1]!.name = 'mm';
      return m;
    },
    rule: 'names',
    message: /graph 'main': two nodes are named 'mm'; node names must be unique/,
  },
  {
    kind: 'attribute ref outside function',
    make: () => {
      const m = base();
      g(m).node![1]!.attribute = [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, refAttrName: 'ax' })];
      return m;
    },
    rule: 'attribute',
    message: /Softmax 'sm': attribute 'axis' refers to a function attribute \('ax'\) outside a function body/,
  },
  {
    kind: 'MatMul inner dimensions differ',
    make: () => {
      const m = base();
      g(m).initializer = [floatTensor('W', [5, 3], () => 0)];
      return m;
    },
    rule: 'shapes',
    message: /MatMul 'mm': 'x' \[2, 4\] times 'W' \[5, 3\]: the inner dimensions 4 and 5 differ/,
  },
  {
    kind: 'shapes that cannot broadcast',
    make: () => {
      const m = base();
      g(m).node!.splice(1, 0, node('Add', ['h', 'bias'], ['h2'], { name: 'add' }));
      g(m).node![2]!.input = ['h2'];
      g(m).initializer!.push(floatTensor('bias', [4], () => 0));
      return m;
    },
    rule: 'shapes',
    message: /Add 'add': input shapes 'h' \[2, 3\] and 'bias' \[4\] cannot be broadcast together/,
  },
  {
    kind: 'Softmax axis out of range',
    make: () => {
      const m = base();
      g(m).node![1]!.attribute = [attrInt('axis', 3)];
      return m;
    },
    rule: 'shapes',
    message: /Softmax 'sm': axis 3 is out of range for its rank-2 input/,
  },
  {
    kind: 'Transpose perm not a permutation',
    make: () => {
      const m = base();
      g(m).node!.splice(1, 0, node('Transpose', ['h'], ['ht'], { name: 'tr', attribute: [attrInts('perm', [0, 2, 1])] }));
      g(m).node![2]!.input = ['ht'];
      return m;
    },
    rule: 'shapes',
    message: /Transpose 'tr': perm \[0, 2, 1\] is not a permutation of the 2 axes of its input \[2, 3\]/,
  },
  {
    kind: 'Reshape to a shape of another size',
    make: () => {
      const m = base();
      g(m).node!.splice(1, 0, node('Reshape', ['h', 'shape'], ['hr'], { name: 'rs' }));
      g(m).node![2]!.input = ['hr'];
      g(m).initializer!.push(int64Init('shape', [2, 2, 2]));
      return m;
    },
    rule: 'shapes',
    message: /Reshape 'rs': cannot reshape \[2, 3\] \(6 elements\) to \[2, 2, 2\]/,
  },
  {
    kind: 'wrong number of inputs',
    make: () => {
      const m = base();
      g(m).node![0]!.input = ['x'];
      return m;
    },
    rule: 'arity',
    message: /MatMul 'mm' has 1 input\(s\); MatMul takes 2\. Fix the node's inputs/,
  },
  {
    kind: 'node without op_type',
    make: () => {
      const m = base();
      delete (g(m).node![1] as { opType?: string }).opType;
      return m;
    },
    rule: 'unknown-op',
    message: /graph 'main': \(no op_type\) 'sm' has no op_type\. Every node names its operator/,
  },
  {
    kind: 'raw_data length does not match dims',
    make: () => {
      const m = base();
      g(m).initializer![0]!.rawData = new Uint8Array(40);
      return m;
    },
    rule: 'tensor',
    message: /initializer 'W': raw_data has 40 bytes but dims \[4, 3\] of float32 need 48/,
  },
  {
    kind: 'negative tensor dim',
    make: () => {
      const m = base();
      g(m).initializer![0]!.dims = [Long.fromNumber(-4), Long.fromNumber(3)];
      return m;
    },
    rule: 'tensor',
    message: /initializer 'W': dims\[0\] is -4; a tensor dimension must be between 0 and 2\^40/,
  },
  {
    kind: 'absurd declared dim (2^62)',
    make: () => {
      const m = base();
      g(m).input = [
        onnx.ValueInfoProto.create({
          name: 'x',
          type: { tensorType: { elemType: F32, shape: { dim: [{ dimValue: Long.fromString('4611686018427387904') }, { dimValue: Long.fromNumber(4) }] } } },
        }),
      ];
      return m;
    },
    rule: 'shapes',
    message: /'x' is declared with dimension ≈4\.612e\+18 \(2\^62\).*a dimension must be between 0 and 2\^40\. Use dim_param for a dynamic dimension/,
  },
  {
    kind: 'unknown element type',
    make: () => {
      const m = base();
      g(m).initializer![0]!.dataType = 99;
      return m;
    },
    rule: 'tensor',
    message: /initializer 'W': data_type 99 is not an ONNX element type/,
  },
  {
    kind: 'subgraph with a dangling reference',
    make: () => {
      const m = controlFlowModel();
      m.graph!.node![2]!.attribute![0]!.g!.node![0]!.input = ['x', 'ghost'];
      return m;
    },
    rule: 'structure',
    message: /input 'ghost' of Add 'Add_t_out' in graph 'then_g' is not produced by any node, graph input or initializer/,
  },
  {
    kind: 'impossible opset version',
    make: () => {
      const m = base();
      m.opsetImport = [opset('', 1000000)];
      return m;
    },
    rule: 'structure',
    message: /imports domain 'ai\.onnx' at version 1000000, which no opset has/,
  },
];

describe('each kind of broken graph is reported', () => {
  it.each(cases)('$kind', ({ make, rule, message }) => {
    const found = diagnose(make());
    const hit = found.find((d) => d.rule === rule && message.test(d.message));
    expect(hit, `wanted rule ${rule} ${message}; got:\n${found.map((d) => `${d.rule}: ${d.message}`).join('\n')}`).toBeDefined();
  });

  it(`covers at least 10 kinds (has ${cases.length})`, () => {
    expect(new Set(cases.map((c) => c.rule)).size).toBeGreaterThanOrEqual(10);
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });
});

describe('valid models', () => {
  for (const [name, make] of [['base', base], ['attention', () => attentionModel({ mask: true })], ['control flow + function', controlFlowModel]] as const) {
    it(`${name}: no diagnostics, before and after inference`, () => {
      expect(diagnose(make(), false)).toEqual([]);
      expect(diagnose(make(), true)).toEqual([]);
    });
  }

  it('a function body may use attribute references', () => {
    const m = base();
    m.opsetImport!.push(opset('my.fn', 1));
    m.functions = [
      fnProto('Soft', [node('Softmax', ['a'], ['b'], { name: 'inner', attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, refAttrName: 'ax' })] })], { attribute: ['ax'] }),
    ];
    g(m).node![1] = node('Soft', ['h'], ['y'], { domain: 'my.fn', name: 'call', attribute: [attrInt('ax', -1)] });
    expect(diagnose(m)).toEqual([]);
  });

  it('ops ONNX Runtime adds to the default domain (SimplifiedLayerNormalization) are accepted', () => {
    const m = base();
    g(m).node![1] = node('SimplifiedLayerNormalization', ['h', 'scale'], ['y'], { name: 'sln' });
    g(m).initializer!.push(floatTensor('scale', [3], () => 1));
    expect(diagnose(m).filter((d) => d.rule === 'unknown-op')).toEqual([]);
  });
});

describe('validation infers first (callers need not)', () => {
  it('a contradiction only inference reveals is found by default and not with { infer: false }', () => {
    const m = base();
    g(m).initializer = [floatTensor('W', [5, 3], () => 0)];
    g(m).input = [vi('x', F32, [2, 4])];
    const lifted = () => Model.lift(loadModel(encode(m)));
    expect(validateModel(lifted()).some((d) => d.rule === 'shapes')).toBe(true);
    // MatMul's inputs are declared, so even without inference this one is seen; a Softmax output is not:
    const p = base();
    g(p).node!.push(node('Transpose', ['y', ], ['yt'], { name: 'tr', attribute: [attrInts('perm', [0, 1, 2])] }));
    g(p).output = [vi('yt', F32, [3, 2])];
    const noInfer = validateModel(Model.lift(loadModel(encode(p))), { infer: false });
    const withInfer = validateModel(Model.lift(loadModel(encode(p))));
    expect(noInfer.some((d) => d.rule === 'shapes')).toBe(false);
    expect(withInfer.some((d) => d.rule === 'shapes' && /perm \[0, 1, 2\] is not a permutation of the 2 axes/.test(d.message))).toBe(true);
  });
});

describe('assertValid', () => {
  it('throws one AttnpassError listing every problem, with the context', () => {
    const m = base();
    g(m).node![0]!.input = ['x'];
    g(m).node![1]!.opType = 'SoftMax';
    const lifted = Model.lift(loadModel(encode(m)));
    try {
      assertValid(lifted, { context: 'model.onnx' });
      expect.fail('should throw');
    } catch (err) {
      expect(err).toBeInstanceOf(AttnpassError);
      expect((err as AttnpassError).code).toBe('invalid-model');
      expect((err as Error).message).toMatch(/^model\.onnx: the model is not valid \(2 problems\):\n- .*MatMul 'mm' has 1 input\(s\).*\n- .*'SoftMax' is not an operator/);
    }
  });

  it('the IR built in memory is checked too (outputs nobody makes)', () => {
    const lifted = Model.lift(loadModel(encode(base())));
    const v = lifted.graph.createValue('floating');
    lifted.graph.outputs.push(v);
    expect(validateModel(lifted).map((d) => d.message)).toContain(`graph 'main': output 'floating' is not produced by any node. Remove it or add the node that makes it.`);
  });

  it('subgraphs are checked with a label that says where they sit', () => {
    const m = controlFlowModel();
    const body = m.graph!.node![2]!.attribute![1]!.g!;
    body.node![0]!.opType = 'Mull';
    const found = diagnose(m);
    expect(found.map((d) => d.message).join('\n')).toMatch(/graph 'cf' › subgraph 'else_g' of If 'If_branch': Mull 'Mul_e_out': 'Mull' is not an operator/);
    void attrGraph;
  });
});
