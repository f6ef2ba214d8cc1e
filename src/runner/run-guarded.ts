// One guarded run: a sandbox, its sensors, the rule engine and containment, the command, and a
// report. The CLI's `praetor run` and the arena both use it, so what the arena measures is what
// users run.
import { EventBus, type PraetorEvent } from '../events/index.ts';
import { SandboxManager, type Sandbox, type SandboxSpecInput } from '../sandbox/index.ts';
import { CgroupSampler } from '../sensors/index.ts';
import { EXIT_CONTAINED } from '../exit-codes.ts';
import { startGuard, type Guard } from './guard.ts';
import type { ResidentHost } from './resident-host.ts';

export { EXIT_CONTAINED };

export interface RunRequest {
  argv: string[];
  stateDir: string;
  spec: SandboxSpecInput;
  policyFile?: string;
  phase?: 'setup' | 'agent';
  timeoutMs?: number;
  ledgerPath?: string;
  detect: boolean;
  stdout: (chunk: Buffer) => void;
  stderr: (chunk: Buffer) => void;
  log: (msg: string) => void;
  signal?: AbortSignal;
  /** The command's stdin (closed at once when absent). */
  stdin?: NodeJS.ReadableStream;
  /** The resident guard's warm sensors (src/daemon); absent: this run starts its own. */
  host?: ResidentHost;
  /** Reap dead owners' sandboxes first (default true; the resident guard reaps at its start). */
  gcOnOpen?: boolean;
  /** Do not wait for the kernel sensor's probes to detach after the run (a CLI about to exit). */
  quickStop?: boolean;
}

export type FlatEvent = Record<string, unknown> & { kind: string; id: string; ts: number };

export interface RunReport {
  sandboxId: string;
  exitCode: number;
  signal: string | null;
  oomKilled: boolean;
  timedOut: boolean;
  contained: boolean;
  durationMs: number;
  usage: { cpuMs: number; memPeakBytes: number; pidsPeak: number };
  events: FlatEvent[];
  alerts: FlatEvent[];
  containment: FlatEvent[];
  degraded: string[];
}

/** How long a run waits for the verdict on processes its command left running. */
const LEFTOVER_SETTLE_MS = 500;
/** The most a run waits for the kernel sensor to deliver its command's process records. */
const KERNEL_CATCH_UP_MS = 300;

/**
 * Resolves once the events of `sandboxId` since its last command.start hold at least one
 * process exit and an exit for every exec (every process the command ran was seen start and
 * end), or after `capMs`. The sandbox's own runtime started before the command, so it is not
 * counted.
 */
async function kernelCaughtUp(events: readonly PraetorEvent[], sandboxId: string, capMs: number): Promise<void> {
  const deadline = performance.now() + capMs;
  for (;;) {
    let since = -1;
    for (let i = events.length - 1; i >= 0; i--) if (events[i]!.kind === 'command.start' && events[i]!.sandboxId === sandboxId) { since = i; break; }
    let execs = 0; let exits = 0;
    for (let i = since + 1; i < events.length; i++) {
      const e = events[i]!;
      if (e.sandboxId !== sandboxId) continue;
      if (e.kind === 'process.exec') execs++; else if (e.kind === 'process.exit') exits++;
    }
    if (since >= 0 && exits > 0 && exits >= execs) return;
    if (performance.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function runGuarded(req: RunRequest): Promise<RunReport> {
  const bus = new EventBus();
  const events: PraetorEvent[] = [];
  bus.subscribe((e) => events.push(e));
  // Refuse a bad spec before the slow part (the kernel sensor takes seconds to start).
  const probe = await SandboxManager.open({ stateDir: req.stateDir, gcOnOpen: false });
  probe.validate(req.spec);
  const guard: Guard = await startGuard({ bus, stateDir: req.stateDir, detect: req.detect, log: req.log, holdContained: true, ...(req.policyFile ? { policyFile: req.policyFile } : {}), ...(req.phase ? { phase: req.phase } : {}), ...(req.ledgerPath ? { ledgerPath: req.ledgerPath } : {}), ...(req.host ? { host: req.host } : {}), ...(req.quickStop ? { quickStop: true } : {}) });
  let manager: SandboxManager | undefined;
  let warm: Sandbox | undefined;
  try {
    manager = await SandboxManager.open({ stateDir: req.stateDir, bus, network: guard.network, gcOnOpen: req.gcOnOpen ?? true });
    const started = performance.now();
    const spec = guard.applyPolicy(req.spec);
    // The resident guard's warm pool: a default sandbox already set up (nothing has run in it).
    warm = await req.host?.takeWarm(spec, guard.network !== undefined);
    if (warm) {
      const l = warm.limits as { cpus: number; memoryBytes: number; pids: number; diskBytes: number; gpus: number };
      bus.publish({ kind: 'sandbox.created', sandboxId: warm.id, image: warm.spec.image, runtime: warm.spec.runtime, cpus: l.cpus, memoryBytes: l.memoryBytes, pids: l.pids, diskBytes: l.diskBytes, gpus: l.gpus });
    }
    const sb = warm ?? await manager.create(spec);
    const timeoutMs = req.timeoutMs ?? (guard.policy?.sandbox?.timeout !== undefined ? guard.policy.sandbox.timeout * 1000 : undefined);
    const sampler = new CgroupSampler(bus, { id: sb.id, usage: () => sb.usage(), cpuLimit: sb.spec.cpus, memLimitBytes: sb.spec.memoryBytes, onCommandEnd: (fn) => sb.onCommandEnd(fn), pids: () => sb.cgroup.pids() });
    guard.watch(sb);
    const abort = () => { void sb.destroy('praetor interrupted'); };
    req.signal?.addEventListener('abort', abort, { once: true });
    let result: { code: number; signal: string | null; timedOut: boolean };
    let usageAtEnd: ReturnType<typeof sb.usage> | undefined;
    const idlePids = sb.usage().pids; // the sandbox's own init, before the command
    try {
      // Interrupted while the guard or the sandbox started: the command never runs.
      if (req.signal?.aborted) throw new Interrupted();
      const h = sb.spawn(req.argv, {
        onStdout: req.stdout, onStderr: req.stderr,
        ...(warm && spec.env ? { env: spec.env } : {}), // a warm sandbox was made without them
        ...(timeoutMs ? { timeoutMs } : {}),
        ...(req.stdin ? { stdin: true } : {}),
      });
      if (req.stdin) pipeStdin(req.stdin, h);
      // Once contained, the run is over: whatever the command left running goes with the sandbox.
      const containedThenDestroy = guard.contained(sb.id).then(async () => {
        usageAtEnd = sb.usage(); // before the cgroup goes with the sandbox
        await sb.destroy('contained');
        return h.done;
      });
      result = await Promise.race([h.done, containedThenDestroy]);
      // The command returned but left processes running (a backgrounded fork bomb, a daemonised
      // miner): they are what the agent did, and the sensors may still be delivering their
      // events. Give detection a bounded moment to judge them before the sandbox goes, or a run
      // that should end contained (exit 125) would report a clean exit.
      if (!usageAtEnd && sb.usage().pids > idlePids) {
        await Promise.race([containedThenDestroy, new Promise((r) => setTimeout(r, LEFTOVER_SETTLE_MS))]);
      }
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      result = { code: 0, signal: null, timedOut: false };
    } finally {
      req.signal?.removeEventListener('abort', abort);
      sampler.stop();
    }
    // Ctrl-C or SIGTERM on praetor: the shell's convention, 128 + the signal, whatever the
    // destroyed command's own status was.
    if (req.signal?.aborted) result = { ...result, code: interruptedCode(req.signal.reason) };
    const usage = usageAtEnd ?? sb.usage();
    // The kernel sensor's records trail the command (bpftrace drains per-CPU buffers; under a
    // burst of runs, by tens of ms). Once the sandbox is destroyed its cgroup maps to no run and
    // late records are dropped: a fast command's execs would go unjudged and unrecorded. Wait,
    // bounded, until the command's own process records are in.
    if (req.detect && !usageAtEnd) await kernelCaughtUp(events, sb.id, KERNEL_CATCH_UP_MS);
    // The command is done: whatever it left running dies with the sandbox.
    await sb.destroy(result.timedOut ? 'timeout' : 'command exited');
    await guard.flush();
    const mine = events.filter((e) => e.sandboxId === sb.id);
    const alerts = mine.filter((e) => e.kind === 'alert');
    const containment = mine.filter((e) => e.kind === 'containment');
    const contained = containment.some((c) => c.kind === 'containment' && c.ok && c.action !== 'alert');
    // Any OOM kill in the sandbox counts: a shell reports its child's OOM kill as exit 137.
    const oomKilled = usage.oomKills > 0;
    return {
      sandboxId: sb.id,
      exitCode: contained ? EXIT_CONTAINED : result.code,
      signal: result.signal,
      oomKilled,
      timedOut: result.timedOut,
      contained,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      usage: { cpuMs: Math.round(usage.cpuMs), memPeakBytes: usage.memPeakBytes, pidsPeak: Math.max(sampler.stats.pidsPeak, usage.pids) },
      events: mine.map(flat),
      alerts: alerts.map(flat),
      containment: containment.map(flat),
      degraded: guard.degraded(),
    };
  } finally {
    await warm?.destroy('run ended'); // not its manager's: destroyed here whatever happened
    await manager?.close();
    await guard.close();
  }
}

class Interrupted extends Error {}

function interruptedCode(reason: unknown): number {
  return reason === 'SIGINT' ? 130 : 143; // SIGTERM, a stopping guard, a vanished client
}

/** Forwards the caller's stdin to the command; writes after the command ended are dropped. */
function pipeStdin(from: NodeJS.ReadableStream, h: { write(d: Buffer): void; closeStdin(): void; done: Promise<unknown> }): void {
  let over = false;
  const onData = (c: Buffer | string) => { if (!over) { try { h.write(Buffer.isBuffer(c) ? c : Buffer.from(c)); } catch { over = true; } } };
  const onEnd = () => { if (!over) { try { h.closeStdin(); } catch { /* ended */ } } };
  from.on('data', onData);
  from.once('end', onEnd);
  void h.done.then(() => { over = true; from.off('data', onData); from.off('end', onEnd); });
}

function flat(e: PraetorEvent): FlatEvent {
  return { ...e } as FlatEvent;
}
