/** Error codes the CLI, API and logs share; each maps to an HTTP status and a CLI exit code. */
export type ErrorCode =
  | 'BAD_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RANGE_FULL'
  | 'CORRUPT_VALUE'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'INTERNAL';

const httpStatus: Record<ErrorCode, number> = {
  BAD_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RANGE_FULL: 409,
  CORRUPT_VALUE: 500,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INTERNAL: 500,
};

export class YcError extends Error {
  readonly code: ErrorCode;
  /** Worth retrying as is (etcd unreachable, lost a race), as opposed to a request that will always fail. */
  readonly retryable: boolean;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { retryable?: boolean; detail?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'YcError';
    this.code = code;
    this.retryable = opts.retryable ?? (code === 'UNAVAILABLE' || code === 'TIMEOUT');
    this.detail = opts.detail;
  }

  get httpStatus(): number {
    return httpStatus[this.code];
  }
}

export const badInput = (message: string, detail?: Record<string, unknown>): YcError =>
  new YcError('BAD_INPUT', message, detail ? { detail } : {});

export const notFound = (message: string): YcError => new YcError('NOT_FOUND', message);

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function isYcError(err: unknown, code?: ErrorCode): err is YcError {
  return err instanceof YcError && (code === undefined || err.code === code);
}
