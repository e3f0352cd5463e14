/**
 * The one error type the library throws on purpose. Its message says what was wrong, where (file, field,
 * node, value) and what to do; the CLI prints it without a stack trace (unless --debug).
 */
export type ErrorCode =
  | 'not-onnx'
  | 'truncated'
  | 'io'
  | 'external-data'
  | 'invalid-model'
  | 'unsupported'
  | 'usage'
  | 'pass-failed'
  | 'verify-failed'
  | 'plugin';

export class AttnpassError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'AttnpassError';
  }
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new AttnpassError(code, message, cause === undefined ? undefined : { cause });
}
