/** `ast`: every proven attention → BlockSparseAttention (a predictor keeps the key blocks worth computing). */
import { definePass } from '../../src/pipeline/pass.js';
import { rewriteSites } from '../common/rewrite.js';
import { attributesFrom } from '../common/attributes.js';
import { LAYERS_OPTION, LAYER_OPTIONS_OPTION, EXACT_OPTION, num } from '../common/options.js';

export const astPass = definePass({
  name: 'ast',
  description: 'Rewrite attention into BlockSparseAttention: per layer, head and query block, keep sink, local and top-scoring key blocks',
  requires: ['detect-attention'],
  options: {
    'block-size': { type: 'number', default: 64, describe: 'block size in tokens (16–256, a power of two)' },
    density: { type: 'number', default: 0.25, describe: 'fraction of candidate key blocks kept per query block (0–1]' },
    'mass-threshold': { type: 'number', default: 0, describe: 'keep the fewest blocks whose estimated softmax mass reaches this (0 = use --density)' },
    'sink-blocks': { type: 'number', default: 1, describe: 'leading key blocks always kept' },
    'local-blocks': { type: 'number', default: 1, describe: 'key blocks up to the diagonal always kept' },
    layers: LAYERS_OPTION,
    'layer-options': LAYER_OPTIONS_OPTION,
    exact: EXACT_OPTION,
  },
  run(ctx) {
    return rewriteSites(ctx, 'ast', (site, o) => ({
      op: 'BlockSparseAttention',
      attributes: attributesFrom(
        {
          block_size: num(o, 'block-size'),
          density: o.exact === true ? 1 : num(o, 'density'),
          mass_threshold: o.exact === true ? 0 : num(o, 'mass-threshold'),
          sink_blocks: num(o, 'sink-blocks'),
          local_blocks: num(o, 'local-blocks'),
          scale: site.scale,
          causal: site.causal ? 1 : 0,
        },
        new Set(['density', 'mass_threshold', 'scale']),
      ),
    }));
  },
});
