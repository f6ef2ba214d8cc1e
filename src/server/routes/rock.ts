// ROCK compatibility: the admin sandbox routes under /apis/envs/sandbox/v1, wire-compatible with
// ROCK's request models (rock/admin/proto/request.py, rock/actions) and its RockResponse
// envelope, so ROCK's SDK and ROLL's ROCK environments work by pointing them at Praetor.
// Failures answer as ROCK does: HTTP 200, `status: "Failed"`, a ROCK code in `result`
// (rock-envelope.ts), so the SDKs' own typed exceptions and retry loops run. Another tenant's
// sandbox looks exactly like an unknown one. Every field ROCK's models or SDKs send is accepted
// (nullable, as pydantic's None); anything else is an unknown-field failure naming the field.
// Stop keeps the sandbox (frozen: no process runs, nothing is lost) until delete or restart.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PraetorError } from '../../errors.ts';
import { parseSize } from '../../util/index.ts';
import type { Principal } from '../auth.ts';
import type { SandboxEntry } from '../core.ts';
import { parseInput, principal, route, type Ctx } from '../http.ts';
import { commitSandbox, isImageName } from '../../sandbox/index.ts';
import { closeSession, execIn, openSession, readFile, runInSession, SandboxPath, SessionName, writeFile } from '../sandbox-ops.ts';
import { ROCK_SANDBOX_BASE, rockOk } from './rock-envelope.ts';

const BASE = ROCK_SANDBOX_BASE;
const opt = <T extends z.ZodType>(t: T, text: string) => t.nullable().optional().describe(text);
const SandboxId = z.string().trim().min(1, 'sandbox_id must not be blank').max(64).describe('sandbox id from start');

export const RockStartBody = z.object({
  image: z.string().trim().min(1).describe('image in Praetor\'s image cache, or `host` for the host\'s read-only userland'),
  image_os: opt(z.literal('linux'), 'only linux'),
  auto_clear_time_minutes: opt(z.number().int().min(0), 'destroy after this many idle minutes'),
  auto_clear_time: opt(z.number().int().min(0), 'same as auto_clear_time_minutes (sent by ROCK\'s SDK)'),
  pull: opt(z.enum(['never', 'always', 'missing']), 'accepted; images come from the local cache only'),
  memory: opt(z.string(), 'memory limit, e.g. 8g (default 8g)'),
  cpus: opt(z.number().positive(), 'CPUs (default 2)'),
  limit_cpus: opt(z.number().positive(), 'hard CPU limit; wins over cpus'),
  sandbox_id: opt(z.string(), 'ignored: Praetor assigns ids'),
  registry_username: opt(z.string(), 'ignored: no registry pulls'),
  registry_password: opt(z.string(), 'ignored: no registry pulls'),
  startup_timeout: opt(z.number().positive(), 'accepted; start returns once the sandbox can execute'),
  use_kata_runtime: opt(z.boolean(), 'true selects gVisor (runsc), Praetor\'s strong-isolation runtime'),
  auto_archive_seconds: opt(z.number().int().min(0), 'accepted, no archives'),
  auto_delete_seconds: opt(z.number().int().min(0), 'accepted, delete is immediate'),
  disk: opt(z.string(), 'writable layer size, e.g. 50G (default 1g)'),
  num_gpus: opt(z.number().min(0), 'GPUs (fractions round up)'),
  accelerator_type: opt(z.string(), 'accepted, any local GPU'),
}).strict().describe('ROCK SandboxStartRequest');

const IdBody = z.object({ sandbox_id: SandboxId }).strict();
const IdParams = z.object({ sandbox_id: SandboxId }).strict();
const CommitBody = z.object({
  sandbox_id: SandboxId,
  image_tag: z.string().trim().min(1, 'image_tag must not be blank').describe('name of the new image in Praetor\'s cache, e.g. my-env:v1'),
  username: opt(z.string(), 'accepted and discarded: Praetor never pushes to a registry'),
  password: opt(z.string(), 'accepted and discarded: Praetor never pushes to a registry'),
}).strict().describe('ROCK CommitRequest');
const TokenQuery = z.object({ account: z.string().optional().describe('accepted') }).strict();
const IdQuery = z.object({ sandbox_id: SandboxId, include_all_states: z.enum(['true', 'false', 'True', 'False']).optional().describe('accepted') }).strict();

export const RockExecuteBody = z.object({
  sandbox_id: SandboxId,
  command: z.union([z.string(), z.array(z.string()).min(1)]).describe('a string, or an argv list'),
  session_type: opt(z.literal('bash'), 'bash'),
  timeout: opt(z.number().positive(), 'seconds (default 1200); null means the default'),
  shell: opt(z.boolean(), 'run through /bin/sh -c (as subprocess.run shell=True)'),
  check: opt(z.boolean(), 'fail (422) when the exit code is not 0'),
  error_msg: opt(z.string(), 'prefix of the failure message when check fails'),
  env: opt(z.record(z.string(), z.string()), 'extra environment'),
  cwd: opt(z.string(), 'working directory'),
}).strict().describe('ROCK SandboxCommand');

const CreateSessionBody = z.object({
  sandbox_id: SandboxId,
  session_type: opt(z.literal('bash'), 'bash'),
  session: SessionName.nullable().optional(),
  startup_source: opt(z.array(SandboxPath), 'files sourced when the session starts'),
  env_enable: opt(z.boolean(), 'accepted'),
  env: opt(z.record(z.string(), z.string()), 'session environment'),
  remote_user: opt(z.string(), 'only the sandbox\'s agent user'),
  startup_timeout: opt(z.number().positive(), 'accepted'),
  max_read_size: opt(z.number().int().positive(), 'accepted'),
}).strict().describe('ROCK SandboxCreateBashSessionRequest');
const RunInSessionBody = z.object({
  sandbox_id: SandboxId,
  command: z.string().min(1).describe('command line'),
  session: SessionName.nullable().optional(),
  action_type: opt(z.literal('bash'), 'bash'),
  timeout: opt(z.number().positive(), 'seconds'),
  check: opt(z.enum(['silent', 'raise', 'ignore']), 'raise (default): a non-zero exit is a failure'),
  is_interactive_command: opt(z.boolean(), 'not supported when true'),
  is_interactive_quit: opt(z.boolean(), 'not supported when true'),
  error_msg: opt(z.string(), 'prefix of the failure message'),
  expect: opt(z.array(z.string()), 'not supported when non-empty'),
}).strict().describe('ROCK SandboxBashAction');
const CloseSessionBody = z.object({ sandbox_id: SandboxId, session: SessionName.nullable().optional(), session_type: opt(z.literal('bash'), 'bash') }).strict();
const ReadFileBody = z.object({
  sandbox_id: SandboxId, path: SandboxPath,
  encoding: opt(z.enum(['utf-8', 'utf8', 'UTF-8', 'latin-1', 'latin1', 'ascii']), 'text encoding (default utf-8)'),
  errors: opt(z.enum(['strict', 'replace', 'ignore']), 'decoding errors (default strict)'),
}).strict().describe('ROCK SandboxReadFileRequest');
const WriteFileBody = z.object({ sandbox_id: SandboxId, path: SandboxPath, content: z.string().describe('text content') }).strict().describe('ROCK SandboxWriteFileRequest');
const UploadBody = z.object({ file: z.unknown().describe('the file (multipart part)'), target_path: SandboxPath, sandbox_id: SandboxId }).describe('multipart form');

const ok = rockOk;
const fmtBytes = (n: number) => (n % 2 ** 30 === 0 ? `${n / 2 ** 30}g` : `${Math.round(n / 2 ** 20)}m`);

export function rockRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { core } = ctx;
  // ROCK's lifecycle per sandbox: running → stopped (stop) → running (restart) → deleted. A
  // stopped sandbox is frozen, not destroyed, so restart has something to restart; a frozen
  // cgroup runs nothing, so a stopped sandbox cannot mine or call out. Kept per id, dropped
  // when the sandbox ends (delete, idle reaper, containment).
  const life = new Map<string, { stopped: boolean; history: Array<{ from_state: string; to_state: string; event: string; timestamp: string }> }>();
  const lifeOf = (e: SandboxEntry) => {
    let l = life.get(e.sb.id);
    if (!l) {
      l = { stopped: false, history: [{ from_state: 'pending', to_state: 'running', event: 'start', timestamp: new Date(e.createdAt).toISOString() }] };
      life.set(e.sb.id, l);
      e.sb.onEnded(() => life.delete(e.sb.id));
    }
    return l;
  };
  const transition = (e: SandboxEntry, stopped: boolean, event: string) => {
    const l = lifeOf(e);
    const from = l.stopped ? 'stopped' : 'running';
    l.stopped = stopped;
    l.history.push({ from_state: from, to_state: stopped ? 'stopped' : 'running', event, timestamp: new Date().toISOString() });
  };
  // Commit tasks, one per sandbox (ROCK's GET commit/{id} reports the latest).
  const commits = new Map<string, { tenant: string; task: CommitTask }>();
  type CommitTask = { sandbox_id: string; image_tag: string; phase: 'RUNNING' | 'SUCCEEDED' | 'FAILED'; started_at: string; completed_at: string | null; exit_code: number | null; failed_stage: string | null; error_code: string | null; error_message: string | null };
  const get = (p: Principal, id: string): SandboxEntry => core.sandbox(p, id);
  const statusOf = (e: SandboxEntry) => {
    const l = e.sb.spec.labels;
    const life = lifeOf(e);
    const state = e.sb.state === 'destroyed' ? 'deleted' : life.stopped ? 'stopped' : 'running';
    const alive = state === 'running' && e.sb.state === 'running';
    const stopTime = life.stopped ? life.history.at(-1)!.timestamp : null;
    return {
      sandbox_id: e.sb.id, state, is_alive: alive,
      status: { image_pull: { status: 'success', message: 'local image cache' }, docker_run: { status: 'success', message: state } },
      port_mapping: {}, host_name: e.sb.spec.hostname ?? e.sb.id, host_ip: '127.0.0.1', image: e.sb.spec.image,
      // ROCK defaults the identity fields to "default" when their headers are absent; its
      // TypeScript SDK's status schema rejects null, so `start()` would never see the sandbox alive.
      metadata: {}, user_id: l.user_id ?? 'default', experiment_id: l.experiment_id ?? 'default', namespace: l.namespace ?? 'default',
      cpus: e.sb.spec.cpus, memory: fmtBytes(e.sb.spec.memoryBytes), disk: fmtBytes(e.sb.spec.diskBytes), num_gpus: e.sb.limits.gpus ?? 0,
      create_time: new Date(e.createdAt).toISOString(), start_time: new Date(e.createdAt).toISOString(), stop_time: stopTime,
      state_history: life.history, phase: e.phase, paused: e.sb.state === 'paused',
    };
  };
  const startResponse = (e: SandboxEntry) => ({ sandbox_id: e.sb.id, host_name: e.sb.spec.hostname ?? e.sb.id, host_ip: '127.0.0.1', cpus: e.sb.spec.cpus, memory: fmtBytes(e.sb.spec.memoryBytes), disk: fmtBytes(e.sb.spec.diskBytes), code: null, exit_code: null, failure_reason: null });

  const start = async (req: FastifyRequest) => {
    const p = principal(req);
    const b = parseInput(RockStartBody, req.body, 'body');
    const h = req.headers;
    const labels: Record<string, string> = {};
    for (const [k, hdr] of [['user_id', 'x-user-id'], ['experiment_id', 'x-experiment-id'], ['namespace', 'x-namespace']] as const) {
      const v = h[hdr];
      if (typeof v === 'string' && v.length <= 128) labels[k] = v;
    }
    const spec: Record<string, unknown> = {
      image: b.image, labels,
      runtime: b.use_kata_runtime ? 'runsc' : 'bwrap',
      cpus: b.limit_cpus ?? b.cpus ?? 2,
      memoryBytes: parseSize(b.memory ?? '8g', 'memory'),
      diskBytes: parseSize(b.disk ?? '1g', 'disk'),
      ...(b.num_gpus ? { gpus: Math.ceil(b.num_gpus) } : {}),
    };
    const e = await core.createSandbox(p, spec);
    lifeOf(e);
    const minutes = b.auto_clear_time_minutes ?? b.auto_clear_time;
    if (minutes) e.ttlSeconds = minutes * 60;
    return ok(startResponse(e));
  };
  route(app, ctx, { method: 'POST', path: `${BASE}/start`, tag: 'rock', summary: 'ROCK: start a sandbox; returns once it can execute', body: RockStartBody, errors: [404, 429, 503] }, start);
  route(app, ctx, { method: 'POST', path: `${BASE}/start_async`, tag: 'rock', summary: 'ROCK: start (same as start: the sandbox is ready when this returns)', body: RockStartBody, errors: [404, 429, 503] }, start);

  route(app, ctx, { method: 'GET', path: `${BASE}/is_alive`, tag: 'rock', summary: 'ROCK: liveness', query: IdQuery, errors: [404] }, async (req) => {
    const e = get(principal(req), parseInput(IdQuery, req.query, 'query').sandbox_id);
    return ok({ is_alive: statusOf(e).is_alive, message: e.sb.spec.hostname ?? e.sb.id });
  });
  route(app, ctx, { method: 'GET', path: `${BASE}/get_status`, tag: 'rock', summary: 'ROCK: status', query: IdQuery, errors: [404] }, async (req) => {
    return ok(statusOf(get(principal(req), parseInput(IdQuery, req.query, 'query').sandbox_id)));
  });
  route(app, ctx, { method: 'GET', path: `${BASE}/get_sandbox_statistics`, tag: 'rock', summary: 'ROCK: cgroup statistics', query: IdQuery, errors: [404] }, async (req) => {
    const e = get(principal(req), parseInput(IdQuery, req.query, 'query').sandbox_id);
    const u = e.sb.usage();
    return ok({ sandbox_id: e.sb.id, cpu: { usage_ms: u.cpuMs, limit: e.sb.spec.cpus }, mem: { usage_bytes: u.memBytes, peak_bytes: u.memPeakBytes, limit_bytes: e.sb.spec.memoryBytes }, pids: u.pids });
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/stop`, tag: 'rock', summary: 'ROCK: stop (freezes the sandbox; restart thaws it, delete destroys it)', body: IdBody, errors: [404, 409] }, async (req) => {
    const { sandbox_id } = parseInput(IdBody, req.body, 'body');
    const e = get(principal(req), sandbox_id);
    if (!lifeOf(e).stopped) {
      if (e.sb.state === 'running') await e.sb.pause();
      transition(e, true, 'stop');
    }
    return ok(`${sandbox_id} stopped`);
  });
  const restart = async (p: Principal, id: string) => {
    const e = get(p, id);
    if (lifeOf(e).stopped) {
      if (e.sb.state === 'paused') await e.sb.resume();
      transition(e, false, 'restart');
    }
    return ok(startResponse(e));
  };
  route(app, ctx, { method: 'POST', path: `${BASE}/restart`, tag: 'rock', summary: 'ROCK: restart a stopped sandbox (thaws it)', body: IdBody, errors: [404, 409] }, async (req) => {
    return restart(principal(req), parseInput(IdBody, req.body, 'body').sandbox_id);
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/sandboxes/:sandbox_id/restart`, tag: 'rock', summary: 'ROCK: restart (RESTful form)', errors: [404, 409] }, async (req) => {
    return restart(principal(req), parseInput(IdParams, req.params, 'path').sandbox_id);
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/delete`, tag: 'rock', summary: 'ROCK: delete (destroys; an unknown id succeeds, as in ROCK)', body: IdBody, errors: [] }, async (req) => {
    const p = principal(req);
    const { sandbox_id } = parseInput(IdBody, req.body, 'body');
    // ROCK's delete is idempotent: an unknown id is a success. Another tenant's id is unknown
    // here too, so this reveals nothing and destroys nothing of theirs.
    let e: SandboxEntry | undefined;
    try { e = get(p, sandbox_id); } catch (err) { if (!(err instanceof PraetorError && err.code === 'NOT_FOUND')) throw err; }
    if (e) await core.destroy(p, sandbox_id, 'deleted through ROCK API');
    return ok(`${sandbox_id} deleted`);
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/sandboxes/:sandbox_id/archive`, tag: 'rock', summary: 'ROCK: archive (not supported: answers Failed, as ROCK does when archiving is disabled)', errors: [404] }, async (req) => {
    get(principal(req), parseInput(IdParams, req.params, 'path').sandbox_id);
    throw new PraetorError('BAD_ARGUMENT', 'archive is not supported by Praetor', { hint: 'commit the sandbox as an image instead (POST commit), then delete it' });
  });
  route(app, ctx, { method: 'GET', path: `${BASE}/get_token`, tag: 'rock', summary: 'ROCK: OSS upload token (not supported: uploads go through upload)', query: TokenQuery, errors: [] }, async (req) => {
    parseInput(TokenQuery, req.query, 'query');
    throw new PraetorError('BAD_ARGUMENT', 'OSS tokens are not supported by Praetor: files never leave the host through object storage', { hint: 'upload files with POST upload (the SDKs fall back to it when OSS is not configured)' });
  });

  route(app, ctx, { method: 'POST', path: `${BASE}/commit`, tag: 'rock', summary: 'ROCK: commit the sandbox\'s filesystem as a new image (background task; poll GET commit/{id})', body: CommitBody, errors: [404, 409] }, async (req) => {
    const b = parseInput(CommitBody, req.body, 'body');
    const e = get(principal(req), b.sandbox_id);
    if (commits.get(e.sb.id)?.task.phase === 'RUNNING') throw new PraetorError('CONFLICT', `a commit of ${e.sb.id} is already running`, { hint: 'poll GET commit/{sandbox_id} until it ends' });
    if (!isImageName(b.image_tag)) {
      throw new PraetorError('BAD_ARGUMENT', `image_tag "${b.image_tag.slice(0, 200)}" is not a local image name`, { hint: 'use lowercase letters, digits, . _ - and an optional :tag (no registry host: Praetor keeps images in its local cache and never pushes)' });
    }
    if (e.sb.spec.image === 'host') throw new PraetorError('BAD_STATE', `sandbox ${e.sb.id} runs on the host's userland; there is no image layer to commit`, { hint: 'start the sandbox from an imported image to commit it' });
    const task: CommitTask = { sandbox_id: e.sb.id, image_tag: b.image_tag, phase: 'RUNNING', started_at: new Date().toISOString(), completed_at: null, exit_code: null, failed_stage: null, error_code: null, error_message: null };
    commits.set(e.sb.id, { tenant: e.tenant, task });
    if (commits.size > 10_000) commits.delete(commits.keys().next().value!);
    commitSandbox(core.manager, e.sb, b.image_tag).then(() => {
      Object.assign(task, { phase: 'SUCCEEDED', completed_at: new Date().toISOString(), exit_code: 0 });
    }, (err: unknown) => {
      const pe = err instanceof PraetorError ? err : undefined;
      Object.assign(task, { phase: 'FAILED', completed_at: new Date().toISOString(), exit_code: 1, failed_stage: 'commit', error_code: pe?.code ?? 'INTERNAL', error_message: err instanceof Error ? err.message : String(err) });
    });
    return ok({ ...task });
  });
  route(app, ctx, { method: 'GET', path: `${BASE}/commit/:sandbox_id`, tag: 'rock', summary: 'ROCK: status of the sandbox\'s latest commit', errors: [404] }, async (req) => {
    const { sandbox_id } = parseInput(IdParams, req.params, 'path');
    const p = principal(req);
    const c = commits.get(sandbox_id);
    // The task outlives the sandbox (commit, then delete, then poll), but only for its tenant.
    if (!c || (!p.admin && c.tenant !== p.tenant)) throw new PraetorError('NOT_FOUND', `no commit of ${sandbox_id}`, { hint: 'start one with POST commit' });
    return ok({ ...c.task });
  });

  route(app, ctx, { method: 'POST', path: `${BASE}/execute`, tag: 'rock', summary: 'ROCK: run a command (subprocess.run semantics)', body: RockExecuteBody, errors: [404, 409, 422, 504] }, async (req) => {
    const b = parseInput(RockExecuteBody, req.body, 'body');
    const e = get(principal(req), b.sandbox_id);
    const timeoutS = b.timeout ?? 1200;
    const r = await execIn(e.sb, { command: b.command, shell: b.shell ?? undefined, timeoutMs: Math.round(timeoutS * 1000), cwd: b.cwd ?? undefined, env: b.env ?? undefined });
    if (r.timedOut) throw new PraetorError('TIMEOUT', `Timeout (${timeoutS}s) exceeded while running command`, { hint: 'raise timeout' });
    if (b.check && r.code !== 0) throw new PraetorError('COMMAND_FAILED', `${b.error_msg ? `${b.error_msg}: ` : ''}command failed with exit code ${r.code}. Stdout: ${r.stdout.slice(-2000)} Stderr: ${r.stderr.slice(-2000)}`, { hint: 'set check false to get the exit code instead' });
    return ok({ stdout: r.stdout, stderr: r.stderr, exit_code: r.code });
  });

  route(app, ctx, { method: 'POST', path: `${BASE}/create_session`, tag: 'rock', summary: 'ROCK: open a bash session', body: CreateSessionBody, errors: [403, 404, 409] }, async (req) => {
    const b = parseInput(CreateSessionBody, req.body, 'body');
    const e = get(principal(req), b.sandbox_id);
    if (b.remote_user && b.remote_user !== 'agent') throw new PraetorError('FORBIDDEN', `sessions run as the sandbox's agent user, not ${b.remote_user}`, { hint: 'omit remote_user' });
    const name = b.session ?? 'default';
    openSession(e, name, b.env ? { env: b.env } : {});
    let output = '';
    for (const f of b.startup_source ?? []) output += (await runInSession(e, name, `source ${shellQuote(f)}`, 60_000)).output;
    return ok({ output, session_type: 'bash' });
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/run_in_session`, tag: 'rock', summary: 'ROCK: run a command in a session', body: RunInSessionBody, errors: [404, 409, 422, 504] }, async (req) => {
    const b = parseInput(RunInSessionBody, req.body, 'body');
    const e = get(principal(req), b.sandbox_id);
    if (b.is_interactive_command || b.is_interactive_quit || (b.expect?.length ?? 0) > 0) {
      throw new PraetorError('BAD_ARGUMENT', 'interactive session commands (is_interactive_*, expect) are not supported', { hint: 'run the program non-interactively' });
    }
    const r = await runInSession(e, b.session ?? 'default', b.command, b.timeout ? Math.round(b.timeout * 1000) : 1_200_000);
    if (r.timedOut) throw new PraetorError('TIMEOUT', `timeout (${b.timeout}s) exceeded while running ${b.command.slice(0, 200)}`, { hint: 'raise timeout' });
    if ((b.check ?? 'raise') === 'raise' && r.exitCode !== 0) {
      throw new PraetorError('COMMAND_FAILED', `${b.error_msg ? `${b.error_msg}: ` : ''}command ${JSON.stringify(b.command.slice(0, 200))} failed with exit code ${r.exitCode}. Output: ${r.output.slice(-2000)}`, { hint: 'set check to "ignore" to get the exit code instead' });
    }
    return ok({ session_type: 'bash', output: r.output, exit_code: r.exitCode, failure_reason: '', expect_string: '' });
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/close_session`, tag: 'rock', summary: 'ROCK: close a session', body: CloseSessionBody, errors: [404] }, async (req) => {
    const b = parseInput(CloseSessionBody, req.body, 'body');
    closeSession(get(principal(req), b.sandbox_id), b.session ?? 'default');
    return ok({ session_type: 'bash' });
  });

  route(app, ctx, { method: 'POST', path: `${BASE}/read_file`, tag: 'rock', summary: 'ROCK: read a text file', body: ReadFileBody, errors: [403, 404, 413] }, async (req) => {
    const b = parseInput(ReadFileBody, req.body, 'body');
    const data = await readFile(get(principal(req), b.sandbox_id).sb, b.path);
    const latin = b.encoding === 'latin-1' || b.encoding === 'latin1';
    if (latin) return ok({ content: data.toString('latin1') });
    if (b.encoding === 'ascii' && data.some((c) => c > 127) && (b.errors ?? 'strict') === 'strict') throw new PraetorError('BAD_ARGUMENT', `${b.path} is not ASCII`, { hint: 'read it with encoding utf-8 or errors replace' });
    try {
      let text = new TextDecoder('utf-8', { fatal: (b.errors ?? 'strict') === 'strict' }).decode(data);
      if (b.errors === 'ignore') text = text.replaceAll('\uFFFD', '');
      return ok({ content: text });
    } catch {
      throw new PraetorError('BAD_ARGUMENT', `${b.path} is not valid UTF-8`, { hint: 'read it with errors "replace", or use GET /v1/sandboxes/{id}/files?encoding=base64' });
    }
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/write_file`, tag: 'rock', summary: 'ROCK: write a text file', body: WriteFileBody, errors: [403, 404, 413] }, async (req) => {
    const b = parseInput(WriteFileBody, req.body, 'body');
    await writeFile(get(principal(req), b.sandbox_id).sb, b.path, Buffer.from(b.content, 'utf8'));
    return ok({ success: true, message: `Successfully write content to file ${b.path}` });
  });
  route(app, ctx, { method: 'POST', path: `${BASE}/upload`, tag: 'rock', summary: 'ROCK: upload a file (multipart: file, target_path, sandbox_id)', body: UploadBody, multipart: true, errors: [403, 404, 413, 415] }, async (req) => {
    const p = principal(req);
    if (!req.isMultipart()) throw new PraetorError('UNSUPPORTED_MEDIA_TYPE', 'upload needs a multipart/form-data body', { hint: 'send the fields file, target_path and sandbox_id as a form' });
    const fields: Record<string, string> = {};
    let file: { name: string; data: Buffer } | undefined;
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file' || file) throw new PraetorError('BAD_ARGUMENT', `unexpected file field "${part.fieldname}"`, { hint: 'send one file, in the field "file"' });
        file = { name: part.filename, data: await part.toBuffer() };
      } else if (part.fieldname === 'target_path' || part.fieldname === 'sandbox_id') fields[part.fieldname] = String(part.value);
      else throw new PraetorError('BAD_ARGUMENT', `unknown field "${part.fieldname}" in the form`, { hint: 'send file, target_path and sandbox_id' });
    }
    if (!file) throw new PraetorError('BAD_ARGUMENT', 'form field file is required', { hint: 'send the file in the field "file"' });
    const target = parseInput(SandboxPath, fields.target_path, 'form.target_path');
    const id = parseInput(SandboxId, fields.sandbox_id, 'form.sandbox_id');
    await writeFile(get(p, id).sb, target, file.data);
    return ok({ success: true, message: `Successfully uploaded file ${file.name} to ${target}`, file_name: file.name });
  });
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}
