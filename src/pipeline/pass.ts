/**
 * The pass API. A pass is a plain object: a name, a description, the options it reads, and `run`, which
 * changes the model through the IR's methods and says what it did. Built-in passes and plugins have
 * exactly this shape.
 */
import type { Model } from '../ir/model.js';

export interface PassOption {
  type: 'number' | 'string' | 'boolean';
  describe: string;
  default?: number | string | boolean;
  choices?: ReadonlyArray<string | number>;
}

export interface PassContext {
  readonly model: Model;
  /** this pass's options, defaults applied */
  readonly options: Readonly<Record<string, unknown>>;
  /** results of the passes that ran before, by pass name (e.g. 'detect-attention' → its `data`) */
  readonly results: ReadonlyMap<string, PassResult>;
  /** a line for the conversion report */
  report(line: string): void;
  /** progress of long work; quiet when not on a terminal */
  progress(done: number, total: number, label?: string): void;
}

export interface PassResult {
  /** whether the model changed */
  modified: boolean;
  /** counts worth reporting, e.g. { sitesRewritten: 12 } */
  counts?: Record<string, number>;
  /** anything later passes or the report need (e.g. the attention sites found) */
  data?: unknown;
  /** true when no remaining value's type can have changed (the pass only removed what nobody used): types are not inferred again */
  typesUnchanged?: boolean;
}

export interface Pass {
  /** unique name, used on the command line (--pass NAME) */
  name: string;
  /** one line for `attnpass passes` and --help */
  description: string;
  /** names of passes that must run first; the pipeline adds them when missing */
  requires?: string[];
  /** the options this pass reads, for the CLI and for defaults */
  options?: Record<string, PassOption>;
  run(ctx: PassContext): PassResult | Promise<PassResult>;
}

/** What a plugin module exports: `export default { name, passes: [...] }` or `export const passes = [...]`. */
export interface Plugin {
  name: string;
  passes: Pass[];
}

export function definePass(pass: Pass): Pass {
  return pass;
}
