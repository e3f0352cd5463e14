// Float tensors with pseudo-random payloads (no zeros, which could hide a misplaced copy) for the large-model tests.
import { Long, onnx, type TensorProto } from '../../src/onnx/codec.js';

export function payloadMaker(seed: number) {
  let state = seed;
  const bytes = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      out[i] = state >>> 24;
    }
    return out;
  };
  /** float32 tensor of n bytes */
  const tensor = (name: string, n: number, extra: Partial<TensorProto> = {}): TensorProto =>
    onnx.TensorProto.create({ name, dims: [Long.fromNumber(n / 4)], dataType: 1, rawData: bytes(n), ...extra });
  return { bytes, tensor };
}
