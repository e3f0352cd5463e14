/**
 * Quality you can see: how closely a rewritten model's next-token distributions follow the dense
 * model's on real text. Windows of evaluation text run through both models; per position we compare
 * the float64 softmax of the logits (KL, top-1) and score the true next token (perplexity).
 *
 * Density means the same thing for every operator: the fraction of dense attention cost (the cost
 * model's relative FLOPs at the sequence length) an operator setting spends; see ./density.ts.
 */
export { MetricsAccumulator, errorOf, type QualityMetrics, type ErrorMetric } from './metrics.js';
export { loadEvalText, evalWindows, randomText, type EvalText } from './text.js';
export { compareOnText, DenseReference } from './compare.js';
export { densitySweep, type SweepPoint, type SweepOptions } from './sweep.js';
export { settingForDensity, stridedSpans, SWEEP_PASSES, type DensitySetting } from './density.js';
export { calibrate, CALIBRATE_PASSES, DEFAULT_DENSITY_GRID, type CalibrateOptions, type CalibrationResult, type LayerChoice } from './calibrate.js';
export { modelFacts, type ModelFacts } from './model-facts.js';
