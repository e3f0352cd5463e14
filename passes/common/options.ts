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
