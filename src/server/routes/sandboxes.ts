// /v1/sandboxes: the native control plane (create, get, list, delete, pause, resume, phase),
// buffered exec and live stats. Every id goes through core.sandbox(), which hides other
// tenants' sandboxes behind the same 404 as unknown ids.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { RUNTIME_NAMES } from '../../sandbox/index.ts';
import { parseSize } from '../../util/index.ts';
import type { SandboxEntry } from '../core.ts';
import { parseInput, principal, route, type Ctx } from '../http.ts';
import { execIn, stats } from '../sandbox-ops.ts';

const Size = z.union([z.number().int().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*[a-zA-Z]*\s*$/)])
  .describe('bytes, or a size such as 512m, 2g, 1GiB');

export const SandboxCreateBody = z.object({
  image: z.string().min(1).max(200).optional().describe('image from the server\'s image cache, or `host` for the host userland read-only'),
  runtime: z.enum(RUNTIME_NAMES as [string, ...string[]]).optional().describe('isolation runtime'),
  cpus: z.number().positive().max(1024).optional().describe('CPU quota in CPUs; fractions allowed'),
  memory: Size.optional(),
  disk: Size.optional(),
  pids: z.number().int().min(8).max(1 << 22).optional().describe('maximum processes and threads'),
  gpus: z.union([z.number().int().min(0), z.literal('all')]).optional().describe('GPUs granted'),
  env: z.record(z.string(), z.string()).optional().describe('extra environment for every command'),
  cwd: z.string().max(4096).optional().describe('default working directory'),
  labels: z.record(z.string(), z.string()).optional().describe('free-form labels'),
  policy: z.record(z.string(), z.unknown()).optional().describe('a Praetor policy document (as in the policy YAML); default: the tenant\'s'),
  phase: z.enum(['setup', 'agent']).optional().describe('network phase to start in (default: setup when the policy has one, else agent)'),
}).strict().describe('a sandbox to create');
export type SandboxCreate = z.infer<typeof SandboxCreateBody>;

export const SandboxView = z.object({
  id: z.string().describe('sandbox id'),
  tenant: z.string().describe('owning tenant'),
  state: z.enum(['running', 'paused', 'destroyed']).describe('lifecycle state'),
  image: z.string().describe('image'),
  runtime: z.string().describe('runtime'),
  phase: z.string().describe('network phase'),
  limits: z.record(z.string(), z.number().nullable()).describe('enforced limits'),
  labels: z.record(z.string(), z.string()).describe('labels'),
  episode_id: z.string().nullable().describe('episode the sandbox serves'),
  created_at: z.string().describe('ISO creation time'),
}).strict();

export const ExecBody = z.object({
  command: z.union([z.string().max(1 << 20), z.array(z.string().max(1 << 20)).min(1).max(4096)]).describe('argv list, or a string run by /bin/sh -c (split on whitespace instead when shell is false)'),
  shell: z.boolean().optional().describe('run the command through /bin/sh -c'),
  timeout_ms: z.number().int().positive().max(24 * 3600_000).optional().describe('kill the command after this long (exit 124)'),
  cwd: z.string().max(4096).optional().describe('working directory inside the sandbox'),
  env: z.record(z.string(), z.string()).optional().describe('extra environment'),
}).strict().describe('a command to run to completion');

export const ExecView = z.object({
  exec_id: z.string().describe('command id (tags its events)'),
  exit_code: z.number().int().nullable().describe('exit code, null when killed by a signal'),
  code: z.number().int().describe('shell-style status: exit code, 128+N for signal N, 124 on timeout'),
  signal: z.string().nullable().describe('signal that ended it'),
  timed_out: z.boolean().describe('killed by the timeout'),
  duration_ms: z.number().describe('wall time'),
  stdout: z.string().describe('standard output'),
  stderr: z.string().describe('standard error'),
}).strict();

const PhaseBody = z.object({
  phase: z.enum(['setup', 'agent']).describe('setup (package installs, the policy\'s setup allow-list) or agent (default-deny plus the agent allow-list)'),
}).strict();

const IdParams = z.object({ id: z.string().max(64).describe('sandbox id') }).strict();

export function sandboxView(e: SandboxEntry): z.infer<typeof SandboxView> {
  return {
    id: e.sb.id, tenant: e.tenant, state: e.sb.state, image: e.sb.spec.image, runtime: e.sb.spec.runtime,
    phase: e.phase, limits: e.sb.limits, labels: e.sb.spec.labels, episode_id: e.episodeId ?? null,
    created_at: new Date(e.createdAt).toISOString(),
  };
}

/** The sandbox spec for a create request (sizes parsed, names mapped). */
export function specOf(b: SandboxCreate): Record<string, unknown> {
  return {
    ...(b.image !== undefined ? { image: b.image } : {}),
    ...(b.runtime !== undefined ? { runtime: b.runtime } : {}),
    ...(b.cpus !== undefined ? { cpus: b.cpus } : {}),
    ...(b.memory !== undefined ? { memoryBytes: typeof b.memory === 'number' ? b.memory : parseSize(b.memory, 'memory') } : {}),
    ...(b.disk !== undefined ? { diskBytes: typeof b.disk === 'number' ? b.disk : parseSize(b.disk, 'disk') } : {}),
    ...(b.pids !== undefined ? { pids: b.pids } : {}),
    ...(b.gpus !== undefined ? { gpus: b.gpus } : {}),
    ...(b.env !== undefined ? { env: b.env } : {}),
    ...(b.cwd !== undefined ? { cwd: b.cwd } : {}),
    ...(b.labels !== undefined ? { labels: b.labels } : {}),
  };
}

export function execView(r: { execId: string; exitCode: number | null; code: number; signal: string | null; timedOut: boolean; durationMs: number; stdout: string; stderr: string }): z.infer<typeof ExecView> {
  return { exec_id: r.execId, exit_code: r.exitCode, code: r.code, signal: r.signal, timed_out: r.timedOut, duration_ms: Math.round(r.durationMs * 1000) / 1000, stdout: r.stdout, stderr: r.stderr };
}

export function sandboxRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { core } = ctx;
  const id = (req: { params: unknown }) => parseInput(IdParams, req.params, 'path').id;

  route(app, ctx, { method: 'POST', path: '/v1/sandboxes', tag: 'sandboxes', summary: 'create a sandbox; returns once it can execute', body: SandboxCreateBody, response: SandboxView, errors: [404, 409, 503] }, async (req) => {
    const b = parseInput(SandboxCreateBody, req.body, 'body');
    const e = await core.createSandbox(principal(req), specOf(b), { ...(b.policy !== undefined ? { policy: b.policy } : {}), ...(b.phase ? { phase: b.phase } : {}) });
    return sandboxView(e);
  });
  route(app, ctx, { method: 'GET', path: '/v1/sandboxes', tag: 'sandboxes', summary: 'list your sandboxes (admin: all)', response: z.object({ sandboxes: z.array(SandboxView).describe('sandboxes') }).strict() }, async (req) => {
    return { sandboxes: core.list(principal(req)).map(sandboxView) };
  });
  route(app, ctx, { method: 'GET', path: '/v1/sandboxes/:id', tag: 'sandboxes', summary: 'get a sandbox', response: SandboxView, errors: [404] }, async (req) => {
    return sandboxView(core.sandbox(principal(req), id(req)));
  });
  route(app, ctx, { method: 'DELETE', path: '/v1/sandboxes/:id', tag: 'sandboxes', summary: 'destroy a sandbox', errors: [404] }, async (req) => {
    const sid = id(req);
    await core.destroy(principal(req), sid);
    return { id: sid, state: 'destroyed' };
  });
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/pause', tag: 'sandboxes', summary: 'freeze every process of the sandbox', response: SandboxView, errors: [404, 409] }, async (req) => {
    const e = core.sandbox(principal(req), id(req));
    await e.sb.pause();
    return sandboxView(e);
  });
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/resume', tag: 'sandboxes', summary: 'thaw a paused sandbox', response: SandboxView, errors: [404, 409, 503] }, async (req) => {
    const e = core.sandbox(principal(req), id(req));
    // Not while the ledger cannot record: the ledger guard froze it, and thaws it on recovery.
    core.guard.ledger?.check();
    await e.sb.resume();
    return sandboxView(e);
  });
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/phase', tag: 'sandboxes', summary: 'switch the network phase (setup → agent → verifier)', body: PhaseBody, errors: [404, 409] }, async (req) => {
    const e = core.sandbox(principal(req), id(req));
    const { phase } = parseInput(PhaseBody, req.body, 'body');
    // A sandbox whose policy opens no destination has no network in any phase: recording the
    // phase is all there is to do. Otherwise the gateway switches its allow-list now.
    core.setPhase(e, phase);
    return { id: e.sb.id, phase };
  });
  route(app, ctx, { method: 'POST', path: '/v1/sandboxes/:id/exec', tag: 'sandboxes', summary: 'run a command to completion (buffered)', body: ExecBody, response: ExecView, errors: [404, 409] }, async (req) => {
    const e = core.sandbox(principal(req), id(req));
    const b = parseInput(ExecBody, req.body, 'body');
    return execView(await execIn(e.sb, { command: b.command, shell: b.shell, timeoutMs: b.timeout_ms, cwd: b.cwd, env: b.env }));
  });
  route(app, ctx, { method: 'GET', path: '/v1/sandboxes/:id/stats', tag: 'sandboxes', summary: 'live CPU, memory and process counts from the cgroup', errors: [404] }, async (req) => {
    return stats(core.sandbox(principal(req), id(req)));
  });
}
