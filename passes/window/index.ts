/** `window`: the classic fixed pattern baseline — sink tokens plus a sliding window, as SpanAttention with no spans. */
import { definePass } from '../../src/pipeline/pass.js';
import { int64Tensor } from '../../src/onnx/tensor.js';
import { rewriteSites } from '../common/rewrite.js';
import { attributesFrom } from '../common/attributes.js';
import { LAYERS_OPTION, LAYER_OPTIONS_OPTION, EXACT_OPTION, num } from '../common/options.js';

/** a window this wide covers any sequence: the exact setting */
const WINDOW_ALL = 2 ** 30;

export const windowPass = definePass({
  name: 'window',
  description: 'Rewrite attention into a fixed sliding window plus sink tokens (SpanAttention with no spans): the fixed-pattern baseline',
  requires: ['detect-attention'],
  options: {
    'sink-tokens': { type: 'number', default: 4, describe: 'leading tokens always read' },
    'local-window': { type: 'number', default: 256, describe: 'most recent tokens read' },
    layers: LAYERS_OPTION,
    'layer-options': LAYER_OPTIONS_OPTION,
    exact: EXACT_OPTION,
  },
  run(ctx) {
    const noSpans = ctx.model.graph.addInitializer(int64Tensor('attnpass_no_spans', [1, 1, 2], [0n, 0n]), 'attnpass_no_spans');
    const result = rewriteSites(ctx, 'window', (site, o) => ({
      op: 'SpanAttention',
      attributes: attributesFrom(
        { sink_tokens: num(o, 'sink-tokens'), local_window: o.exact === true ? WINDOW_ALL : num(o, 'local-window'), scale: site.scale, causal: site.causal ? 1 : 0 },
        new Set(['scale']),
      ),
      extraInputs: [noSpans],
    }));
    if (!result.modified) ctx.model.graph.removeInitializer(noSpans);
    return result;
  },
});
