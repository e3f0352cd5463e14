/** attnpass: the public library API. */
export { AttnpassError, fail, type ErrorCode } from './errors.js';
export { loadModel, type LoadedModel, type LoadOptions } from './onnx/load.js';
export { saveModel, encodeModel, type SaveOptions, type SaveResult, type ExternalDataMode } from './onnx/save.js';
export { makeTensor, int64Tensor, float32Tensor, tensorToFloat64, tensorToBigInt64, tensorDims } from './onnx/tensor.js';
export { onnx, DataType } from './onnx/codec.js';
export { Graph, Node, Value, type Dim, type TensorType, type Use, type NodeSpec } from './ir/graph.js';
export { Model, type FunctionDef } from './ir/model.js';
export { inferModel, shapeValueOf, constantFloats, constantScalar } from './ir/infer.js';
export { validateModel, assertValid, type Diagnostic } from './validate/index.js';
export { definePass, type Pass, type PassContext, type PassResult, type PassOption, type Plugin } from './pipeline/pass.js';
export { PassRegistry, runPasses, type PassRun, type RunOptions } from './pipeline/manager.js';
export { loadPlugin } from './pipeline/plugins.js';
export { summarizeModel, formatSummary, type ModelSummary } from './inspect.js';

import { loadModel, type LoadOptions } from './onnx/load.js';
import { Model } from './ir/model.js';

/** Loads a model file (or bytes) and lifts it into the IR in one step. */
export function openModel(source: string | Uint8Array, options?: LoadOptions): Model {
  return Model.lift(loadModel(source, options));
}
