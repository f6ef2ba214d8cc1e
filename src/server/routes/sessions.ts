// /v1/sandboxes/{id}/sessions: shell sessions whose working directory, variables, functions and
// options persist between commands (ROCK's create_session/run_in_session). Each command runs in
// its own shell with an empty stdin unless `input` is given; see sandbox/session.ts.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseInput, principal, route, type Ctx } from '../http.ts';
import { closeSession, openSession, runInSession, SessionName } from '../sandbox-ops.ts';

const Params = z.object({ id: z.string().max(64).describe('sandbox id'), name: SessionName.optional() }).strict();
const CreateBody = z.object({
  name: SessionName.default('default'),
  env: z.record(z.string(), z.string()).optional().describe('environment of the shell'),
  cwd: z.string().max(4096).optional().describe('starting directory'),
}).strict();
const RunBody = z.object({
  command: z.string().min(1).max(1 << 20).describe('shell command line'),
  timeout_ms: z.number().int().positive().max(24 * 3600_000).optional().describe('interrupt after this long (exit 124)'),
  input: z.string().max(8 << 20).optional().describe('the command\'s stdin (UTF-8); without it stdin is empty'),
}).strict();
export const SessionRunView = z.object({
  output: z.string().describe('combined stdout and stderr'),
  exit_code: z.number().int().describe('exit status of the command'),
  timed_out: z.boolean().describe('interrupted by the timeout'),
}).strict();

export function sessionRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { core } = ctx;
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/sessions', tag: 'sessions', summary: 'open a named shell session', body: CreateBody, errors: [404, 409, 429] }, async (req) => {
    const p = parseInput(Params, req.params, 'path');
    const e = core.sandbox(principal(req), p.id);
    const b = parseInput(CreateBody, req.body ?? {}, 'body');
    openSession(e, b.name, { ...(b.env ? { env: b.env } : {}), ...(b.cwd ? { cwd: b.cwd } : {}) });
    return { sandbox_id: e.sb.id, name: b.name };
  });
  route(app, ctx, { method: 'GET', path: '/v1/sandboxes/:id/sessions', tag: 'sessions', summary: 'list open sessions', errors: [404] }, async (req) => {
    const p = parseInput(Params, req.params, 'path');
    const e = core.sandbox(principal(req), p.id);
    return { sessions: [...e.sessions.entries()].filter(([, s]) => !s.ended).map(([n]) => ({ name: n })) };
  });
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/sessions/:name/run', tag: 'sessions', summary: 'run a command in a session', body: RunBody, response: SessionRunView, errors: [404, 409] }, async (req) => {
    const p = parseInput(Params, req.params, 'path');
    const e = core.sandbox(principal(req), p.id);
    const b = parseInput(RunBody, req.body, 'body');
    const r = await runInSession(e, p.name!, b.command, b.timeout_ms, b.input);
    return { output: r.output, exit_code: r.exitCode, timed_out: r.timedOut };
  });
  route(app, ctx, { method: 'DELETE', path: '/v1/sandboxes/:id/sessions/:name', tag: 'sessions', summary: 'close a session (kills its running command)', errors: [404] }, async (req) => {
    const p = parseInput(Params, req.params, 'path');
    const e = core.sandbox(principal(req), p.id);
    closeSession(e, p.name!);
    return { sandbox_id: e.sb.id, name: p.name, closed: true };
  });
}
