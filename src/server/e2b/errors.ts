// E2B's error shapes. The control plane and envd's HTTP routes answer JSON `{code, message}`
// with `code` the HTTP status (E2B's OpenAPI `Error`); envd's RPCs answer Connect errors. The
// official SDK turns both into its typed errors (NotFoundError, AuthenticationError,
// RateLimitError, …), so the status and the Connect code are what a client reacts to, and the
// message says what Praetor did and how to fix it.
import { Code, ConnectError } from '@connectrpc/connect';
import { PraetorError, isPraetorError, type ErrorCode } from '../../errors.ts';

export interface E2bErrorBody { code: number; message: string; error_code?: string }

/** E2B's `Error`, plus Praetor's stable code in E2B's optional machine-readable `error_code`. */
export function e2bErrorBody(pe: PraetorError, status = pe.httpStatus): E2bErrorBody {
  return { code: status, message: pe.hint ? `${pe.message} (${pe.hint})` : pe.message, error_code: pe.code.toLowerCase() };
}

/**
 * Anything Praetor's E2B API does not build. 501 on purpose: the SDK reads 404 on some calls as
 * "already gone" and 409 on pause as "already paused", a silent success; 501 always raises.
 */
export function notSupported(what: string, hint = 'see docs/integrations/e2b.md for what Praetor supports'): PraetorError {
  return Object.assign(new PraetorError('BAD_STATE', `${what} is not supported by Praetor's E2B-compatible API`, { hint }), { e2bStatus: 501 });
}

export function statusOf(pe: PraetorError): number {
  return (pe as PraetorError & { e2bStatus?: number }).e2bStatus ?? pe.httpStatus;
}

const CONNECT_CODES: Partial<Record<ErrorCode, Code>> = {
  BAD_ARGUMENT: Code.InvalidArgument, MISSING_COMMAND: Code.InvalidArgument, BAD_POLICY: Code.InvalidArgument,
  NOT_FOUND: Code.NotFound, UNKNOWN_IMAGE: Code.NotFound,
  UNAUTHORIZED: Code.Unauthenticated, FORBIDDEN: Code.PermissionDenied, NOT_ROOT: Code.PermissionDenied,
  CONFLICT: Code.AlreadyExists, BAD_STATE: Code.FailedPrecondition,
  TOO_LARGE: Code.ResourceExhausted, RATE_LIMITED: Code.ResourceExhausted, QUOTA_EXCEEDED: Code.ResourceExhausted,
  TIMEOUT: Code.DeadlineExceeded,
};

/** A Connect error for an RPC; a ConnectError passes through, anything unknown is Internal. */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (isPraetorError(e)) {
    const code = (e as PraetorError & { e2bStatus?: number }).e2bStatus === 501 ? Code.Unimplemented : CONNECT_CODES[e.code] ?? Code.Internal;
    return new ConnectError(e.hint ? `${e.message} (${e.hint})` : e.message, code);
  }
  return new ConnectError('internal error (see the server log)', Code.Internal);
}

export function unimplemented(what: string): ConnectError {
  return new ConnectError(`${what} is not supported by Praetor's E2B-compatible envd (see docs/integrations/e2b.md)`, Code.Unimplemented);
}
