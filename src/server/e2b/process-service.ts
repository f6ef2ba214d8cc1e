// envd's process.Process over Connect: Start (server stream), Connect (reattach), List,
// SendInput, SendSignal, CloseStdin. Commands run through the sandbox's own spawn path, so every
// one is a Praetor command with its events, sensors, rules and containment; nothing here runs on
// the host. Like envd, a process outlives its stream (the SDK's `disconnect()` and background
// commands rely on it); it ends with the command or with the sandbox.
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { errorMessage } from '../../errors.ts';
import { nowNs } from '../../util/index.ts';
import { AsyncQueue } from './async-queue.ts';
import { checkUser, resolvePath, userFromBasic } from './envd-user.ts';
import { toConnectError, unimplemented } from './errors.ts';
import type { E2bProcess, E2bRegistry, E2bSandbox, ProcEvent } from './registry.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Process, ProcessEventSchema } from './gen/process/process_pb.js';

type EventOut = { event: MessageInitShape<typeof ProcessEventSchema> };

/** Output a stream may hold unsent for a slow client before the command is killed. */
export const MAX_STREAM_BUFFERED = 16 * 2 ** 20;
const DEFAULT_KEEPALIVE_S = 50;

export interface ProcessServiceOptions {
  registry: E2bRegistry;
  recordOf: (ctx: HandlerContext) => E2bSandbox;
  /** cap on the keepalive interval (ms); the client's Keepalive-Ping-Interval applies below it. */
  keepaliveMs?: number | undefined;
  /** resolves once every ledger record so far is durable: a command's end waits for it. */
  durable?: (() => Promise<void>) | undefined;
}

type Selector = { selector: { case: 'pid'; value: number } | { case: 'tag'; value: string } | { case: undefined; value?: undefined } } | undefined;

function find(r: E2bSandbox, sel: Selector): E2bProcess {
  const s = sel?.selector;
  let p: E2bProcess | undefined;
  if (s?.case === 'pid') p = r.procs.get(s.value);
  else if (s?.case === 'tag') p = [...r.procs.values()].find((x) => x.tag === s.value);
  else throw new ConnectError('process selector is required: give a pid or a tag', Code.InvalidArgument);
  if (!p) throw new ConnectError(`no running process ${s.case} ${JSON.stringify(s.value)} in sandbox ${r.id}`, Code.NotFound);
  return p;
}

function endEvent(registry: E2bRegistry, r: E2bSandbox, proc: E2bProcess, res: { exitCode: number | null; signal: string | null; error?: string }): ProcEvent {
  const status = res.exitCode !== null ? `exit status ${res.exitCode}` : `signal: ${res.signal === 'SIGKILL' ? 'killed' : (res.signal ?? 'unknown').toLowerCase()}`;
  // A command Praetor contained says which rule did it: the SDK shows this as the error.
  // Only a command that died of a signal (itself, or a child its shell reports as 128+N) can
  // have been contained; one that exited normally keeps its own status.
  const killed = res.exitCode === null || res.exitCode >= 128;
  const why = killed ? registry.containedBecause(r, proc.startedNs) : undefined;
  const error = why ?? res.error ?? (res.exitCode === 0 ? undefined : status);
  return { kind: 'end', exitCode: res.exitCode ?? -1, exited: res.exitCode !== null, status, ...(error ? { error } : {}) };
}

export function processService(o: ProcessServiceOptions): ServiceImpl<typeof Process> {
  const keepaliveMs = (ctx: HandlerContext) => {
    const asked = Number(ctx.requestHeader.get('keepalive-ping-interval'));
    const ms = (Number.isFinite(asked) && asked > 0 ? Math.min(asked, 300) : DEFAULT_KEEPALIVE_S) * 1000;
    return Math.max(100, o.keepaliveMs !== undefined ? Math.min(ms, o.keepaliveMs) : ms);
  };

  type Item = ProcEvent | { kind: 'keepalive' };
  const size = (e: Item) => ('data' in e ? e.data.length : 0);

  /** A queue fed by the process's events; attached before the command starts, so no early output is lost. */
  function subscribe(listeners: Set<(e: ProcEvent) => void>, kill: () => void) {
    const q = new AsyncQueue<Item>(MAX_STREAM_BUFFERED);
    const listener = (e: ProcEvent) => {
      if (!q.push(e, size(e))) {
        // A stalled reader: kill the command rather than buffer without bound, and say why.
        kill();
        q.push({ kind: 'end', exitCode: -1, exited: false, status: 'signal: killed', error: `killed by Praetor: over ${MAX_STREAM_BUFFERED} bytes of output were waiting for this client` });
        q.close();
      }
      if (e.kind === 'end') q.close();
    };
    listeners.add(listener);
    return { q, detach: () => listeners.delete(listener) };
  }

  /** One stream of a process: start, live output, keepalives, end. */
  async function* stream(pid: number, sub: ReturnType<typeof subscribe>, ctx: HandlerContext): AsyncGenerator<EventOut> {
    const timer = setInterval(() => sub.q.push({ kind: 'keepalive' }), keepaliveMs(ctx));
    try {
      yield { event: { event: { case: 'start' as const, value: { pid } } } };
      for (;;) {
        const e = await sub.q.next(ctx.signal, size);
        if (!e) return;
        if (e.kind === 'keepalive') yield { event: { event: { case: 'keepalive' as const, value: {} } } };
        else if (e.kind === 'end') {
          // The end event acknowledges the command: not before its records are durable.
          if (o.durable) await o.durable().catch((err: unknown) => { throw new ConnectError(`the command ended, and the ledger could not make its records durable: ${errorMessage(err)}`, Code.Unavailable); });
          yield { event: { event: { case: 'end' as const, value: { exitCode: e.exitCode, exited: e.exited, status: e.status, ...(e.error ? { error: e.error } : {}) } } } };
          return;
        } else yield { event: { event: { case: 'data' as const, value: { output: { case: e.kind, value: new Uint8Array(e.data) } } } } };
      }
    } finally {
      clearInterval(timer);
      sub.detach();
    }
  }

  return {
    async *start(req, ctx) {
      const r = o.recordOf(ctx);
      try { checkUser(userFromBasic(ctx.requestHeader.get('authorization'))); } catch (e) { throw toConnectError(e); }
      if (req.pty) throw unimplemented('a PTY (sandbox.pty)');
      const cfg = req.process;
      if (!cfg?.cmd) throw new ConnectError('process.cmd is required', Code.InvalidArgument);
      if (req.tag !== undefined && [...r.procs.values()].some((p) => p.tag === req.tag)) throw new ConnectError(`a process tagged ${JSON.stringify(req.tag)} is already running`, Code.AlreadyExists);
      // proto3 optional: unset means true (envd's default for older SDKs); 2.x sends false unless asked.
      const stdin = req.stdin ?? true;
      const cwd = cfg.cwd ? resolvePath(cfg.cwd) : undefined;
      const listeners = new Set<(e: ProcEvent) => void>();
      const emit = (e: ProcEvent) => { for (const l of listeners) l(e); };
      const startedNs = nowNs();
      let handle: ReturnType<typeof r.entry.sb.spawn> | undefined;
      const sub = subscribe(listeners, () => handle?.kill('SIGKILL'));

      try {
        handle = r.entry.sb.spawn([cfg.cmd, ...cfg.args], {
          stdin, env: { ...cfg.envs }, ...(cwd ? { cwd } : {}),
          onStdout: (c) => emit({ kind: 'stdout', data: c }),
          onStderr: (c) => emit({ kind: 'stderr', data: c }),
        });
      } catch (e) { sub.detach(); throw toConnectError(e); }
      const pid = await handle.pid;
      if (pid < 0) {
        sub.detach();
        const res = await handle.done;
        throw new ConnectError(`could not start ${cfg.cmd}: ${res.error ?? res.stderr.trim() ?? `exit ${res.code}`}`, Code.FailedPrecondition);
      }
      const proc: E2bProcess = {
        pid, tag: req.tag, handle, stdin, startedNs, listeners,
        config: { cmd: cfg.cmd, args: [...cfg.args], envs: { ...cfg.envs }, ...(cwd ? { cwd } : {}) },
      };
      r.procs.set(pid, proc);
      void handle.done.then(async (res) => {
        r.procs.delete(pid);
        // A kill in the kernel (a kernel_kill rule) ends the process before user space has
        // recorded the containment: give its record a bounded moment, so the SDK's error names
        // the rule instead of a bare "signal: killed".
        if (res.exitCode === null || res.exitCode >= 128) {
          for (let i = 0; i < 60 && !o.registry.containedBecause(r, proc.startedNs); i++) await new Promise((w) => setTimeout(w, 5));
        }
        emit(endEvent(o.registry, r, proc, res));
      }, (e: unknown) => { r.procs.delete(pid); emit({ kind: 'end', exitCode: -1, exited: false, status: 'error', error: errorMessage(e) }); });
      yield* stream(pid, sub, ctx);
    },

    async *connect(req, ctx) {
      const proc = find(o.recordOf(ctx), req.process as Selector);
      yield* stream(proc.pid, subscribe(proc.listeners, () => proc.handle.kill('SIGKILL')), ctx);
    },

    async list(_req, ctx) {
      const r = o.recordOf(ctx);
      return { processes: [...r.procs.values()].map((p) => ({ pid: p.pid, config: p.config, ...(p.tag !== undefined ? { tag: p.tag } : {}) })) };
    },

    async sendInput(req, ctx) {
      const p = find(o.recordOf(ctx), req.process as Selector);
      const input = req.input?.input;
      if (input?.case === 'pty') throw unimplemented('PTY input');
      if (input?.case !== 'stdin') throw new ConnectError('input.stdin is required', Code.InvalidArgument);
      if (!p.stdin) throw new ConnectError(`process ${p.pid} was started without stdin`, Code.FailedPrecondition);
      try { p.handle.write(Buffer.from(input.value)); } catch (e) { throw toConnectError(e); }
      return {};
    },

    async sendSignal(req, ctx) {
      const p = find(o.recordOf(ctx), req.process as Selector);
      const sig = req.signal === 9 ? 'SIGKILL' : req.signal === 15 ? 'SIGTERM' : undefined;
      if (!sig) throw new ConnectError('signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM', Code.InvalidArgument);
      p.handle.kill(sig);
      return {};
    },

    async closeStdin(req, ctx) {
      const p = find(o.recordOf(ctx), req.process as Selector);
      try { p.handle.closeStdin(); } catch (e) { throw toConnectError(e); }
      return {};
    },

    async update() { throw unimplemented('resizing a PTY (Process.Update)'); },
    async streamInput() { throw unimplemented('Process.StreamInput (client streaming; use sendStdin)'); },
  };
}
