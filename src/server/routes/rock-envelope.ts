// ROCK's response envelope (rock/actions/response.py: RockResponse) and its failure contract
// (rock/common/exception.py: handle_exceptions). ROCK answers a business failure with HTTP 200,
// `status: "Failed"`, the message in `error`, and `result: {code, failure_reason}` where `code`
// is one of ROCK's codes (rock/_codes.py). Both of ROCK's SDKs raise on any non-2xx response
// before reading the body, so a 4xx would skip their own typed exceptions (`raise_for_code`:
// BadRequestRockError, CommandRockError, InternalServerRockError) and their retry loops.
// Authentication (401) and rate limits (429) stay real HTTP statuses: they are the transport's
// answer, not the sandbox's, and a client must not mistake them for a sandbox result.
import type { PraetorError } from '../../errors.ts';

export const ROCK_SANDBOX_BASE = '/apis/envs/sandbox/v1';

/** ROCK's numeric codes: 2xxx ok, 4xxx client, 5xxx server, 6xxx command (rock/_codes.py). */
export const RockCode = { OK: 2000, BAD_REQUEST: 4000, INTERNAL_SERVER_ERROR: 5000, COMMAND_ERROR: 6000 } as const;

export function isRockSandboxPath(url: string): boolean {
  return url.startsWith(`${ROCK_SANDBOX_BASE}/`);
}

export const rockOk = (result: unknown) => ({ status: 'Success', message: null, error: null, result });

function rockCode(pe: PraetorError): number {
  if (pe.code === 'COMMAND_FAILED' || pe.code === 'TIMEOUT') return RockCode.COMMAND_ERROR;
  return pe.httpStatus < 500 ? RockCode.BAD_REQUEST : RockCode.INTERNAL_SERVER_ERROR;
}

/** The HTTP status and body ROCK would send for this failure. */
export function rockFailure(pe: PraetorError): { httpStatus: number; body: unknown } {
  const text = `${pe.code}: ${pe.message}${pe.hint ? ` (${pe.hint})` : ''}`;
  const transport = pe.httpStatus === 401 || pe.httpStatus === 429;
  return {
    httpStatus: transport ? pe.httpStatus : 200,
    body: { status: 'Failed', message: pe.message, error: text, result: transport ? null : { code: rockCode(pe), exit_code: null, failure_reason: text } },
  };
}
