/** Options several rewrite passes share, and reading them. */
import { fail } from '../../src/errors.js';
import type { PassOption } from '../../src/pipeline/pass.js';

export const LAYERS_OPTION: PassOption = { type: 'string', describe: 'only these attention layers, e.g. 0,2,5-7 (default: all)' };
export const EXACT_OPTION: PassOption = { type: 'boolean', default: false, describe: "use the operator's exact setting (equals dense attention; proves the rewrite)" };

export function num(options: Readonly<Record<string, unknown>>, key: string): number {
  const v = Number(options[key]);
  if (!Number.isFinite(v)) fail('usage', `--${key} must be a number; got '${options[key]}'.`);
  return v;
}

export const LAYER_OPTIONS_OPTION: PassOption = {
  type: 'string',
  describe: 'per-layer option overrides as JSON, e.g. {"0":{"density":0.1},"3":{"density":0.5}} (attnpass calibrate writes these)',
};

/** Options a layer override may not set: they choose the layers, not a layer's setting. */
const NOT_PER_LAYER = new Set(['layers', 'layer-options']);

/**
 * The `layer-options` overrides by layer index, checked: a JSON string (from the command line) or an
 * object (from the library), each key a layer index, each value options this pass declares.
 */
export function parseLayerOptions(options: Readonly<Record<string, unknown>>): Map<number, Record<string, unknown>> {
  const given = options['layer-options'];
  const out = new Map<number, Record<string, unknown>>();
  if (given === undefined || given === null || given === '') return out;
  let parsed: unknown = given;
  if (typeof given === 'string') {
    try {
      parsed = JSON.parse(given);
    } catch (err) {
      fail('usage', `--layer-options is not JSON (${err instanceof Error ? err.message : String(err)}); write e.g. --layer-options '{"0":{"density":0.1}}'.`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('usage', `--layer-options must be a JSON object keyed by layer index, e.g. {"0":{"density":0.1}}.`);
  for (const [key, overrides] of Object.entries(parsed)) {
    if (!/^\d+$/.test(key)) fail('usage', `--layer-options: '${key}' is not a layer index; keys are layer numbers as 'attnpass inspect' lists them.`);
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) fail('usage', `--layer-options: layer ${key} must map to an object of options, e.g. {"density":0.1}.`);
    for (const name of Object.keys(overrides)) {
      if (NOT_PER_LAYER.has(name) || !(name in options)) {
        const known = Object.keys(options).filter((k) => !NOT_PER_LAYER.has(k));
        fail('usage', `--layer-options: layer ${key} sets '${name}', which is not a per-layer option of this pass; use one of ${known.join(', ')}.`);
      }
    }
    out.set(Number(key), overrides as Record<string, unknown>);
  }
  return out;
}
