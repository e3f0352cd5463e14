/**
 * The driver of the function-vs-reference suites: for each case of the grid, draw fresh inputs, run
 * the operator's ONNX function in onnxruntime-node (float32) and its TypeScript reference (float64),
 * and compare.
 *
 * float32 vs float64: a block selection (AST scores, mass threshold; ATT block importance) decided
 * by a near-tie could legitimately flip between the two. Keys get per-block offsets so scores are
 * well separated, and inputs whose reference `margin` (distance of any selection decision from a
 * tie: absolute for AST scores and masses, relative for ATT importances) is below MIN_MARGIN are
 * redrawn; float32 rounding of these quantities is ~1e-6. The selections themselves are compared
 * exactly where the function outputs them (AST layout).
 */
import { expect } from 'vitest';
import { operatorSpec } from '../../kernels/registry.js';
import { SEED, Rng, describeCase, grid, randomAttention, relativeError, runFunction, type AttentionData, type Case, type Feed } from './helpers.js';

export const MIN_MARGIN = 1e-4;
export const TOLERANCE = 1e-4;

export interface Setting {
  name: string;
  attrs: Record<string, number>;
  /** names of FLOAT attributes */
  floats: ReadonlySet<string>;
  /** inputs after Q, K, V, mask (spans, scorer); undefined = omitted */
  extra?: (rng: Rng, c: Case) => Array<Feed | undefined>;
  /** reference inputs object from the drawn data and extras */
  inputs: (x: AttentionData, extra: Array<Feed | undefined>) => unknown;
  outputs?: string[];
  /** only cases this setting applies to */
  when?: (c: Case) => boolean;
}

interface RefResult {
  output: { data: Float64Array; dims: number[] };
  layout?: { data: Uint8Array };
  margin?: number;
}

export interface Agreement {
  cases: number;
  maxError: number;
  redraws: number;
  emptyRows: number;
  /** fraction of layout entries kept (AST), over all cases */
  keptFraction?: number;
}

/** Counts query rows that are all zero in the reference output (empty admitted sets). */
function zeroRows(out: Float64Array, Dv: number): number {
  let n = 0;
  for (let r = 0; r < out.length / Dv; r++) if (out.subarray(r * Dv, (r + 1) * Dv).every((x) => x === 0)) n++;
  return n;
}

export async function checkAgreement(op: string, setting: Setting, salt: number): Promise<Agreement> {
  const spec = operatorSpec(op);
  const rng = new Rng(SEED + salt);
  const result: Agreement = { cases: 0, maxError: 0, redraws: 0, emptyRows: 0 };
  let kept = 0;
  let entries = 0;
  for (const c of grid()) {
    if (setting.when && !setting.when(c)) continue;
    const where = `${op} ${setting.name} ${describeCase(c)} (seed ${SEED}; replay with ATTNPASS_TEST_SEED=${SEED})`;
    let x: AttentionData;
    let extra: Array<Feed | undefined>;
    let ref: RefResult;
    let attempts = 0;
    const attrs = { ...setting.attrs, causal: c.causal };
    for (;;) {
      x = randomAttention(rng, c, setting.attrs.block_size ?? 16);
      extra = setting.extra?.(rng, c) ?? [];
      ref = spec.reference(setting.inputs(x, extra) as never, attrs) as RefResult;
      if ((ref.margin ?? Infinity) >= MIN_MARGIN) break;
      result.redraws++;
      if (++attempts > 50) throw new Error(`${where}: could not draw inputs with a selection margin ≥ ${MIN_MARGIN}`);
    }
    const outputs = setting.outputs ?? ['O'];
    const got = await runFunction(op, [x.q, x.k, x.v, x.mask, ...extra], attrs, setting.floats, outputs);
    expect(got.O!.dims, where).toEqual(ref.output.dims);
    const err = relativeError(got.O!.data, ref.output.data);
    expect(err, `${where}: relative error`).toBeLessThanOrEqual(TOLERANCE);
    if (outputs.includes('layout')) {
      expect(Array.from(got.layout!.data, Number), `${where}: layout`).toEqual(Array.from(ref.layout!.data));
      kept += ref.layout!.data.reduce((a, v) => a + v, 0);
      entries += ref.layout!.data.length;
    }
    result.cases++;
    result.maxError = Math.max(result.maxError, err);
    result.emptyRows += zeroRows(ref.output.data, c.Dv);
  }
  if (entries > 0) result.keptFraction = kept / entries;
  return result;
}
