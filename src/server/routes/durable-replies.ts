// Acknowledged means recorded: a reply (an exec's result, a step's observation, a tool call's
// answer, a create's id, a file written) leaves only once every ledger record appended before
// it is durable. Threat: a process killed (SIGKILL, OOM killer, power cut of a node) right after
// answering would otherwise lose the records of what it had just acknowledged, so the trainer
// holds a step, and a reward for it, that the ledger cannot trace (issue 14's `recordsLost`:
// the ledger batches records for ~5 ms and the reply used not to wait for that batch).
//
// The wait is one group commit, not one fsync per call: flush() hands the pending batch to the
// writer at once, and everything other calls append while that commit runs joins the next one
// (audit/loop.ts), so concurrent calls share their fsyncs. A call that appended nothing waits
// only for what is already in flight. When the ledger cannot record, a successful change is not
// sent: the caller gets LEDGER_UNAVAILABLE (503) instead, and the guard holds the sandboxes
// (fail closed); reads still answer.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PraetorError, isPraetorError } from '../../errors.ts';
import { isRockSandboxPath, rockFailure } from './rock-envelope.ts';

/** Resolves once every record appended so far is durable (the guard's ledger flush). */
export type Durable = () => Promise<void>;

/** The body and status a failure leaves with: ROCK's envelope on its paths, {error} elsewhere. */
export function errorReply(url: string, pe: PraetorError): { status: number; body: unknown } {
  if (isRockSandboxPath(url)) { const f = rockFailure(pe); return { status: f.httpStatus, body: f.body }; }
  if (url.startsWith('/apis/')) return { status: pe.httpStatus, body: { status: 'Failed', message: pe.message, error: `${pe.code}: ${pe.message}${pe.hint ? ` (${pe.hint})` : ''}`, result: null } };
  return { status: pe.httpStatus, body: { error: pe.toJSON() } };
}

export function notRecorded(cause: unknown): PraetorError {
  if (isPraetorError(cause) && cause.code === 'LEDGER_UNAVAILABLE') return cause;
  return new PraetorError('LEDGER_UNAVAILABLE', 'the call ran, and the ledger could not make its records durable', {
    hint: 'fix the ledger storage (disk space, permissions, database); the sandbox is held until it records again', cause,
  });
}

/**
 * Every reply of `app` (but the paths `skip` names: health and metrics must answer while the
 * ledger is down) waits for the ledger. `shape` builds the failure body for this app's callers.
 */
export function durableReplies(app: FastifyInstance, o: { durable: Durable; skip?: (path: string) => boolean; shape?: (req: FastifyRequest, pe: PraetorError) => { status: number; body: unknown } }): void {
  const shape = o.shape ?? ((req, pe) => errorReply(req.url, pe));
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    // An error reply acknowledges nothing, and a read reports state: neither waits (a read must
    // not pay for a commit in flight, and the API keeps answering reads while the ledger is
    // down: the outage is in /healthz, the held sandboxes read `paused`).
    if (reply.statusCode >= 400 || req.method === 'GET' || req.method === 'HEAD' || o.skip?.(req.url.split('?')[0]!)) return payload;
    try {
      await o.durable();
    } catch (e) {
      // A change must not leave unrecorded.
      const r = shape(req, notRecorded(e));
      (payload as { destroy?: () => void } | null)?.destroy?.();
      reply.removeHeader('content-encoding');
      void reply.code(r.status).header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify(r.body);
    }
    return payload;
  });
}
