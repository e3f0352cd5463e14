/**
 * The operator registry of domain `ai.attnpass`: for each operator its schema (inputs, outputs,
 * attributes with defaults and ranges), shape/type inference, attribute validation, the TypeScript
 * reference implementation and the model-local ONNX function body. kernels/OPERATORS.md is the
 * normative text; everything here computes exactly what it says.
 */
import { AttnpassError, fail } from '../src/errors.js';
import type { Dim, TensorType } from '../src/ir/graph.js';
import { AttributeType, DataType, toNumber, type AttributeProto, type FunctionProto } from '../src/onnx/codec.js';
import { elementType } from '../src/onnx/dtype.js';
import { blockSparseBody } from './functions/block-sparse.js';
import { defaultAttribute, functionProto, type BodyBuilder, type BodyTarget } from './functions/builder.js';
import { spanBody } from './functions/span.js';
import { tiledBody } from './functions/tiled.js';
import { blockSparseAttention, type BlockSparseAttributes, type BlockSparseResult } from './reference/block-sparse.js';
import type { AttentionInputs } from './reference/common.js';
import { spanAttention, type SpanAttributes, type SpanInputs, type SpanResult } from './reference/span.js';
import { tiledAttention, type TiledAttributes, type TiledInputs, type TiledResult } from './reference/tiled.js';

export const ATTNPASS_DOMAIN = 'ai.attnpass';
export const ATTNPASS_VERSION = 1;
/** Default-domain opset the function bodies import unless a caller asks for a newer one. */
export const FUNCTION_OPSET = 18;

const FLOAT_TYPES = [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16] as const;
const INT64_ONLY = [DataType.INT64] as const;

export interface InputSpec {
  name: string;
  optional: boolean;
  /** allowed element types (ONNX DataType codes) */
  types: readonly number[];
  /** allowed ranks */
  ranks: readonly number[];
  doc: string;
}

export type OutputSpec = InputSpec;

export interface AttributeSpec {
  name: string;
  type: 'int' | 'float';
  default: number;
  /** the valid range, as text */
  range: string;
  doc: string;
  /** an error message when `value` (with all attributes resolved) is out of range */
  check(value: number, all: Readonly<Record<string, number>>): string | undefined;
}

/** Attributes as plain numbers by name, or as the AttributeProtos of a node. */
export type AttributeInput = Readonly<Record<string, number>> | Iterable<AttributeProto> | ReadonlyMap<string, AttributeProto>;

export interface OperatorSpec<In = unknown, Out = unknown, Attrs = Record<string, number>> {
  readonly name: string;
  readonly domain: string;
  readonly version: number;
  readonly doc: string;
  readonly inputs: readonly InputSpec[];
  readonly outputs: readonly OutputSpec[];
  readonly attributes: readonly AttributeSpec[];
  /** Output types from input types (undefined = unknown or omitted); throws on a definite conflict. */
  inferTypes(inputTypes: ReadonlyArray<TensorType | undefined>, attrs?: AttributeInput): TensorType[];
  /** One message per problem, each naming the attribute and the fix; empty when valid. */
  validateAttributes(attrs?: AttributeInput): string[];
  /** Attributes with defaults filled in and floats rounded to float32, as a model would hold them. */
  resolveAttributes(attrs?: AttributeInput): Attrs;
  /** The reference implementation (float64). */
  reference(inputs: In, attrs?: AttributeInput): Out;
  /**
   * The model-local ONNX function (standard ops of the default domain at `opset`, ≥ 18). A call site
   * must list every output slot ('' for an unused one): ONNX Runtime 1.30 cannot inline a function
   * whose node has fewer outputs than the function.
   */
  /** the model-local function, written for a model whose default opset is `opset` (13+) and whose Q has `elemType` */
  buildFunction(opset?: number, elemType?: number): FunctionProto;
}

// ---- attributes -----------------------------------------------------------------------------

const isInt = (v: number) => Number.isInteger(v) && Math.abs(v) <= 2 ** 31 - 1;

function intAttr(name: string, dflt: number, range: string, doc: string, ok: (v: number, all: Readonly<Record<string, number>>) => boolean, fix: string): AttributeSpec {
  return {
    name,
    type: 'int',
    default: dflt,
    range,
    doc,
    check: (v, all) => (!isInt(v) ? `attribute '${name}' must be an integer (int32); got ${v}.` : ok(v, all) ? undefined : `attribute '${name}' is ${v}; it must be ${range}. ${fix}`),
  };
}

function floatAttr(name: string, dflt: number, range: string, doc: string, ok: (v: number, all: Readonly<Record<string, number>>) => boolean, fix: string): AttributeSpec {
  return {
    name,
    type: 'float',
    default: dflt,
    range,
    doc,
    check: (v, all) => (!Number.isFinite(v) ? `attribute '${name}' must be a finite number; got ${v}.` : ok(v, all) ? undefined : `attribute '${name}' is ${v}; it must be ${range}. ${fix}`),
  };
}

const isPow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;
const blockSize = intAttr('block_size', 64, 'a power of two in 16…256', 'tokens per key/query block', (v) => isPow2(v) && v >= 16 && v <= 256, 'Use 16, 32, 64, 128 or 256.');
const scale = floatAttr('scale', 0, 'finite (0 means 1/√D)', 'logit scale; 0 means 1/sqrt(D)', () => true, '');
const causal = intAttr('causal', 0, '0 or 1', 'query i at position T − S + i sees keys at positions ≤ its own', (v) => v === 0 || v === 1, 'Use 1 for causal attention, 0 otherwise.');
const nonNegative = (name: string, dflt: number, doc: string) => intAttr(name, dflt, '≥ 0', doc, (v) => v >= 0, `Use 0 to disable.`);

function attributeValues(attrs: AttributeInput | undefined, op: string, specs: readonly AttributeSpec[], errors: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (!attrs) return out;
  const protos: Iterable<AttributeProto> | undefined =
    attrs instanceof Map ? attrs.values() : Symbol.iterator in attrs ? (attrs as Iterable<AttributeProto>) : undefined;
  if (!protos) {
    Object.assign(out, attrs);
    return out;
  }
  for (const a of protos) {
    const name = a.name ?? '';
    const spec = specs.find((s) => s.name === name);
    const isFloatProto = a.type === AttributeType.FLOAT || (a.type == null && a.f != null && a.i == null);
    const isIntProto = a.type === AttributeType.INT || (a.type == null && a.i != null);
    if (spec && spec.type === 'int' && !isIntProto) errors.push(`${op}: attribute '${name}' must be an INT attribute; this one is not. Write it as an integer.`);
    else if (spec && spec.type === 'float' && !isFloatProto) errors.push(`${op}: attribute '${name}' must be a FLOAT attribute; this one is not. Write it as a float.`);
    out[name] = isIntProto ? toNumber(a.i ?? 0) : (a.f ?? 0);
  }
  return out;
}

function validate(op: string, specs: readonly AttributeSpec[], attrs: AttributeInput | undefined): { values: Record<string, number>; errors: string[] } {
  const errors: string[] = [];
  const given = attributeValues(attrs, op, specs, errors);
  for (const name of Object.keys(given)) {
    if (!specs.some((s) => s.name === name)) errors.push(`${op}: unknown attribute '${name}'. Known attributes: ${specs.map((s) => s.name).join(', ')}.`);
  }
  const values: Record<string, number> = {};
  for (const s of specs) {
    const v = given[s.name] ?? s.default;
    values[s.name] = s.type === 'float' ? Math.fround(v) : v;
  }
  for (const s of specs) {
    if (!(s.name in given)) continue;
    const msg = s.check(values[s.name]!, values);
    if (msg) errors.push(`${op}: ${msg}`);
  }
  return { values, errors };
}

// ---- types ------------------------------------------------------------------------------------

function typeName(code: number): string {
  return elementType(code).name;
}

function inferAttention(op: string, specs: readonly InputSpec[], types: ReadonlyArray<TensorType | undefined>): { elemType: number; B: Dim; Hq: Dim; S: Dim; T: Dim; Dv: Dim } {
  const bad = (msg: string): never => fail('invalid-model', `${op}: ${msg}`);
  specs.forEach((spec, i) => {
    const t = types[i];
    if (!t) {
      if (!spec.optional) bad(`input ${i} '${spec.name}' is required but missing.`);
      return;
    }
    if (t.elemType && !spec.types.includes(t.elemType)) bad(`input '${spec.name}' has type ${typeName(t.elemType)}; allowed: ${spec.types.map(typeName).join(', ')}.`);
    if (t.shape && !spec.ranks.includes(t.shape.length)) bad(`input '${spec.name}' has rank ${t.shape.length}; allowed: ${spec.ranks.join(' or ')}.`);
  });
  const [q, k, v] = [types[0], types[1], types[2]];
  const elemType = q?.elemType || k?.elemType || v?.elemType || 0;
  for (const [i, t] of types.entries()) {
    const spec = specs[i];
    if (t && spec && spec.types === FLOAT_TYPES && t.elemType && elemType && t.elemType !== elemType) {
      bad(`input '${spec.name}' has type ${typeName(t.elemType)} but Q has ${typeName(elemType)}; they must match.`);
    }
  }
  const d = (t: TensorType | undefined, a: number): Dim => t?.shape?.[a];
  const same = (what: string, x: Dim, y: Dim): Dim => {
    if (typeof x === 'number' && typeof y === 'number' && x !== y) bad(`${what} disagree: ${x} vs ${y}.`);
    return typeof x === 'number' ? x : typeof y === 'number' ? y : (x ?? y);
  };
  const B = same('batch sizes of Q and K', same('batch sizes of Q and V', d(q, 0), d(v, 0)), d(k, 0));
  same('head sizes D of Q and K', d(q, 3), d(k, 3));
  same('key/value heads of K and V', d(k, 1), d(v, 1));
  const T = same('lengths T of K and V', d(k, 2), d(v, 2));
  const Hq = d(q, 1);
  const Hkv = d(k, 1);
  if (typeof Hq === 'number' && typeof Hkv === 'number' && (Hkv === 0 || Hq % Hkv !== 0)) bad(`query heads (${Hq}) must be a multiple of key/value heads (${Hkv}).`);
  const mask = types[3];
  if (mask?.shape) {
    const full: Dim[] = [B, Hq, d(q, 2), T];
    const m = mask.shape;
    m.forEach((dim, a) => {
      const target = full[4 - m.length + a];
      if (typeof dim === 'number' && dim !== 1 && typeof target === 'number' && dim !== target) {
        bad(`mask dims [${m.join(', ')}] do not broadcast to [B, Hq, S, T] = [${full.map((x) => x ?? '?').join(', ')}].`);
      }
    });
  }
  return { elemType, B, Hq, S: d(q, 2), T, Dv: d(v, 3) };
}

const attentionInputs: InputSpec[] = [
  { name: 'Q', optional: false, types: FLOAT_TYPES, ranks: [4], doc: 'queries [B, Hq, S, D]' },
  { name: 'K', optional: false, types: FLOAT_TYPES, ranks: [4], doc: 'keys [B, Hkv, T, D]; Hq is a multiple of Hkv' },
  { name: 'V', optional: false, types: FLOAT_TYPES, ranks: [4], doc: 'values [B, Hkv, T, Dv]' },
  { name: 'mask', optional: false, types: FLOAT_TYPES, ranks: [0, 1, 2, 3, 4], doc: 'additive mask broadcastable to [B, Hq, S, T]; a scalar 0 means none' },
];

const outputO: OutputSpec = { name: 'O', optional: false, types: FLOAT_TYPES, ranks: [4], doc: 'output [B, Hq, S, Dv], same type as Q' };

// ---- building a spec --------------------------------------------------------------------------

interface Definition<In, Out, Attrs> {
  name: string;
  doc: string;
  inputs: InputSpec[];
  outputs: OutputSpec[];
  attributes: AttributeSpec[];
  outputTypes(t: ReturnType<typeof inferAttention>, attrs: Attrs, inputTypes: ReadonlyArray<TensorType | undefined>): TensorType[];
  reference(inputs: In, attrs: Attrs): Out;
  body(target?: BodyTarget): BodyBuilder;
}

function defineOperator<In, Out, Attrs>(def: Definition<In, Out, Attrs>): OperatorSpec<In, Out, Attrs> {
  const resolve = (attrs?: AttributeInput): Attrs => {
    const { values, errors } = validate(def.name, def.attributes, attrs);
    if (errors.length > 0) throw new AttnpassError('usage', errors.join('\n'));
    return values as Attrs;
  };
  return {
    name: def.name,
    domain: ATTNPASS_DOMAIN,
    version: ATTNPASS_VERSION,
    doc: def.doc,
    inputs: def.inputs,
    outputs: def.outputs,
    attributes: def.attributes,
    inferTypes: (types, attrs) => def.outputTypes(inferAttention(def.name, def.inputs, types), resolve(attrs), types),
    validateAttributes: (attrs) => validate(def.name, def.attributes, attrs).errors,
    resolveAttributes: resolve,
    reference: (inputs, attrs) => def.reference(inputs, resolve(attrs)),
    buildFunction: (opset = FUNCTION_OPSET, elemType = DataType.FLOAT) =>
      functionProto({
        name: def.name,
        domain: ATTNPASS_DOMAIN,
        doc: def.doc,
        inputs: def.inputs.map((i) => i.name),
        outputs: def.outputs.map((o) => o.name),
        attributes: def.attributes.map((a) => defaultAttribute(a.name, a.type, a.default)),
        body: def.body({ opset: checkedOpset(def.name, opset), elemType }),
        opset,
      }),
  };
}

const out4 = (t: ReturnType<typeof inferAttention>): TensorType => ({ elemType: t.elemType, shape: [t.B, t.Hq, t.S, t.Dv] });
const ceilDiv = (n: Dim, bs: number): Dim => (typeof n === 'number' ? Math.ceil(n / bs) : undefined);

// ---- the three operators -----------------------------------------------------------------------

export const BlockSparseAttention: OperatorSpec<AttentionInputs, BlockSparseResult, BlockSparseAttributes> = defineOperator({
  name: 'BlockSparseAttention',
  doc:
    'Adaptive block-sparse attention (AST). Per (batch, query head, query block qb of block_size queries), key blocks are ' +
    'candidates when causally visible (kb·bs ≤ plast(qb), the last position the query block sees) or always when not causal. ' +
    'Sink blocks (kb < sink_blocks) and local blocks (kd − local_blocks < kb ≤ kd, kd = diagonal block) are always kept. ' +
    'The other candidates are ordered by s(kb) = scale · mean(Q rows of qb) · mean(K rows of kb) descending, ties by lower kb, and ' +
    'the first n are kept: density mode n = max(0, ceil(density·|C|) − |forced|); mass mode (mass_threshold > 0) the fewest whose ' +
    'softmax mass of s + ln len over the candidates, added to the forced blocks\', reaches mass_threshold. Attention is exact over the ' +
    'kept blocks\' keys within causality; mask additive; empty rows give 0. Output `layout` (bool [B, Hq, nQB, nKB]) is the kept set. ' +
    'Equals dense attention at density = 1. Normative text: kernels/OPERATORS.md.',
  inputs: attentionInputs,
  outputs: [outputO, { name: 'layout', optional: true, types: [DataType.BOOL], ranks: [4], doc: 'kept key blocks, bool [B, Hq, ceil(S/bs), ceil(T/bs)]' }],
  attributes: [
    blockSize,
    floatAttr('density', 0.25, 'in (0, 1]', 'fraction of candidate key blocks kept per query block (density mode)', (v) => v > 0 && v <= 1, 'Use 1 for exact attention.'),
    floatAttr('mass_threshold', 0, 'in [0, 1]', 'keep the fewest blocks whose estimated softmax mass reaches this; 0 selects density mode', (v) => v >= 0 && v <= 1, 'Use 0 for density mode.'),
    nonNegative('sink_blocks', 1, 'leading key blocks always kept'),
    nonNegative('local_blocks', 1, 'key blocks up to and including the diagonal block always kept'),
    scale,
    causal,
  ],
  outputTypes: (t, a) => [out4(t), { elemType: DataType.BOOL, shape: [t.B, t.Hq, ceilDiv(t.S, a.block_size), ceilDiv(t.T, a.block_size)] }],
  reference: blockSparseAttention,
  body: blockSparseBody,
});

export const TiledAttention: OperatorSpec<TiledInputs, TiledResult, TiledAttributes> = defineOperator({
  name: 'TiledAttention',
  doc:
    'Adaptive tensor tiling (ATT). Per (batch, key/value head), token importance r(j) (scorer 0: ‖k_j‖₂; 1: mean softmax mass ' +
    'from the last min(S,16) queries of every head of the group, no mask or causality; 2: k_j · scorer) is averaged per key block; ' +
    'sink blocks are fine, the others ranked by that mean descending (ties: lower block first): the first round(fine_fraction·nKB) ' +
    'fine, the next round(medium_fraction·nKB) medium, the rest coarse (round = floor(x + 0.5)). A fine block is single-token tiles, a ' +
    'medium block tiles of medium_tile tokens, a coarse block one tile; a tile of n tokens has the mean key and value, logit bias ln n ' +
    'and the maximum mask over its tokens. Query i (own block ob = floor(p(i)/bs)) reads blocks ob − local_blocks < kb ≤ ob exactly ' +
    '(causal per token) and every other block as tiles (causal: only blocks before that region); one softmax over all; empty rows ' +
    'give 0. Equals dense attention at fine_fraction = 1. Normative text: kernels/OPERATORS.md.',
  inputs: [...attentionInputs, { name: 'scorer', optional: true, types: FLOAT_TYPES, ranks: [1], doc: 'learned scorer weights [D] (needed when scorer = 2)' }],
  outputs: [outputO],
  attributes: [
    blockSize,
    floatAttr('fine_fraction', 0.25, 'in [0, 1]', 'fraction of key blocks kept at token resolution', (v) => v >= 0 && v <= 1, 'Use 1 for exact attention.'),
    floatAttr('medium_fraction', 0.25, 'in [0, 1 − fine_fraction]', 'fraction of key blocks pooled into medium tiles', (v, all) => v >= 0 && v <= 1 - all.fine_fraction! + 1e-6, 'Lower it or fine_fraction so they sum to at most 1.'),
    intAttr('medium_tile', 8, 'a divisor of block_size (≥ 1)', 'tokens per medium tile', (v, all) => v >= 1 && all.block_size! % v === 0, 'Use a power of two no larger than block_size.'),
    nonNegative('sink_blocks', 1, 'leading key blocks always fine'),
    intAttr('local_blocks', 1, '≥ 1', "key blocks up to and including the query's own, read exactly", (v) => v >= 1, "The query's own block counts: use 1 or more."),
    intAttr('scorer', 0, '0, 1 or 2', 'token importance: 0 key norm, 1 probe queries, 2 learned (scorer input)', (v) => v === 0 || v === 1 || v === 2, 'Use 0 (key norm), 1 (probe queries) or 2 (learned, with the scorer input).'),
    scale,
    causal,
  ],
  outputTypes: (t, a, types) => {
    if (a.scorer === 2 && !types[4]) fail('invalid-model', `TiledAttention: scorer = 2 (learned) needs the 'scorer' input ([D] weights); give it or use scorer 0 or 1.`);
    return [out4(t)];
  },
  reference: tiledAttention,
  body: tiledBody,
});

export const SpanAttention: OperatorSpec<SpanInputs, SpanResult, SpanAttributes> = defineOperator({
  name: 'SpanAttention',
  doc:
    'Attention over self-selected key spans. `spans` (int64 [Bs, n, 2] or per query [Bs, S, n, 2], Bs ∈ {1, B}) lists [start, end) ' +
    'absolute key positions, clamped to [0, T); an end ≤ start is empty. Query i (position p = T − S + i) admits key j when ' +
    '(not causal or j ≤ p) and (j < sink_tokens or |p − j| < local_window or j lies in one of its sequence\'s spans). Mask additive; ' +
    'empty rows give 0. Equals dense attention when one span covers [0, T). Normative text: kernels/OPERATORS.md.',
  inputs: [...attentionInputs, { name: 'spans', optional: false, types: INT64_ONLY, ranks: [3, 4], doc: 'key spans, int64 [Bs, n_spans, 2] or [Bs, S, n_spans, 2]' }],
  outputs: [outputO],
  attributes: [
    nonNegative('sink_tokens', 4, 'leading keys always admitted'),
    nonNegative('local_window', 64, 'keys with |p − j| < local_window always admitted'),
    scale,
    causal,
  ],
  outputTypes: (t) => [out4(t)],
  reference: spanAttention,
  body: spanBody,
});

export const OPERATORS = {
  BlockSparseAttention,
  TiledAttention,
  SpanAttention,
} as const satisfies Record<string, AnyOperatorSpec>;

/** An operator spec with its input, result and attribute types erased. */
export type AnyOperatorSpec = OperatorSpec<never, unknown, unknown>;

export type OperatorName = keyof typeof OPERATORS;

export function isAttnpassOp(domain: string, op: string): boolean {
  return domain === ATTNPASS_DOMAIN && Object.hasOwn(OPERATORS, op);
}

export function operatorSpec(name: string): AnyOperatorSpec {
  if (!Object.hasOwn(OPERATORS, name)) fail('usage', `no ai.attnpass operator named '${name}'. Known: ${Object.keys(OPERATORS).join(', ')}.`);
  return OPERATORS[name as OperatorName];
}

/** The model-local function of operator `name`, importing the default domain at `opset` (≥ 18). */
/** The oldest default opset the function bodies can be written in (Unsqueeze/ReduceSum axes inputs). */
export const MIN_FUNCTION_OPSET = 13;

function checkedOpset(op: string, opset: number): number {
  if (opset < MIN_FUNCTION_OPSET) {
    throw new AttnpassError('unsupported', `${op}: the model imports default-domain opset ${opset}; the attnpass operators' ONNX functions need opset ${MIN_FUNCTION_OPSET} or newer. Upgrade the model first (onnx.version_converter.convert_version(model, 17)) or re-export it.`);
  }
  return opset;
}

export function functionFor(name: string, opset = FUNCTION_OPSET, elemType: number = DataType.FLOAT): FunctionProto {
  return operatorSpec(name).buildFunction(opset, elemType);
}
