/**
 * Generated inputs for verify: for each case (batch, new tokens, past length) a value for every graph
 * input, derived from the input's name, type and shape: token ids inside the vocabulary, attention
 * masks with padding on the side the model expects, position ids that follow the padding, random
 * past keys/values and hidden states.
 */
import { DataType } from '../onnx/codec.js';
import { elementType } from '../onnx/dtype.js';
import { fail } from '../errors.js';
import type { Graph, Value } from '../ir/graph.js';
import type { NamedTensor } from './tensors.js';

export interface CaseShape {
  name: string;
  batch: number;
  /** new tokens this step */
  seq: number;
  /** tokens already in the KV cache (0 when the model has none) */
  past: number;
}

export interface ModelInputFacts {
  vocab: number;
  /** rows of the smallest learned position table (GPT-2's wpe, BERT's position_embeddings), if any */
  maxPositions: number | undefined;
  /**
   * left padding for decoders (causal models), right for encoders; none for com.microsoft
   * GroupQueryAttention models, which express valid lengths only as right-aligned `seqlens_k`
   */
  padding: 'left' | 'right' | 'none';
  hasPast: boolean;
}

/** A small deterministic PRNG (mulberry32); verify prints the seed so a failure can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

const isPast = (name: string) => /past|cache(?!_position)/i.test(name) && !/position/i.test(name);

export function inputFacts(graph: Graph, causal: boolean): ModelInputFacts {
  const feeds = graph.inputs.filter((v) => !v.initializer);
  const ids = feeds.find((v) => /input_ids/i.test(v.name));
  let vocab = 100;
  const embedding = ids?.consumers().find((n) => n.opType === 'Gather' && n.inputs[0]?.initializer);
  const rows = embedding?.inputs[0]?.type?.shape?.[0];
  if (typeof rows === 'number') vocab = rows;
  const gqa = graph.nodes.some((n) => n.domain === 'com.microsoft' && n.opType === 'GroupQueryAttention');
  return { vocab, maxPositions: learnedPositionRows(graph, embedding?.inputs[0]), padding: gqa ? 'none' : causal ? 'left' : 'right', hasPast: feeds.some((v) => isPast(v.name)) };
}

/**
 * Models with learned absolute positions cannot run past their table: the rows of the smallest 2-D
 * initializer that a Gather or Slice reads, other than the token embedding.
 */
function learnedPositionRows(graph: Graph, tokenTable: Value | undefined): number | undefined {
  let rows: number | undefined;
  for (const n of graph.nodes) {
    if (n.opType !== 'Gather' && n.opType !== 'Slice') continue;
    const table = n.inputs[0];
    const dims = table?.initializer ? table.type?.shape : undefined;
    if (!table || table === tokenTable || dims?.length !== 2 || typeof dims[0] !== 'number') continue;
    if (!/pos|wpe/i.test(table.name) && !/pos|wpe/i.test(n.name)) continue;
    // a Gather reads rows of a table; a Slice cuts a [1, max] buffer of position ids
    const length = n.opType === 'Gather' ? dims[0] : Math.max(...(dims as number[]));
    rows = Math.min(rows ?? Infinity, length);
  }
  return rows;
}

/** Number of padding positions in batch row b (row 0 never padded). */
function padCount(b: number, total: number): number {
  return Math.min(total - 1, b * 2 + (b > 0 ? 1 : 0));
}

export function generateInputs(graph: Graph, facts: ModelInputFacts, shape: CaseShape, seed: number): NamedTensor[] {
  const random = rng(seed);
  const feeds = graph.inputs.filter((v) => !v.initializer);
  const total = shape.past + shape.seq;
  const symbols = new Map<string, number>();
  const mask = (b: number, j: number): number => {
    if (facts.padding === 'none') return 1;
    const pads = padCount(b, total);
    return facts.padding === 'left' ? (j < pads ? 0 : 1) : j >= total - pads ? 0 : 1;
  };
  const dimsFor = (v: Value): number[] => {
    const s = v.type?.shape;
    if (!s) fail('usage', `verify cannot generate input '${v.name}': its shape is unknown. Give inputs with --inputs FILE.`);
    const name = v.name;
    const guess = (i: number): number => {
      if (i === 0) return shape.batch;
      if (isPast(name) && s.length === 4 && i === 2) return shape.past;
      if (/attention_mask/i.test(name) && !/encoder/i.test(name)) return i === s.length - 1 ? total : shape.seq;
      return shape.seq;
    };
    return s.map((d, i) => {
      if (typeof d === 'number') return d;
      const g = guess(i);
      if (typeof d === 'string') {
        if (!symbols.has(d)) symbols.set(d, g);
        return symbols.get(d)!;
      }
      return g;
    });
  };
  // inputs whose dims are most telling go first, so shared symbols are bound by them
  const order = [...feeds].sort((a, b) => rank(a.name) - rank(b.name));
  const out = new Map<string, NamedTensor>();
  for (const v of order) {
    const dims = dimsFor(v);
    const n = dims.reduce((a, b) => a * b, 1);
    const elem = v.type?.elemType ?? DataType.FLOAT;
    const dtype = elem === DataType.BOOL ? 'bool' : elementType(elem).name;
    const last = dims[dims.length - 1] ?? 1;
    const at = (i: number) => ({ b: Math.floor(i / (n / (dims[0] || 1))), j: i % last });
    let data: NamedTensor['data'];
    if (elem === DataType.INT64 || elem === DataType.INT32) {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const { b, j } = at(i);
        if (/attention_mask/i.test(v.name)) values[i] = mask(b, j);
        else if (/position_ids/i.test(v.name)) {
          const offset = total - last;
          let count = 0;
          for (let t = 0; t <= j + offset; t++) count += mask(b, t);
          values[i] = Math.max(0, count - 1);
        } else if (/cache_position/i.test(v.name)) values[i] = shape.past + j;
        // com.microsoft GroupQueryAttention: per-sequence key count minus one, and the total length
        else if (/seqlens_k/i.test(v.name)) values[i] = total - 1;
        else if (/total_sequence_length/i.test(v.name)) values[i] = total;
        else if (/token_type/i.test(v.name)) values[i] = 0;
        else values[i] = Math.floor(random() * facts.vocab);
      }
      data = elem === DataType.INT64 ? BigInt64Array.from(values, (x) => BigInt(x)) : Int32Array.from(values);
    } else if (elem === DataType.BOOL) {
      data = Uint8Array.from({ length: n }, (_, i) => (/mask/i.test(v.name) ? mask(at(i).b, at(i).j) : 1));
    } else if (elem === DataType.FLOAT || elem === DataType.DOUBLE) {
      const values = Float64Array.from({ length: n }, (_, i) => (/mask/i.test(v.name) ? mask(at(i).b, at(i).j) : gaussian(random)));
      data = elem === DataType.FLOAT ? Float32Array.from(values) : values;
    } else {
      fail('usage', `verify cannot generate input '${v.name}' of type ${elementType(elem).name}. Give inputs with --inputs FILE.`);
    }
    out.set(v.name, { name: v.name, dtype, dims, data });
  }
  return feeds.map((v) => out.get(v.name)!);
}

function rank(name: string): number {
  if (/input_ids/i.test(name)) return 0;
  if (isPast(name)) return 1;
  if (/attention_mask/i.test(name)) return 2;
  return 3;
}

export function defaultCases(facts: ModelInputFacts, seqLens: number[]): CaseShape[] {
  const cases: CaseShape[] = [];
  const hasPast = facts.hasPast;
  // keep every case inside a learned position table (past + new tokens + the offsets some models add)
  const limit = facts.maxPositions === undefined ? Infinity : facts.maxPositions - 8;
  const lengths = [...new Set(seqLens.map((n) => Math.max(1, Math.min(n, limit))))];
  for (const batch of [1, 3]) {
    for (const seq of lengths) {
      if (hasPast) {
        cases.push({ name: `b${batch}-past${seq}-new1`, batch, seq: 1, past: seq });
        cases.push({ name: `b${batch}-past${seq}-new5`, batch, seq: 5, past: seq });
      } else {
        cases.push({ name: `b${batch}-s${seq}`, batch, seq, past: 0 });
      }
    }
  }
  return cases;
}
