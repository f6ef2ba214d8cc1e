// Messages between the Ledger (main thread) and the SQLite writer thread.
import { errorMessage, isPraetorError, PraetorError, type ErrorCode } from '../errors.ts';
import type { Flat } from './store.ts';

export type ToWorker =
  | { t: 'batch'; items: Flat }
  | { t: 'prune'; id: number; throughSeq: number }
  | { t: 'close' };

export type WireError = { code: ErrorCode; message: string; hint?: string };

export type FromWorker =
  | { t: 'ready'; ledgerId: string }
  | { t: 'ack'; acked: number }
  | { t: 'error'; err: WireError }
  | { t: 'pruned'; id: number; seq: number; err?: WireError }
  | { t: 'closed' };

export function serializeError(e: unknown): WireError {
  if (isPraetorError(e)) return e.hint === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, hint: e.hint };
  return { code: 'LEDGER_UNAVAILABLE', message: `ledger writer failed: ${errorMessage(e)}` };
}

export function deserializeError(w: WireError): PraetorError {
  return new PraetorError(w.code, w.message, w.hint === undefined ? {} : { hint: w.hint });
}
