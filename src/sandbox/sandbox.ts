// A live sandbox: its init process (the control channel), its cgroup and its filesystems.
// Commands run through the init; pause/resume use the cgroup freezer; destroy kills the whole
// cgroup and removes every mount and directory, whatever state the sandbox was in.
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { PraetorError } from '../errors.ts';
import type { EventBus, EventInput } from '../events/index.ts';
import type { Cgroup, CgroupUsage } from './cgroup.ts';
import { decodeWaitStatus, type InitChannel } from './init-channel.ts';
import type { ProcessIdentity } from './pidfd.ts';
import type { SandboxSpec } from './spec.ts';
import { canaryAtPath, type CanaryRecord } from './canaries.ts';

export type SandboxState = 'running' | 'paused' | 'destroyed';

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** keep stdin open (write with the handle); closed at once otherwise. */
  stdin?: boolean;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** collect stdout/stderr into the result (default true unless callbacks are given). */
  collect?: boolean;
  /** a session shell's framing (see session.ts): the command reads `control` on fd 4, what it
   * writes on fd 5 comes to `onState`. Out of band of stdin/stdout, so the command cannot
   * swallow or forge it. */
  session?: { control: string; onState: (chunk: Buffer) => void };
  /** ids that tag the command's events (episode, step, tool call). */
  tags?: { episodeId?: string; step?: number; toolCallId?: string; modelCallId?: string };
}

export interface ExecResult {
  execId: string;
  exitCode: number | null;
  signal: string | null;
  /** shell-style code: exit code, or 128+N when killed by signal N, 124 on timeout, 127 when it could not start. */
  code: number;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  error?: string;
}

export interface ExecHandle {
  readonly execId: string;
  /** the command's pid inside the sandbox, once started. */
  readonly pid: Promise<number>;
  write(data: Buffer | string): void;
  closeStdin(): void;
  kill(signal?: NodeJS.Signals): void;
  readonly done: Promise<ExecResult>;
}

export interface SandboxDeps {
  id: string;
  spec: SandboxSpec;
  proc: ChildProcess;
  channel: InitChannel;
  cgroup: Cgroup;
  bus: EventBus;
  baseEnv: Record<string, string>;
  /** releases mounts, network, runtime leftovers and the state dir; idempotent. */
  release: () => void | Promise<void>;
  createdAt: number;
  limits: Record<string, number | null>;
  /** canary credentials planted in this sandbox (names, paths, hashes; never values) */
  canaries?: readonly CanaryRecord[];
  /** the runtime's own processes, recorded when the sandbox became ready (before any command). */
  runtimeProcesses?: readonly ProcessIdentity[];
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(osConstants.signals).map(([k, v]) => [v, k])) as Record<number, string>;

export class Sandbox {
  readonly id: string;
  readonly spec: SandboxSpec;
  readonly createdAt: number;
  readonly cgroup: Cgroup;
  #state: SandboxState = 'running';
  readonly #d: SandboxDeps;
  #execSeq = 0;
  #running = new Map<string, ExecHandle>();
  #destroying: Promise<void> | undefined;
  #lastActive = Date.now();
  #endedHandlers: Array<(reason: string) => void> = [];
  #commandEndHandlers = new Set<() => void>();

  constructor(d: SandboxDeps) {
    this.#d = d;
    this.id = d.id;
    this.spec = d.spec;
    this.createdAt = d.createdAt;
    this.cgroup = d.cgroup;
    d.proc.once('exit', () => {
      if (this.#state !== 'destroyed') void this.destroy('sandbox init exited');
    });
  }

  get state(): SandboxState { return this.#state; }
  get lastActive(): number { return this.#lastActive; }
  get runningCommands(): number { return this.#running.size; }
  /** host pid of the runtime process (the sandbox's outermost process). */
  get hostPid(): number | undefined { return this.#d.proc.pid; }
  get limits(): Record<string, number | null> { return this.#d.limits; }
  /** Canary credentials planted here: names, paths and hashes, never values. */
  get canaries(): readonly CanaryRecord[] { return this.#d.canaries ?? []; }
  /** The canary planted at this path (as the sandbox or the host sees it), if any. */
  canaryAt(path: string): string | undefined { return this.#d.canaries ? canaryAtPath(this.#d.canaries, path) : undefined; }
  /** The runtime's processes by identity (pid + start time): containment spares these and only these. */
  get runtimeProcesses(): readonly ProcessIdentity[] { return this.#d.runtimeProcesses ?? []; }

  onEnded(fn: (reason: string) => void): void { this.#endedHandlers.push(fn); }

  /** Called as each command ends, before its command.end event; returns an unsubscribe. */
  onCommandEnd(fn: () => void): () => void {
    this.#commandEndHandlers.add(fn);
    return () => this.#commandEndHandlers.delete(fn);
  }

  #publish(e: EventInput): void { this.#d.bus.publish(e); }

  /** Starts a command; returns at once with a handle. */
  spawn(argv: string[], opts: ExecOptions = {}): ExecHandle {
    if (this.#state === 'destroyed') throw new PraetorError('BAD_STATE', `sandbox ${this.id} is destroyed`, { hint: 'create a new sandbox' });
    if (this.#state === 'paused') throw new PraetorError('BAD_STATE', `sandbox ${this.id} is paused`, { hint: 'resume it first' });
    if (argv.length === 0 || argv[0] === '') throw new PraetorError('MISSING_COMMAND', 'no command given', { hint: 'pass the command and its arguments' });
    this.#lastActive = Date.now();
    const execId = `${this.id}.${++this.#execSeq}`;
    const env = { ...this.#d.baseEnv, ...this.spec.env, ...opts.env };
    const cwd = opts.cwd ?? this.spec.cwd;
    const collect = opts.collect ?? !(opts.onStdout || opts.onStderr);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const started = performance.now();
    const tags = opts.tags ?? {};
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let resolvePid!: (pid: number) => void;
    const pid = new Promise<number>((r) => { resolvePid = r; });
    let resolveDone!: (r: ExecResult) => void;
    const done = new Promise<ExecResult>((r) => { resolveDone = r; });
    // channel.exec runs outside any Promise executor so that when it throws (the init has ended,
    // a NUL byte in argv) the error reaches the caller synchronously, like the checks above, and
    // nothing is left behind: no #running entry that killAll/runningCommands would see forever,
    // and no command.start without its command.end (a consumer would count the command as live).
    const chanId = this.#d.channel.exec(
      { argv, cwd, env: Object.entries(env).map(([k, v]) => `${k}=${v}`), uid: this.spec.uid, gid: this.spec.uid, stdin: !!opts.stdin, ...(opts.session ? { control: opts.session.control } : {}) },
      {
        onStarted: (p) => resolvePid(p),
        onStdout: (c) => { if (collect) out.push(c); opts.onStdout?.(c); },
        onStderr: (c) => { if (collect) err.push(c); opts.onStderr?.(c); },
        ...(opts.session ? { onState: opts.session.onState } : {}),
        onExit: (status, error) => {
          if (timer) clearTimeout(timer);
          resolvePid(-1);
          const ws = status === null ? { code: null, signal: null } : decodeWaitStatus(status);
          const signal = ws.signal === null ? null : (SIGNAL_NAMES[ws.signal] ?? `SIG${ws.signal}`);
          const code = timedOut ? 124 : ws.code ?? (ws.signal !== null ? 128 + ws.signal : 127);
          const result: ExecResult = {
            execId, exitCode: ws.code, signal, code, timedOut,
            durationMs: performance.now() - started,
            stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(),
            ...(error ? { error } : {}),
          };
          this.#running.delete(execId);
          this.#lastActive = Date.now();
          for (const fn of this.#commandEndHandlers) fn();
          this.#publish({
            kind: 'command.end', sandboxId: this.id, execId, exitCode: result.exitCode, signal,
            timedOut, durationMs: result.durationMs, ...tags,
          });
          resolveDone(result);
        },
      },
    );
    // Handlers only fire on later pipe reads, so this still precedes the command's own events.
    this.#publish({ kind: 'command.start', sandboxId: this.id, execId, argv, cwd, ...tags });
    if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
      timer = setTimeout(() => { timedOut = true; this.#d.channel.signal(chanId, 9); }, opts.timeoutMs);
    }
    const handle: ExecHandle = {
      execId, pid, done,
      write: (d) => this.#d.channel.write(chanId, d),
      closeStdin: () => this.#d.channel.closeStdin(chanId),
      kill: (sig = 'SIGKILL') => this.#d.channel.signal(chanId, osConstants.signals[sig]),
    };
    this.#running.set(execId, handle);
    return handle;
  }

  /** Runs a command to completion. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const h = this.spawn(argv, opts);
    return h.done;
  }

  usage(): CgroupUsage { return this.cgroup.usage(); }

  /** Resolves once the kernel reports every process frozen. */
  async pause(): Promise<void> {
    if (this.#state !== 'running') throw new PraetorError('BAD_STATE', `sandbox ${this.id} is ${this.#state}, not running`, { hint: 'only a running sandbox can be paused' });
    await this.cgroup.freeze(true);
    this.#state = 'paused';
    this.#publish({ kind: 'sandbox.paused', sandboxId: this.id });
  }

  async resume(): Promise<void> {
    if (this.#state !== 'paused') throw new PraetorError('BAD_STATE', `sandbox ${this.id} is ${this.#state}, not paused`, { hint: 'only a paused sandbox can be resumed' });
    await this.cgroup.freeze(false);
    this.#state = 'running';
    this.#lastActive = Date.now();
    this.#publish({ kind: 'sandbox.resumed', sandboxId: this.id });
  }

  /** Kills every process of every command (the sandbox stays usable). */
  killAll(): void {
    for (const h of this.#running.values()) h.kill('SIGKILL');
  }

  destroy(reason = 'destroyed'): Promise<void> {
    this.#destroying ??= this.#destroy(reason);
    return this.#destroying;
  }

  async #destroy(reason: string): Promise<void> {
    this.#state = 'destroyed';
    // Kill first, then thaw (it may be paused, or held frozen by containment): a v1-frozen task
    // cannot die, and a thawed one must not run again.
    // cgroup.kill (or pidfd kills) and a bounded wait for the cgroup to empty; if something is
    // left, release() removes the cgroup with its own kill-and-retry and fails loudly.
    await this.cgroup.kill().catch(() => { /* release retries */ });
    await this.cgroup.freeze(false).catch(() => { /* gone */ });
    this.#d.proc.stdin?.destroy();
    await new Promise<void>((r) => {
      if (this.#d.proc.exitCode !== null || this.#d.proc.signalCode !== null) return r();
      const t = setTimeout(r, 2000);
      this.#d.proc.once('exit', () => { clearTimeout(t); r(); });
    });
    // release() runs the creation undo list, which already removes the cgroup (in its place in
    // the order: after the runtime's cleanup, before the mounts): removing it here too was a
    // second kill + wait + rmdir pass for nothing.
    await this.#d.release();
    this.#publish({ kind: 'sandbox.destroyed', sandboxId: this.id, reason });
    for (const fn of this.#endedHandlers) fn(reason);
  }
}
