/** Operator names of the default ONNX domain (ai.onnx), through opset 24. */
export const ONNX_OPS: ReadonlySet<string> = new Set(
  `Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
  Bernoulli BitCast BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow Cast CastLike Ceil Celu
  CenterCropPad Clip Col2Im Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger
  ConvTranspose Cos Cosh CumProd CumSum DFT DeformConv DepthToSpace DequantizeLinear Det Div Dropout
  DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND
  Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization
  HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageDecoder InstanceNormalization IsInf IsNaN
  LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul
  MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MeanVarianceNormalization MelWeightMatrix Min Mish Mod Mul
  Multinomial Neg NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional OptionalGetElement
  OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RMSNormalization RNN RandomNormal
  RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
  ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare RegexFullMatch Relu Reshape Resize
  ReverseSequence RoiAlign RotaryEmbedding Round STFT Scan Scatter ScatterElements ScatterND Selu SequenceAt
  SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign
  Sin Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt
  Squeeze StringConcat StringNormalizer StringSplit Sub Sum Swish Tan Tanh TensorScatter TfIdfVectorizer
  ThresholdedRelu Tile TopK Transpose Trilu Unique Unsqueeze Upsample Where Xor`.split(/\s+/).filter(Boolean),
);

/** Ops ONNX Runtime registers in the default domain although ONNX does not define them (its optimizer writes them). */
export const ORT_DEFAULT_DOMAIN_OPS: ReadonlySet<string> = new Set(['SimplifiedLayerNormalization']);

/** Operators of the ai.onnx.ml domain. */
export const ONNX_ML_OPS: ReadonlySet<string> = new Set(
  `ArrayFeatureExtractor Binarizer CastMap CategoryMapper DictVectorizer FeatureVectorizer Imputer LabelEncoder
  LinearClassifier LinearRegressor Normalizer OneHotEncoder SVMClassifier SVMRegressor Scaler TreeEnsemble
  TreeEnsembleClassifier TreeEnsembleRegressor ZipMap`.split(/\s+/).filter(Boolean),
);

/**
 * The default-domain opset that introduced each op added since opset 14 (a model importing an older opset
 * cannot use it). LayerNormalization is left out: ONNX Runtime also runs it at older opsets.
 */
export const SINCE_VERSION: ReadonlyMap<string, number> = new Map([
  ['Trilu', 14], ['HardSwish', 14],
  ['CastLike', 15], ['Bernoulli', 15], ['Optional', 15], ['OptionalGetElement', 15], ['OptionalHasElement', 15],
  ['GridSample', 16],
  ['DFT', 17], ['STFT', 17], ['BlackmanWindow', 17], ['HannWindow', 17], ['HammingWindow', 17], ['MelWeightMatrix', 17], ['SequenceMap', 17],
  ['Col2Im', 18], ['BitwiseAnd', 18], ['BitwiseNot', 18], ['BitwiseOr', 18], ['BitwiseXor', 18], ['CenterCropPad', 18], ['Mish', 18], ['GroupNormalization', 18],
  ['DeformConv', 19],
  ['AffineGrid', 20], ['Gelu', 20], ['ImageDecoder', 20], ['RegexFullMatch', 20], ['StringConcat', 20], ['StringSplit', 20],
  ['Attention', 23], ['RMSNormalization', 23], ['RotaryEmbedding', 23],
  ['TensorScatter', 24], ['Swish', 24],
]);

/** Input and output counts of common default-domain ops: [min inputs, max inputs, min outputs, max outputs]. */
const INF = Number.POSITIVE_INFINITY;
export const ARITY: ReadonlyMap<string, readonly [number, number, number, number]> = new Map<string, readonly [number, number, number, number]>([
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'MatMul', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Expand', 'Reshape', 'Gather', 'GatherElements', 'Mod', 'CastLike', 'PRelu']
    .map((op) => [op, [2, 2, 1, 1]] as const),
  ...['Softmax', 'LogSoftmax', 'Transpose', 'Shape', 'Size', 'Cast', 'Sqrt', 'Exp', 'Log', 'Relu', 'Tanh', 'Erf', 'Neg', 'Not', 'Identity', 'Sigmoid', 'Reciprocal', 'Abs', 'IsNaN', 'IsInf', 'ConstantOfShape', 'Floor', 'Ceil', 'Sin', 'Cos', 'Softplus', 'Flatten', 'NonZero']
    .map((op) => [op, [1, 1, 1, 1]] as const),
  ['Where', [3, 3, 1, 1]],
  ['Gemm', [2, 3, 1, 1]],
  ['Concat', [1, INF, 1, 1]],
  ['Sum', [1, INF, 1, 1]],
  ['Max', [1, INF, 1, 1]],
  ['Min', [1, INF, 1, 1]],
  ['Unsqueeze', [1, 2, 1, 1]],
  ['Squeeze', [1, 2, 1, 1]],
  ['Slice', [1, 5, 1, 1]],
  ['Split', [1, 2, 1, INF]],
  ['Range', [3, 3, 1, 1]],
  ['Constant', [0, 0, 1, 1]],
  ['Dropout', [1, 3, 1, 2]],
  ['Trilu', [1, 2, 1, 1]],
  ['ReduceMean', [1, 2, 1, 1]],
  ['ReduceSum', [1, 2, 1, 1]],
  ['ReduceMax', [1, 2, 1, 1]],
  ['LayerNormalization', [2, 3, 1, 3]],
  ['If', [1, 1, 1, INF]],
  ['Tile', [2, 2, 1, 1]],
  ['Clip', [1, 3, 1, 1]],
  ['TopK', [2, 2, 2, 2]],
]);
