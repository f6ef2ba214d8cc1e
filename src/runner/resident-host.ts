// What a resident guard (src/daemon) keeps warm for every run it serves: the kernel sensor, the
// GPU sensor and the compiled rule packs. Each run keeps its own event bus, rules, policy,
// containment and ledger (see guard.ts); this host only routes the shared sensors' events to the
// bus of the run whose sandbox they concern, so one run never sees another's events, and events
// about the sensors themselves (degraded, failed) reach every run, whose guard then fails closed.
import { readFileSync, statSync } from 'node:fs';
import { errorMessage } from '../errors.ts';
import { EventBus, type EventInput } from '../events/index.ts';
import { loadRules, type CompiledRuleSet } from '../rules/index.ts';
import { SandboxManager, WarmPool, type Sandbox, type SandboxSpecInput } from '../sandbox/index.ts';
import { HOST_SANDBOX, startGpuSensor, startKernelSensor, type GpuSensor, type KernelKillRule, type KernelSensor } from '../sensors/index.ts';

/** One run's link to the resident sensors. */
export interface HostAttachment {
  /** Routes the kernel's events for this sandbox (by its unified cgroup inode) to the run. */
  watch(sandboxId: string, cgroupId: number | undefined, hasGpuGrant: boolean, canaryAt?: (path: string) => string | undefined): void;
  unwatch(sandboxId: string): void;
  /**
   * Arms the shared sensor's kernel kill for a watched sandbox with this run's kernel_kill rules
   * (its mode and rule files are its own); returns why not when it cannot. unwatch disarms it.
   */
  armKernelKill(sandboxId: string, rules: readonly KernelKillRule[]): string | undefined;
  /** The shared sensor learns the credentials a watched sandbox holds (KernelSensor.knowCredentials). */
  knowCredentials(sandboxId: string, pids: readonly number[]): number | string;
  /** Stops routing to this run (its bus); idempotent. */
  detach(): void;
}

export interface ResidentHost {
  /** Resolves once the kernel sensor captures events; runs start their command only after it. */
  readonly ready: Promise<void>;
  /** Starts filling the warm pool (call after the start-up gc, which would reap it otherwise). */
  startPool(): Promise<void>;
  readonly sensorMode: () => 'ebpf' | 'procfs' | 'starting';
  /** The kernel sensor's catch-up (KernelSensor.caughtUp); false while it has not started. */
  readonly caughtUp: (ns: bigint, timeoutMs: number) => Promise<boolean>;
  /** What the shared sensors run below their best mode, for every run's report. */
  degraded(): string[];
  attach(bus: EventBus): HostAttachment;
  /**
   * A pre-created sandbox for a run that asks for the defaults (no limits, image, workspace or
   * network of its own), or undefined. Nothing has run in it; it is this run's alone.
   */
  takeWarm(spec: SandboxSpecInput, needsNetwork: boolean): Promise<Sandbox | undefined>;
  /** The shipped pack plus `files`, compiled once per set of files (and their mtimes). */
  loadRules(files: readonly string[]): Promise<CompiledRuleSet>;
  /** Stops the sensors. `wait: false` only signals them (their detach takes seconds). */
  close(opts?: { wait?: boolean }): Promise<void>;
}

export function startResidentHost(o: { log: (msg: string) => void; sensorMode?: 'auto' | 'ebpf' | 'procfs'; stateDir?: string; poolSize?: number }): ResidentHost {
  const hostBus = new EventBus({ onListenerError: (err) => o.log(`event routing failed: ${errorMessage(err)}`) });
  const runOf = new Map<string, EventBus>();
  const byCgroup = new Map<number, string>();
  const gpuGrant = new Map<string, boolean>();
  const canaries = new Map<string, (path: string) => string | undefined>();
  const buses = new Set<EventBus>();
  const degraded: string[] = [];
  const rulesCache = new Map<string, Promise<CompiledRuleSet>>();
  let kernel: KernelSensor | undefined;
  let gpu: GpuSensor | undefined;
  let pool: WarmPool | undefined;
  let poolManager: SandboxManager | undefined;
  let poolStart: Promise<void> | undefined;
  let closed = false;

  hostBus.subscribe((e) => {
    // Re-published on the run's own bus (which stamps its own id, keeps ts), so a run's evidence
    // ids all point into that run's event list.
    const input = e as unknown as EventInput;
    if (e.sandboxId === HOST_SANDBOX) { for (const b of buses) b.publish(input); return; }
    runOf.get(e.sandboxId)?.publish(input);
  });
  const resolver = {
    sandboxForCgroupId: (id: bigint | number) => byCgroup.get(Number(id)),
    sandboxForPid: (pid: number) => {
      try {
        const m = /\/praetor-[0-9a-f]+\/(sb-[0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
        return m && runOf.has(m[1]!) ? m[1] : undefined;
      } catch { return undefined; }
    },
    canaryAt: (sandboxId: string, path: string) => canaries.get(sandboxId)?.(path),
  };

  const ready = (async () => {
    const k = await startKernelSensor({
      bus: hostBus, resolver, ...(o.sensorMode ? { mode: o.sensorMode } : {}), kernelKill: true,
      onDegraded: (reason) => { degraded.push(`kernel sensor: ${reason}`); o.log(`degraded: kernel sensor: ${reason}`); },
    });
    kernel = k;
    await k.ready;
    if (closed) { void k.stop(); return; }
    // Start-up timings in the guard's log: the first run waits for this (issue 16's cold start).
    o.log(`kernel sensor ready (${k.mode}) ${Math.round(performance.now())} ms into the guard process`);
    if (k.mode !== 'ebpf' && !degraded.some((d) => d.startsWith('kernel sensor'))) degraded.push(`kernel sensor: ${k.mode} fallback`);
    gpu = await startGpuSensor({
      bus: hostBus,
      resolver: { ...resolver, hasGpuGrant: (id) => gpuGrant.get(id) ?? false },
      onError: (reason) => { degraded.push(`gpu sensor: ${reason}`); },
    });
  })();
  ready.catch((e: unknown) => o.log(`kernel sensor failed to start: ${errorMessage(e)}`));

  return {
    ready,
    startPool() {
      poolStart ??= (async () => {
        // The pool's sandboxes publish on the routing bus: once handed out and watched, their
        // events reach the run's bus like those of a sandbox the run created itself.
        if (!o.stateDir || (o.poolSize ?? 0) === 0 || closed) return;
        const m = await SandboxManager.open({ stateDir: o.stateDir, bus: hostBus, gcOnOpen: false });
        // Closed while the manager opened: nothing may be created after close (it would leak).
        if (closed) { await m.close(); return; }
        poolManager = m;
        pool = new WarmPool(m, {}, o.poolSize!);
        // One sandbox while bpftrace compiles (the first run's), the rest once the sensor is up:
        // on 2 cores each creation taken from the compile delays that first run (measured, cold
        // start: pool of 2 at once 3.1-5.2 s, one first 2.0-2.9 s).
        const p = pool;
        const logFill = (): void => { o.log(p.lastError ? `warm pool: ${errorMessage(p.lastError)}` : `warm pool: ${p.available} ready ${Math.round(performance.now())} ms into the guard process`); };
        void p.fill(1).then(logFill).then(() => ready.catch(() => undefined)).then(() => p.fill()).then(logFill);
      })();
      return poolStart;
    },
    sensorMode: () => kernel?.mode ?? 'starting',
    caughtUp: (ns, ms) => (kernel ? kernel.caughtUp(ns, ms) : Promise.resolve(false)),
    degraded: () => [...degraded],
    attach(bus) {
      buses.add(bus);
      const mine = new Set<string>();
      return {
        watch(id, cgroupId, grant, canaryAt) {
          mine.add(id); runOf.set(id, bus); gpuGrant.set(id, grant);
          if (canaryAt) canaries.set(id, canaryAt);
          if (cgroupId !== undefined) byCgroup.set(cgroupId, id);
        },
        unwatch(id) {
          // The kernel's view goes now (its cgroup is gone); the sandbox's own last events (a
          // warm sandbox's command.end after its destroy) still reach the run until it detaches.
          gpuGrant.delete(id);
          canaries.delete(id);
          for (const [cg, sid] of byCgroup) if (sid === id) { byCgroup.delete(cg); kernel?.armKernelKill(BigInt(cg), []); }
        },
        knowCredentials(id, pids) {
          const cg = [...byCgroup].find(([, sid]) => sid === id)?.[0];
          if (!kernel || cg === undefined) return kernel ? `sandbox ${id} has no unified cgroup` : 'the kernel sensor has not started';
          return kernel.knowCredentials(BigInt(cg), pids);
        },
        armKernelKill(id, rules) {
          if (!kernel) return 'the kernel sensor has not started';
          const cg = [...byCgroup].find(([, sid]) => sid === id)?.[0];
          return cg === undefined ? `sandbox ${id} has no unified cgroup to scope a kernel kill to` : kernel.armKernelKill(BigInt(cg), rules);
        },
        detach() {
          for (const id of mine) { this.unwatch(id); runOf.delete(id); }
          mine.clear();
          buses.delete(bus);
        },
      };
    },
    async takeWarm(spec, needsNetwork) {
      if (!pool || pool.available === 0 || needsNetwork) return undefined;
      if (Object.keys(spec).some((k) => k !== 'env')) return undefined;
      return pool.take(); // one is ready: handed out at once, the pool refills behind it
    },
    loadRules(files) {
      // Keyed by mtimes too: a user editing a rule file gets it on the next run, not at restart.
      const key = files.map((f) => { try { return `${f}@${statSync(f).mtimeMs}`; } catch { return `${f}@missing`; } }).join('\n');
      let p = rulesCache.get(key);
      if (!p) {
        p = loadRules(files);
        p.catch(() => rulesCache.delete(key)); // a bad file is reported to each run that names it
        if (rulesCache.size > 32) rulesCache.clear();
        rulesCache.set(key, p);
      }
      return p;
    },
    async close(opts = {}) {
      closed = true;
      // The pool's manager closes after the pool: it removes the instance's cgroup group once empty.
      // A pool still starting (its manager opening) is waited for, so its close sees the pool.
      const poolClosed = (poolStart ?? Promise.resolve()).catch(() => undefined).then(async () => { await pool?.close(); await poolManager?.close(); });
      const stops = [gpu?.stop(), kernel?.stop(), poolClosed];
      if (opts.wait !== false) await Promise.allSettled(stops);
    },
  };
}
