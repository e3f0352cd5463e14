/** How the CLI reports failures: one paragraph on stderr, a stack trace only with --debug. */
import { AttnpassError } from '../src/errors.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, verify: 3 } as const;

export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof AttnpassError) {
    process.stderr.write(`attnpass: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    if (debug && err.cause instanceof Error && err.cause.stack) process.stderr.write(`caused by: ${err.cause.stack}\n`);
    return err.code === 'usage' ? EXIT.usage : err.code === 'verify-failed' ? EXIT.verify : EXIT.failure;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`attnpass: internal error: ${message}\nThis is a bug in attnpass; run again with --debug for the stack trace and report it.\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return EXIT.failure;
}
