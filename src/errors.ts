// Typed errors with stable codes. Every error a user can cause names the problem and the fix;
// the HTTP status for each code lives in one table so the server and CLI never disagree.

export const ERROR_CODES = {
  BAD_ARGUMENT: 400,
  BAD_SIZE: 400,
  BAD_POLICY: 400,
  BAD_RULE: 400,
  MISSING_COMMAND: 400,
  UNKNOWN_RUNTIME: 400,
  RUNTIME_UNAVAILABLE: 503,
  UNKNOWN_IMAGE: 404,
  BAD_IMAGE: 400,
  NO_GPU: 409,
  NOT_ROOT: 403,
  NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  BAD_STATE: 409,
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  COMMAND_FAILED: 422,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  TIMEOUT: 504,
  HOST_UNSUPPORTED: 500,
  SANDBOX_FAILED: 500,
  LEDGER_UNAVAILABLE: 503,
  CLUSTER_FULL: 503,
  SANDBOX_LOST: 503,
  LEDGER_TAMPERED: 500,
  INTERNAL: 500,
  GUARD_REFUSED: 403,
  GUARD_VERSION_MISMATCH: 409,
  GUARD_LOST: 503,
  GUARD_UNAVAILABLE: 503,
  // Cluster links (src/cluster/pki-*): a join token or a peer certificate that is refused.
  JOIN_TOKEN_INVALID: 401,
  JOIN_TOKEN_EXPIRED: 401,
  JOIN_TOKEN_USED: 409,
  CERT_INVALID: 401,
  CERT_EXPIRED: 401,
  CERT_WRONG_ROLE: 403,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PraetorError extends Error {
  readonly code: ErrorCode;
  /** How to fix it, in one sentence; printed after the message by the CLI. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PraetorError';
    this.code = code;
    this.hint = opts.hint;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

export function isPraetorError(e: unknown): e is PraetorError {
  return e instanceof PraetorError;
}

/** The message of any thrown value, for logs and events. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An unknown id, or another tenant's (the two look the same, so ids reveal nothing). */
export function notFound(what: string, id: string): PraetorError {
  return new PraetorError('NOT_FOUND', `no ${what} ${JSON.stringify(id.slice(0, 80))}`, { hint: `list yours with GET /v1/${what === 'episode' ? 'episodes' : 'sandboxes'}` });
}
