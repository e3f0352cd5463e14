/** The pattern layer: operands bound by name, commutative ops, optional links, constants, and failure reasons. */
import { describe, expect, it } from 'vitest';
import { Model } from '../../src/ir/model.js';
import { inferModel } from '../../src/ir/infer.js';
import { capture, constant, either, explain, match, matchAll, op, optional, scalar, through, value, where } from '../../src/pattern/index.js';
import { G, F32 } from '../detect/graphs.js';

/** scores = Div(MatMul(q, Transpose(k)), 4) + mask; the graph's values by name. */
function graph(opts: { perm?: number[]; swapAdd?: boolean; cast?: boolean; divisor?: 'const' | 'input' } = {}) {
  const g = new G();
  const q = g.input('q', F32, ['b', 2, 's', 8]);
  const k = g.input('k', F32, ['b', 2, 's', 8]);
  const mask = g.input('mask', F32, ['b', 1, 1, 's']);
  const kt = g.op('Transpose', [k], { perm: opts.perm ?? [0, 1, 3, 2] });
  let mm = g.op('MatMul', [q, kt]);
  if (opts.cast) mm = g.op('Cast', [g.op('Identity', [mm])], { to: F32 });
  const d = opts.divisor === 'input' ? g.input('d', F32, []) : g.f32([4]);
  const div = g.op('Div', [mm, d]);
  const add = g.op('Add', opts.swapAdd ? [mask, div] : [div, mask]);
  g.output(add, F32, ['b', 2, 's', 's']);
  const model = Model.lift(g.model());
  inferModel(model);
  return { model, out: model.graph.lookup(add)! };
}

const qk = op('MatMul', [value('q'), op('Transpose', [value('k')], { attrs: { perm: [0, 1, 3, 2] }, name: 'kt' })], { name: 'qk' });
const scaled = op('Div', [through(['Cast', 'Identity'], qk), scalar('divisor', { check: (v) => (v[0]! > 0 ? true : 'not positive') })]);
const scores = op('Add', [scaled, value('mask')], { commutative: true, name: 'add' });

describe('match', () => {
  it('binds operands, nodes and constants by name', () => {
    const { model, out } = graph();
    const r = match(scores, out);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const b = r.bindings;
    expect(b.value('q').name).toBe('q');
    expect(b.value('k').name).toBe('k');
    expect(b.value('mask').name).toBe('mask');
    expect(b.data<number>('divisor')).toBe(4);
    expect(b.node('kt').opType).toBe('Transpose');
    expect(b.matched.map((n) => n.opType)).toEqual(['Add', 'Div', 'MatMul', 'Transpose']);
    expect(model.graph.nodes.length).toBe(4); // matching never mutates
  });

  it('tries both operand orders of a commutative op', () => {
    expect(match(scores, graph({ swapAdd: true }).out).ok).toBe(true);
  });

  it('absorbs optional Cast/Identity links', () => {
    const r = match(scores, graph({ cast: true }).out);
    expect(r.ok && r.bindings.matched.map((n) => n.opType)).toEqual(['Add', 'Div', 'Cast', 'Identity', 'MatMul', 'Transpose']);
  });

  it('explains the deepest failing link: a wrong perm', () => {
    const r = match(scores, graph({ perm: [0, 2, 1, 3] }).out);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failure.node?.opType).toBe('Transpose');
    expect(explain(r.failure)).toMatch(/attribute 'perm' is \[0,2,1,3\], expected \[0,1,3,2\]/);
  });

  it('explains a constant that is not one', () => {
    const r = match(scores, graph({ divisor: 'input' }).out);
    expect(!r.ok && explain(r.failure)).toMatch(/'d' is not a constant/);
  });

  it('checks constraints over what was bound', () => {
    const sameHeads = where(scores, (b) => (b.value('q').shape?.[1] === b.value('k').shape?.[1] ? true : 'q and k head counts differ'), 'heads agree');
    expect(match(sameHeads, graph().out).ok).toBe(true);
    const never = where(scores, () => 'refused', 'never');
    const r = match(never, graph().out);
    expect(!r.ok && r.failure.reason).toBe('refused');
  });

  it('a name bound twice must be the same value', () => {
    const g = new G();
    const x = g.input('x', F32, [4]);
    const y = g.input('y', F32, [4]);
    const same = g.op('Mul', [x, x]);
    const diff = g.op('Mul', [x, y]);
    g.output(same, F32, [4]);
    g.output(diff, F32, [4]);
    const m = Model.lift(g.model());
    const square = op('Mul', [value('a'), value('a')]);
    expect(match(square, m.graph.lookup(same)).ok).toBe(true);
    const r = match(square, m.graph.lookup(diff));
    expect(!r.ok && r.failure.reason).toMatch(/already bound/);
  });

  it('either, optional, capture and matchAll', () => {
    const { out } = graph();
    const scale = either(op('Mul', [value('x'), constant('c')], { commutative: true }), op('Div', [value('x'), constant('c')]));
    const p = op('Add', [capture('scaled', scale), value('m')], { commutative: true });
    const r = match(p, out);
    expect(r.ok && r.bindings.value('scaled').producer?.opType).toBe('Div');
    expect(matchAll(op('Add', [value('a'), value('b')], { commutative: true }), out)).toHaveLength(2);
    const maybeCast = optional((x) => op('Cast', [x]), value('raw'));
    expect(match(maybeCast, out).ok).toBe(true);
  });

  it('rejects nodes with extra inputs unless allowed, and checks the output index', () => {
    const g = new G();
    const x = g.input('x', F32, [6]);
    const [a, b2] = g.ops('Split', [x], { axis: 0 }, { outputs: 2 });
    g.output(b2!, F32, [3]);
    const m = Model.lift(g.model());
    void a;
    expect(match(op('Split', [value()], { output: 1 }), m.graph.lookup(b2!)).ok).toBe(true);
    const r = match(op('Split', [value()]), m.graph.lookup(b2!));
    expect(!r.ok && r.failure.reason).toMatch(/output 1 .*not output 0/);
  });
});
