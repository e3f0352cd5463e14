/**
 * `span`: every proven attention → SpanAttention. The model gains one graph input, `attnpass_spans`
 * (int64 [batch or 1, n_spans, 2], each row [start, end) in absolute key positions), shared by all layers.
 * Its default (an initializer of the same name) is one span covering everything, so a caller that does not
 * feed it gets exact dense attention. A generation loop feeds, at each step, the spans it wants read
 * (e.g. retrieved chunks); sink tokens and the local window are always read.
 * `--default-spans required` writes the input with no default. Use it when the model is run from
 * onnxruntime-node: its sessions cannot override an input that has a default (measured with 1.30: the feed is
 * dropped silently), while Python's onnxruntime can.
 */
import { definePass } from '../../src/pipeline/pass.js';
import { fail } from '../../src/errors.js';
import { int64Tensor } from '../../src/onnx/tensor.js';
import { DataType } from '../../src/onnx/codec.js';
import { rewriteSites } from '../common/rewrite.js';
import { attributesFrom } from '../common/attributes.js';
import { LAYERS_OPTION, LAYER_OPTIONS_OPTION, EXACT_OPTION, num } from '../common/options.js';

export const SPANS_INPUT = 'attnpass_spans';
/** end of the "everything" span: past any real sequence, and exact in float64 and int64 */
export const SPAN_END_ALL = 2 ** 62;

export const spanPass = definePass({
  name: 'span',
  description: `Rewrite attention into SpanAttention: each sequence reads sink tokens, a local window and the key spans fed in '${SPANS_INPUT}'`,
  requires: ['detect-attention'],
  options: {
    'sink-tokens': { type: 'number', default: 4, describe: 'leading tokens always read' },
    'local-window': { type: 'number', default: 64, describe: 'most recent tokens always read' },
    'default-spans': {
      type: 'string',
      default: 'all',
      choices: ['all', 'none', 'required'],
      describe: `default of '${SPANS_INPUT}' when not fed: all keys (exact), none (sinks + window only), or required (no default: callers must feed it; onnxruntime-node can only feed inputs without a default)`,
    },
    layers: LAYERS_OPTION,
    'layer-options': LAYER_OPTIONS_OPTION,
    exact: EXACT_OPTION,
  },
  run(ctx) {
    const o = ctx.options;
    const graph = ctx.model.graph;
    if (graph.lookup(SPANS_INPUT)) fail('usage', `the model already has a value named '${SPANS_INPUT}' (was it converted before?). Convert the original model.`);
    const spans = graph.addInput(SPANS_INPUT, { elemType: DataType.INT64, shape: ['span_batch', 'n_spans', 2] });
    const defaultSpans = o.exact === true ? 'all' : o['default-spans'];
    if (defaultSpans !== 'required') {
      spans.initializer = int64Tensor(SPANS_INPUT, [1, 1, 2], defaultSpans === 'none' ? [0n, 0n] : [0n, BigInt(SPAN_END_ALL)]);
      graph.initializers.push(spans);
    }
    const result = rewriteSites(ctx, 'span', (site, layer) => ({
      op: 'SpanAttention',
      attributes: attributesFrom({ sink_tokens: num(layer, 'sink-tokens'), local_window: num(layer, 'local-window'), scale: site.scale, causal: site.causal ? 1 : 0 }, new Set(['scale'])),
      extraInputs: [spans],
    }));
    if (!result.modified) graph.removeInitializer(spans);
    return result;
  },
});
