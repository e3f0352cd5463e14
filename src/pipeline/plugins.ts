/** Loading plugin passes from ESM modules given on the command line (--plugin PATH). */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { fail } from '../errors.js';
import type { Pass } from './pass.js';
import { checkPassShape } from './manager.js';

/**
 * Imports a plugin module and returns its passes. Accepted exports: `default` (a pass, an array of
 * passes, or `{ name, passes }`) and/or a named `passes` array.
 */
export async function loadPlugin(path: string): Promise<Pass[]> {
  const file = resolve(path);
  if (!existsSync(file)) fail('plugin', `plugin ${file} does not exist.`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    fail('plugin', `plugin ${file} could not be loaded: ${err instanceof Error ? err.message : String(err)}. A plugin is an ES module (.mjs, or .js in a "type": "module" package).`, err);
  }
  const found: unknown[] = [];
  const take = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(take);
    else if (x && typeof x === 'object' && Array.isArray((x as { passes?: unknown }).passes)) (x as { passes: unknown[] }).passes.forEach(take);
    else if (x !== undefined) found.push(x);
  };
  take(mod.default);
  if (mod.passes !== mod.default) take(mod.passes);
  if (found.length === 0) fail('plugin', `plugin ${file} exports no passes. Export \`default\` (a pass, an array of passes, or { name, passes }) or a named \`passes\` array.`);
  found.forEach((p) => checkPassShape(p, `plugin ${file}`));
  return found as Pass[];
}
