/**
 * The IR: use-def links after lift, mutation through the Graph methods, topological order, and that a
 * mutated model lowers to one onnxruntime runs with the expected result.
 */
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/load.js';
import { encodeModel } from '../../src/onnx/save.js';
import { Model } from '../../src/ir/model.js';
import { topologicalOrder } from '../../src/ir/graph.js';
import { inferModel } from '../../src/ir/infer.js';
import { validateModel } from '../../src/validate/index.js';
import { AttnpassError } from '../../src/errors.js';
import { Long, onnx, type ModelProto, type NodeProto } from '../../src/onnx/codec.js';
import { float32Tensor } from '../../src/onnx/tensor.js';
import { attentionModel, controlFlowModel, encode, floatFeed, maxAbsDiff, ort, rng, runModel } from '../onnx/models.js';

const lift = (m: ModelProto) => Model.lift(loadModel(encode(m)));

describe('lift', () => {
  it('links producers and uses both ways', () => {
    const m = lift(attentionModel({ mask: true }));
    const probs = m.graph.lookup('probs')!;
    expect(probs.producer!.opType).toBe('Softmax');
    expect(probs.uses().map((u) => [u.node.opType, u.index])).toEqual([['MatMul', 0]]);
    const x = m.graph.lookup('x')!;
    expect(x.isGraphInput).toBe(true);
    expect(x.consumers().map((n) => n.opType)).toEqual(['MatMul', 'MatMul', 'MatMul']);
    expect(m.graph.lookup('Wq')!.isConstant).toBe(true);
    expect(m.issues).toEqual([]);
  });

  it('subgraph nodes reading outer values are uses of the outer value and implicit inputs of the If', () => {
    const m = lift(controlFlowModel());
    const x = m.graph.lookup('x')!;
    const ifNode = m.graph.nodes.find((n) => n.opType === 'If')!;
    expect(x.uses().filter((u) => u.node.graph !== m.graph).map((u) => u.node.opType).sort()).toEqual(['Add', 'Add', 'Mul', 'Mul']);
    expect(ifNode.implicitInputs()).toEqual([x]);
    expect([...m.graph.allNodes()].map((n) => n.opType)).toEqual(['ReduceSum', 'Greater', 'If', 'Add', 'Mul', 'Twice']);
    expect(m.functions[0]!.body.nodes[0]!.opType).toBe('Add');
  });

  it('names are unique across the model: new values never collide with subgraph names', () => {
    const m = lift(controlFlowModel());
    const v = m.graph.createValue('t_out');
    expect(v.name).not.toBe('t_out');
  });
});

describe('mutation keeps the links true', () => {
  it('replaceAllUsesWith redirects every use, refuses a graph output unless asked', () => {
    const m = lift(attentionModel());
    const g = m.graph;
    const scaled = g.lookup('scaled')!;
    const id = g.addNode({ opType: 'Identity', inputs: [scaled], name: 'probe', before: g.nodes.find((n) => n.opType === 'Softmax') });
    const out = id.output();
    for (const u of scaled.uses()) if (u.node !== id) u.node.setInput(u.index, out);
    expect(scaled.consumers().map((n) => n.name)).toEqual(['probe']);
    expect(out.consumers().map((n) => n.opType)).toEqual(['Softmax']);
    const y = g.lookup('y')!;
    expect(() => g.replaceAllUsesWith(y, out)).toThrow(AttnpassError);
    expect(() => g.replaceAllUsesWith(y, out)).toThrow(/is an output of graph/);
  });

  it('removeNodes checks everything before changing anything', () => {
    const m = lift(attentionModel());
    const g = m.graph;
    const softmax = g.nodes.find((n) => n.opType === 'Softmax')!;
    const before = g.nodes.length;
    expect(() => g.removeNodes([softmax])).toThrow(/its output 'probs' is still used by MatMul/);
    expect(g.nodes.length).toBe(before);
    expect(g.lookup('scaled')!.consumers()).toContain(softmax);
  });

  it('an attention rewritten by hand (Softmax → Identity chain) lowers to a valid model with equal outputs', async () => {
    const original = attentionModel({ seed: 4 });
    const m = lift(original);
    const g = m.graph;
    const softmax = g.nodes.find((n) => n.opType === 'Softmax')!;
    // insert Mul(scaled, 1.0) before the softmax and route the softmax through it
    const one = g.addInitializer(float32Tensor('one', [], [1]));
    const mul = g.addNode({ opType: 'Mul', inputs: [softmax.input(0), one], name: 'times_one', before: softmax, metadata: { 'attnpass.rule': 'test' } });
    softmax.setInput(0, mul.output());
    expect(validateModel(m)).toEqual([]);
    const { Tensor } = await ort();
    const x = new Tensor('float32', floatFeed(rng(1), [2, 7, 16]), [2, 7, 16]);
    const a = await runModel(encode(original), { x });
    const b = await runModel(encodeModel(m.lower()), { x });
    expect(maxAbsDiff(a.y!, b.y!)).toBe(0);
    // and a second lift of the lowered model sees the same structure
    const again = Model.lift(loadModel(encodeModel(m.lower())));
    expect(again.graph.nodes.map((n) => n.name)).toEqual(g.nodes.map((n) => n.name));
    expect(again.graph.nodes.find((n) => n.name === 'times_one')!.proto.metadataProps).toEqual([{ key: 'attnpass.rule', value: 'test' }]);
  });

  it('removing a node and its now-unused initializer', () => {
    const m = lift(attentionModel());
    const g = m.graph;
    const div = g.nodes.find((n) => n.opType === 'Div')!;
    const sqrt = div.input(1).producer!;
    g.replaceAllUsesWith(div.output(), div.input(0));
    g.removeNodes([div, sqrt]);
    expect(g.nodes.some((n) => n.opType === 'Div' || n.opType === 'Constant')).toBe(false);
    expect(validateModel(m)).toEqual([]);
    const lowered = m.lower();
    expect(lowered.graph!.node!.map((n) => n.opType)).not.toContain('Div');
  });
});

describe('topological order', () => {
  it('re-sorts a reversed graph stably', () => {
    const bytes = attentionModel();
    bytes.graph!.node!.reverse();
    const m = lift(bytes);
    expect(validateModel(m).some((d) => d.rule === 'order')).toBe(true);
    m.graph.topologicalSort();
    expect(validateModel(m)).toEqual([]);
    expect(m.graph.nodes[0]!.opType).toBe('Constant');
  });

  it('reports the cycle in order', () => {
    const p = attentionModel();
    p.graph!.node![0]!.input = ['x', 'y'];
    const m = lift(p);
    const order = topologicalOrder(m.graph);
    expect(order.ok).toBe(false);
    if (!order.ok) expect(order.cycle.map((n) => n.opType)).toContain('MatMul');
    expect(() => m.graph.topologicalSort()).toThrow(/has a cycle through/);
  });

  it('sorts 20,000 nodes quickly', () => {
    const nodes: NodeProto[] = [];
    for (let i = 0; i < 20_000; i++) nodes.push(onnx.NodeProto.create({ opType: 'Relu', input: [i === 0 ? 'x' : `v${i - 1}`], output: [`v${i}`], name: `n${i}` }));
    nodes.reverse();
    const g = onnx.GraphProto.create({ name: 'chain', node: nodes, input: [{ name: 'x' }], output: [{ name: 'v19999' }] });
    const m = lift(onnx.ModelProto.create({ irVersion: Long.fromNumber(8), opsetImport: [{ domain: '', version: Long.fromNumber(17) }], graph: g }));
    const t0 = performance.now();
    m.graph.topologicalSort();
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(m.graph.nodes[0]!.name).toBe('n0');
  });
});

describe('inference', () => {
  it('fills attention shapes symbolically', () => {
    const m = lift(attentionModel({ mask: true }));
    inferModel(m);
    expect(m.graph.lookup('qh')!.shape).toEqual(['batch', 2, 'seq', 8]);
    expect(m.graph.lookup('kt')!.shape).toEqual(['batch', 2, 8, 'seq']);
    expect(m.graph.lookup('scores')!.shape).toEqual(['batch', 2, 'seq', 'seq']);
    expect(m.graph.lookup('merged')!.shape).toEqual(['batch', 'seq', 16]);
  });

  it('never believes absurd sizes from damaged shape tensors', () => {
    const p = attentionModel();
    p.graph!.node!.push(onnx.NodeProto.create({ opType: 'ConstantOfShape', input: ['big_shape'], output: ['zeros'], name: 'cos' }));
    p.graph!.initializer!.push(onnx.TensorProto.create({ name: 'big_shape', dims: [Long.fromNumber(1)], dataType: 7, rawData: new Uint8Array(new BigInt64Array([2n ** 40n]).buffer) }));
    const m = lift(p);
    const t0 = performance.now();
    inferModel(m);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
