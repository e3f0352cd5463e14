/** Runs an ordered list of passes over a model, validating after each when asked. */
import { AttnpassError, fail } from '../errors.js';
import type { Model } from '../ir/model.js';
import { inferModel } from '../ir/infer.js';
import { assertValid, type CustomOpCheck } from '../validate/index.js';
import type { Pass, PassContext, PassResult } from './pass.js';

export interface PassRun {
  name: string;
  result: PassResult;
  millis: number;
}

export interface RunOptions {
  /** options by pass name */
  options?: Record<string, Record<string, unknown>>;
  /** validate the model after every pass (tests do) */
  validateEach?: boolean;
  /** the model's types are already inferred (e.g. by validating it): skip the inference before the first pass */
  inferred?: boolean;
  customOps?: CustomOpCheck;
  report?: (line: string) => void;
  progress?: (done: number, total: number, label?: string) => void;
}

export class PassRegistry {
  private readonly passes = new Map<string, Pass>();

  constructor(passes: Iterable<Pass> = []) {
    for (const p of passes) this.add(p);
  }

  add(pass: Pass, origin = 'built-in'): void {
    checkPassShape(pass, origin);
    if (this.passes.has(pass.name)) fail('plugin', `a pass named '${pass.name}' already exists (from ${origin}); pass names must be unique.`);
    this.passes.set(pass.name, pass);
  }

  get(name: string): Pass {
    const p = this.passes.get(name);
    if (!p) fail('usage', `no pass named '${name}'. Known passes: ${[...this.passes.keys()].join(', ')} (run 'attnpass passes').`);
    return p;
  }

  has(name: string): boolean {
    return this.passes.has(name);
  }

  list(): Pass[] {
    return [...this.passes.values()];
  }

  /** The passes to run for `names`, each preceded by what it requires (once, in order). */
  plan(names: string[]): Pass[] {
    const out: Pass[] = [];
    const visiting = new Set<string>();
    const visit = (name: string): void => {
      if (out.some((p) => p.name === name)) return;
      if (visiting.has(name)) fail('plugin', `passes require each other in a cycle through '${name}'.`);
      visiting.add(name);
      const pass = this.get(name);
      for (const r of pass.requires ?? []) visit(r);
      visiting.delete(name);
      out.push(pass);
    };
    names.forEach(visit);
    return out;
  }
}

export function checkPassShape(pass: unknown, origin: string): asserts pass is Pass {
  const p = pass as Partial<Pass> | null;
  if (!p || typeof p !== 'object') fail('plugin', `${origin}: a pass must be an object with name, description and run(); got ${typeof pass}.`);
  if (typeof p.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.name)) fail('plugin', `${origin}: a pass needs a 'name' of lowercase letters, digits and dashes; got ${JSON.stringify(p.name)}.`);
  if (typeof p.description !== 'string') fail('plugin', `${origin}: pass '${p.name}' needs a 'description' string.`);
  if (typeof p.run !== 'function') fail('plugin', `${origin}: pass '${p.name}' needs a run(ctx) function.`);
}

function withDefaults(pass: Pass, given: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(pass.options ?? {})) out[k] = given[k] ?? spec.default;
  for (const [k, v] of Object.entries(given)) if (v !== undefined) out[k] = v;
  return out;
}

/** Runs the passes in order. Types are inferred before the first pass and after each that changed them, so they are current when it returns. */
export async function runPasses(model: Model, passes: Pass[], options: RunOptions = {}): Promise<PassRun[]> {
  const results = new Map<string, PassResult>();
  const runs: PassRun[] = [];
  if (!options.inferred) inferModel(model);
  for (const pass of passes) {
    const ctx: PassContext = {
      model,
      options: withDefaults(pass, options.options?.[pass.name]),
      results,
      report: (line) => options.report?.(line),
      progress: (done, total, label) => options.progress?.(done, total, label ?? pass.name),
    };
    const start = performance.now();
    let result: PassResult;
    try {
      result = await pass.run(ctx);
    } catch (err) {
      if (err instanceof AttnpassError) throw err;
      throw new AttnpassError('pass-failed', `pass '${pass.name}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!result || typeof result.modified !== 'boolean') fail('plugin', `pass '${pass.name}' must return { modified: boolean, ... }.`);
    results.set(pass.name, result);
    runs.push({ name: pass.name, result, millis: performance.now() - start });
    if (result.modified && !result.typesUnchanged) inferModel(model);
    if (options.validateEach) assertValid(model, { customOps: options.customOps, context: `after pass '${pass.name}'` });
  }
  return runs;
}
