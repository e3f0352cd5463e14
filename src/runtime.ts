/**
 * onnxruntime-node, loaded on first use. Importing it costs every CLI command start-up time (its native
 * binding), and most commands — inspect, convert, passes — never run a model.
 */
import type * as Ort from 'onnxruntime-node';

let loading: Promise<typeof Ort> | undefined;

export function onnxRuntime(): Promise<typeof Ort> {
  loading ??= import('onnxruntime-node');
  return loading;
}
