// One guarded run: a sandbox, its sensors, the rule engine and containment, the command, and a
// report. The CLI's `praetor run` and the arena both use it, so what the arena measures is what
// users run.
import type { PraetorEvent } from '../events/index.ts';
import { EventBus } from '../events/index.ts';
import { SandboxManager, type SandboxSpecInput } from '../sandbox/index.ts';
import { CgroupSampler } from '../sensors/cgroup-sampler.ts';
import { startGuard, type Guard } from './guard.ts';

/** Exit status of `praetor run` when Praetor contained the run (documented in the README). */
export const EXIT_CONTAINED = 125;

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

export async function runGuarded(req: RunRequest): Promise<RunReport> {
  const bus = new EventBus();
  const events: PraetorEvent[] = [];
  bus.subscribe((e) => events.push(e));
  // Refuse a bad spec before the slow part (the kernel sensor takes seconds to start).
  const probe = await SandboxManager.open({ stateDir: req.stateDir, gcOnOpen: false });
  probe.validate(req.spec);
  const guard: Guard = await startGuard({ bus, stateDir: req.stateDir, detect: req.detect, log: req.log, holdContained: true, ...(req.policyFile ? { policyFile: req.policyFile } : {}), ...(req.phase ? { phase: req.phase } : {}), ...(req.ledgerPath ? { ledgerPath: req.ledgerPath } : {}) });
  let manager: SandboxManager | undefined;
  try {
    manager = await SandboxManager.open({ stateDir: req.stateDir, bus, network: guard.network });
    const started = performance.now();
    const sb = await manager.create(guard.applyPolicy(req.spec));
    const timeoutMs = req.timeoutMs ?? (guard.policy?.sandbox?.timeout !== undefined ? guard.policy.sandbox.timeout * 1000 : undefined);
    const sampler = new CgroupSampler(bus, { id: sb.id, usage: () => sb.usage(), cpuLimit: sb.spec.cpus, memLimitBytes: sb.spec.memoryBytes, onCommandEnd: (fn) => sb.onCommandEnd(fn), pids: () => sb.cgroup.pids() });
    guard.watch(sb);
    const abort = () => { void sb.destroy('praetor interrupted'); };
    req.signal?.addEventListener('abort', abort, { once: true });
    let result;
    let usageAtEnd: ReturnType<typeof sb.usage> | undefined;
    const idlePids = sb.usage().pids; // the sandbox's own init, before the command
    try {
      const h = sb.spawn(req.argv, {
        onStdout: req.stdout, onStderr: req.stderr,
        ...(timeoutMs ? { timeoutMs } : {}),
      });
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
    } finally {
      req.signal?.removeEventListener('abort', abort);
      sampler.stop();
    }
    const usage = usageAtEnd ?? sb.usage();
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
    await manager?.close();
    await guard.close();
  }
}

function flat(e: PraetorEvent): FlatEvent {
  return { ...e } as FlatEvent;
}
