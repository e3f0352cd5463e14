/** `att`: every proven attention → TiledAttention (adaptive tensor tiling of K/V, recomputed per layer). */
import { definePass } from '../../src/pipeline/pass.js';
import { fail } from '../../src/errors.js';
import { rewriteSites } from '../common/rewrite.js';
import { attributesFrom } from '../common/attributes.js';
import { LAYERS_OPTION, LAYER_OPTIONS_OPTION, EXACT_OPTION, num } from '../common/options.js';

const SCORERS = { 'key-norm': 0, probe: 1 } as const;

export const attPass = definePass({
  name: 'att',
  description: 'Rewrite attention into TiledAttention: important key blocks stay exact, the rest are pooled into medium tiles or one summary each',
  requires: ['detect-attention'],
  options: {
    'block-size': { type: 'number', default: 64, describe: 'block size in tokens (16–256, a power of two)' },
    'fine-fraction': { type: 'number', default: 0.25, describe: 'fraction of key blocks kept at token resolution' },
    'medium-fraction': { type: 'number', default: 0.25, describe: 'fraction of key blocks pooled into medium tiles' },
    'medium-tile': { type: 'number', default: 8, describe: 'tokens per medium tile (divides the block size)' },
    'sink-blocks': { type: 'number', default: 1, describe: 'leading key blocks always exact' },
    'local-blocks': { type: 'number', default: 1, describe: "blocks up to the query's own read exactly (≥ 1)" },
    scorer: { type: 'string', default: 'key-norm', choices: Object.keys(SCORERS), describe: 'token importance: key norm, or attention mass of probe queries' },
    layers: LAYERS_OPTION,
    'layer-options': LAYER_OPTIONS_OPTION,
    exact: EXACT_OPTION,
  },
  run(ctx) {
    return rewriteSites(ctx, 'att', (site, o) => ({
      op: 'TiledAttention',
      attributes: attributesFrom(
        {
          block_size: num(o, 'block-size'),
          fine_fraction: o.exact === true ? 1 : num(o, 'fine-fraction'),
          medium_fraction: o.exact === true ? 0 : num(o, 'medium-fraction'),
          medium_tile: num(o, 'medium-tile'),
          sink_blocks: num(o, 'sink-blocks'),
          local_blocks: num(o, 'local-blocks'),
          scorer: scorerOf(o),
          scale: site.scale,
          causal: site.causal ? 1 : 0,
        },
        new Set(['fine_fraction', 'medium_fraction', 'scale']),
      ),
    }));
  },
});

function scorerOf(options: Readonly<Record<string, unknown>>): number {
  const scorer = SCORERS[String(options.scorer) as keyof typeof SCORERS];
  if (scorer === undefined) fail('usage', `--scorer must be one of ${Object.keys(SCORERS).join(', ')}; got '${options.scorer}'.`);
  return scorer;
}
