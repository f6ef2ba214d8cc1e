// The guard around sandboxes: the policy, the egress gateway, the sensors, the rule engine and
// containment, wired to one event bus, and the ledger recording all of it. One guard serves one
// `praetor run` or one server. Fail closed: if a policy grants network but the gateway cannot
// start, or a ledger was asked for and cannot be written, nothing starts; if a sensor dies while
// enforcing, every watched sandbox is frozen and cut off, and an event says why.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { DEFAULT_LINK_POOL, noModelGateway, type ModelRoute } from '../net/index.ts';
import { parsePolicyFile, policyAllowsNothing, type Policy } from '../config/index.ts';
import { contain } from '../contain/index.ts';
import { PraetorError, errorMessage } from '../errors.ts';
import type { EventBus, PraetorEvent } from '../events/index.ts';
import { createRuleEngine, loadRules, type AlertEvent } from '../rules/index.ts';
import { type Sandbox, type SandboxNetworkProvider, type SandboxSpecInput } from '../sandbox/index.ts';
import { startGpuSensor, startKernelSensor, type KernelKillRule, type KernelSensor } from '../sensors/index.ts';
import { startNetwork, type GuardNetwork } from './guard-network.ts';
import { LedgerGuard } from './ledger-guard.ts';
import { trackSecretReads } from './secret-taint.ts';
import type { HostAttachment, ResidentHost } from './resident-host.ts';

export interface GuardOptions {
  bus: EventBus;
  stateDir: string;
  /** run sensors and rules (default true); off only for benchmarks of the bare runtime. */
  detect: boolean;
  policyFile?: string;
  policy?: Policy;
  phase?: 'setup' | 'agent';
  /** record the bus in this ledger (SQLite path or postgres:// URL); see ledger-guard.ts. */
  ledgerPath?: string;
  /** how long running sandboxes stay frozen while the ledger is down before they are destroyed. */
  ledgerGraceMs?: number;
  /** extra rule files (user tuning) on top of the shipped pack. */
  ruleFiles?: string[];
  /** always start the egress gateway (servers: sandboxes with per-request policies). */
  gateway?: boolean;
  /** the server's model gateway, offered to sandboxes whose policy sets network.modelGateway. */
  model?: ModelRoute;
  log: (msg: string) => void;
  /**
   * Keep a contained sandbox frozen for its owner to destroy (a `praetor run` and an episode end
   * when contained): nothing else in it — the rest of the agent's command — runs after the
   * verdict. The owner must destroy it (see `contained()`).
   */
  holdContained?: boolean | ((sb: Sandbox) => boolean);
  /** Called when a rule terminates an episode. */
  onTerminateEpisode?: (sandboxId: string, reason: string) => void;
  /**
   * The resident guard's warm sensors and rule cache (src/daemon): this guard then starts no
   * sensor of its own, only routes its sandboxes' events from the shared ones onto its bus.
   */
  host?: ResidentHost;
  /** Signal the kernel sensor to stop on close without waiting for its probes to detach. */
  quickStop?: boolean;
}

export interface Guard {
  readonly policy: Policy | undefined;
  readonly network: SandboxNetworkProvider | undefined;
  /** Policy defaults under the request (request values win). */
  applyPolicy(spec: SandboxSpecInput): SandboxSpecInput;
  /** Starts watching a sandbox (sensors, rules, containment). */
  watch(sb: Sandbox): void;
  /** Resolves when the sandbox has been contained; never rejects. */
  contained(sandboxId: string): Promise<void>;
  /** Switches a sandbox's network phase. */
  setPhase(sandboxId: string, phase: 'setup' | 'agent'): void;
  degraded(): string[];
  /** the ledger and its health, when one was asked for. */
  readonly ledger: LedgerGuard | undefined;
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface Watched { sb: Sandbox; cgroupId: number | undefined; contained: boolean; waiters: Array<() => void> }

export async function startGuard(o: GuardOptions): Promise<Guard> {
  const policy = o.policy ?? (o.policyFile ? parsePolicyFile(o.policyFile) : undefined);
  if (policy?.network?.modelGateway && !o.model) throw noModelGateway();
  const degraded: string[] = [];
  const watched = new Map<string, Watched>();
  const byCgroup = new Map<number, string>();
  const cleanups: Array<() => Promise<void> | void> = [];
  let attachment: HostAttachment | undefined;
  const closeAll = async () => { for (const c of cleanups.splice(0).reverse()) { try { await c(); } catch { /* keep closing */ } } };

  try {
    mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    let ledger: LedgerGuard | undefined;
    if (o.ledgerPath) {
      const { ledgerAt } = await import('../audit/index.ts');
      ledger = await LedgerGuard.open({
        bus: o.bus, stateDir: o.stateDir, at: ledgerAt(o.ledgerPath), log: o.log,
        sandboxes: () => [...watched.values()].map((w) => w.sb),
        ...(o.ledgerGraceMs !== undefined ? { graceMs: o.ledgerGraceMs } : {}),
      });
      const l = ledger;
      cleanups.push(() => l.close());
    }

    // Outbound bytes wait for the kernel sensor (net/catch-up-stream.ts): the resident host's, or
    // this guard's own once started (nothing in a sandbox runs before it is ready).
    let ownSensor: KernelSensor | undefined;
    let kernelKill: KernelKillRule[] = [];
    const catchUp = (ns: bigint, ms: number): Promise<boolean> => (o.host ? o.host.caughtUp(ns, ms) : ownSensor ? ownSensor.caughtUp(ns, ms) : Promise.resolve(false));
    const network: GuardNetwork | undefined = o.gateway || !policyAllowsNothing(policy)
      ? await startNetwork({ bus: o.bus, stateDir: o.stateDir, policy, phase: o.phase, ...(o.model ? { model: o.model } : {}), ...(o.detect ? { catchUp } : {}) })
      : undefined;
    if (network) cleanups.push(() => network.close());

    if (o.detect) {
      // The sandbox's own resolver and proxy live on the gateway's link addresses: traffic to
      // them is the gateway working, not internal probing.
      const tuning: string[] = [];
      if (network) {
        const file = `${o.stateDir}/rules-gateway.yaml`;
        const body = `# generated by praetor: the egress gateway's link pool\n- list: allowed_private_networks\n  items: [${DEFAULT_LINK_POOL}]\n  append: true\n`;
        // Rewritten only when it changed: the resident guard's rule cache is keyed by mtime.
        if ((() => { try { return readFileSync(file, 'utf8'); } catch { return undefined; } })() !== body) writeFileSync(file, body);
        tuning.push(file);
      }
      const ruleFiles = [...tuning, ...(policy?.rules?.files ?? []), ...(o.ruleFiles ?? [])];
      const rules = await (o.host ? o.host.loadRules(ruleFiles) : loadRules(ruleFiles));
      const engine = createRuleEngine({
        rules,
        mode: policy?.rules?.mode ?? 'enforce',
        onAlert: (alert, trigger) => { void onAlert(alert, trigger); },
      });
      cleanups.push(engine.attach(o.bus));
      // kernel_kill rules: the eBPF sensor kills their name sets at exec, in enforce mode only
      // (detect mode never acts), in each sandbox this guard watches (armed in watch()); the
      // engine still raises the alert and containment records it.
      kernelKill = (policy?.rules?.mode ?? 'enforce') === 'enforce'
        ? engine.rules.flatMap((r) => (r.kernelKill ? [{ rule: r.name, comms: r.kernelKill.comms, ...(r.kernelKill.stdioNet ? { stdioNet: true } : {}) }] : []))
        : [];
      // A credential read makes its secrets egress tokens (secret-taint.ts); only with a network.
      if (network) {
        const ownerTools = new Set(['credential_owner_binaries', 'extra_credential_owner_binaries'].flatMap((l) => rules.lists.get(l) ?? []));
        cleanups.push(trackSecretReads({ bus: o.bus, network, sandbox: (id) => watched.get(id)?.sb, ownerTools, log: o.log }));
      }
      if (o.host) {
        const a = o.host.attach(o.bus);
        attachment = a;
        cleanups.push(() => a.detach());
        await o.host.ready;
        for (const d of o.host.degraded()) if (!degraded.includes(d)) degraded.push(d);
      } else {
        const resolver = {
          sandboxForCgroupId: (id: bigint | number) => byCgroup.get(Number(id)),
          sandboxForPid: (pid: number) => sandboxOfPid(pid, watched),
          canaryAt: (sandboxId: string, path: string) => watched.get(sandboxId)?.sb.canaryAt(path),
        };
        const sensor: KernelSensor = await startKernelSensor({
          bus: o.bus, resolver, ...(kernelKill.length > 0 ? { kernelKill: true } : {}),
          onDegraded: (reason) => { degraded.push(`kernel sensor: ${reason}`); o.log(`degraded: kernel sensor: ${reason}`); },
        });
        await sensor.ready;
        ownSensor = sensor;
        if (sensor.mode !== 'ebpf' && !degraded.some((d) => d.startsWith('kernel sensor'))) degraded.push(`kernel sensor: ${sensor.mode} fallback`);
        // quickStop: bpftrace takes ~3 s to detach its probes; a CLI that has its report does not
        // wait for that (the signal is sent now, bpftrace finishes detaching on its own).
        cleanups.push(() => (o.quickStop ? void sensor.stop() : sensor.stop()));
        // GPU diversion: who uses the GPUs, and whether their sandbox holds a grant. Without a GPU
        // the sensor reports itself unavailable; that is not degraded, there is nothing to divert.
        const gpu = await startGpuSensor({
          bus: o.bus,
          resolver: { ...resolver, hasGpuGrant: (id) => { const sp = watched.get(id)?.sb.spec; return !!sp && sp.gpus !== 0; } },
          onError: (reason) => { degraded.push(`gpu sensor: ${reason}`); },
        });
        cleanups.push(() => gpu.stop());
      }
      // A sensor that dies while enforcing cannot vouch for anything it watched: contain all.
      cleanups.push(o.bus.subscribe((e) => {
        if (e.kind !== 'sensor.failed') return;
        degraded.push(`${e.sensor} failed: ${e.reason}`);
        for (const w of watched.values()) {
          // Recorded like any alert, so the report, the ledger and the dashboard show why.
          const alert = o.bus.publish({ kind: 'alert', sandboxId: w.sb.id, rule: 'Sensor failed while enforcing (fail closed)', priority: 'CRITICAL', tags: ['praetor'], output: `${e.sensor}: ${e.reason}`, evidence: [e.id], maturity: 'stable', actions: ['alert', 'freeze', 'isolate'] }) as AlertEvent;
          void onAlert(alert, e);
        }
      }));
    }

    async function onAlert(alert: AlertEvent, trigger: PraetorEvent): Promise<void> {
      const w = watched.get(alert.sandboxId);
      if (!w || alert.actions.every((a) => a === 'alert')) return;
      w.contained = true;
      let done!: () => void;
      const settled = new Promise<void>((r) => { done = r; });
      // Until the kill lands, what the offending tree connects cannot leave (SandboxNet.containing).
      network?.containing(w.sb.id, trigger.ts, alert.rule, settled);
      try {
        await contain(o.bus, {
          sandbox: w.sb,
          ...((typeof o.holdContained === 'function' ? o.holdContained(w.sb) : o.holdContained) ? { holdFrozen: true } : {}),
          ...(network ? { isolate: () => network.isolate(w.sb.id) } : {}),
          ...(o.onTerminateEpisode ? { terminateEpisode: (reason: string) => o.onTerminateEpisode!(w.sb.id, reason) } : {}),
        }, alert, trigger);
      } catch (e) {
        o.log(`containment of ${w.sb.id} failed: ${errorMessage(e)}; destroying it`);
        await w.sb.destroy('containment failed (fail closed)');
      } finally {
        done();
        for (const fn of w.waiters.splice(0)) fn();
      }
    }

    return {
      policy,
      network,
      applyPolicy: (spec) => ({ ...policySpec(policy), ...spec }),
      watch(sb) {
        ledger?.admit(sb);
        // gVisor serves the agent's syscalls in user space: the host's eBPF sees the sentry, not
        // the agent's execs and connects. Say so instead of implying full coverage.
        if (o.detect && sb.spec.runtime === 'runsc') {
          const note = 'runsc sandboxes: the kernel sensor cannot see inside gVisor (resource and GPU signals still apply)';
          if (!degraded.includes(note)) degraded.push(note);
        }
        let cgroupId: number | undefined;
        const dir = sb.cgroup.unifiedDir;
        if (dir) { try { cgroupId = statSync(dir).ino; byCgroup.set(cgroupId, sb.id); } catch { /* no unified hierarchy */ } }
        watched.set(sb.id, { sb, cgroupId, contained: false, waiters: [] });
        attachment?.watch(sb.id, cgroupId, sb.spec.gpus !== 0, (path) => sb.canaryAt(path));
        // Before the agent's first exec: its credentials by identity, so a link to one is one.
        if (o.detect && cgroupId !== undefined) {
          const pids = sb.runtimeProcesses.map((p) => p.pid);
          const known = attachment ? attachment.knowCredentials(sb.id, pids) : ownSensor?.knowCredentials(BigInt(cgroupId), pids);
          if (typeof known === 'string' && ownSensor?.mode !== 'procfs' && sb.spec.runtime !== 'runsc') o.log(`credentials of ${sb.id} not learned by identity: ${known}`);
        }
        // Armed before the sandbox runs anything of the agent's: watch() comes before its first exec.
        if (kernelKill.length > 0 && (attachment || ownSensor)) {
          const why = attachment ? attachment.armKernelKill(sb.id, kernelKill)
            : cgroupId === undefined ? 'no unified cgroup to scope it to' : ownSensor!.armKernelKill(BigInt(cgroupId), kernelKill);
          const note = why && `kernel sensor: kernel kill off (${why}); kernel_kill rules contain from user space`;
          if (note && !degraded.includes(note)) { degraded.push(note); o.log(`degraded: ${note}`); }
        }
        sb.onEnded(() => {
          if (!attachment && cgroupId !== undefined && kernelKill.length > 0) ownSensor?.armKernelKill(BigInt(cgroupId), []);
          attachment?.unwatch(sb.id);
          const w = watched.get(sb.id);
          if (w?.cgroupId !== undefined) byCgroup.delete(w.cgroupId);
          watched.delete(sb.id);
          for (const fn of w?.waiters.splice(0) ?? []) fn();
        });
      },
      contained(id) {
        const w = watched.get(id);
        if (!w) return new Promise(() => {});
        if (w.contained) return Promise.resolve();
        return new Promise<void>((r) => w.waiters.push(() => { if (w.contained) r(); }));
      },
      setPhase(id, phase) {
        if (!network) throw new PraetorError('BAD_STATE', `sandbox ${id} has no network to switch phases on`, { hint: 'give it a policy with network rules' });
        network.setPhase(id, phase);
      },
      degraded: () => [...degraded],
      ledger,
      flush: async () => { await ledger?.flush(); },
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** The policy's sandbox section as spec defaults (request values are spread over them). */
function policySpec(p: Policy | undefined): SandboxSpecInput {
  const s = p?.sandbox;
  const canaries = p?.canaries !== undefined ? { canaries: p.canaries } : {};
  if (!s) return canaries;
  return {
    ...canaries,
    ...(s.runtime ? { runtime: s.runtime } : {}), ...(s.image ? { image: s.image } : {}),
    ...(s.cpus !== undefined ? { cpus: s.cpus } : {}), ...(s.memory !== undefined ? { memoryBytes: s.memory } : {}),
    ...(s.pids !== undefined ? { pids: s.pids } : {}), ...(s.disk !== undefined ? { diskBytes: s.disk } : {}),
    ...(s.gpus !== undefined ? { gpus: s.gpus } : {}),
  };
}

function sandboxOfPid(pid: number, watched: Map<string, Watched>): string | undefined {
  try {
    const m = /\/praetor-[0-9a-f]+\/(sb-[0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    return m && watched.has(m[1]!) ? m[1] : undefined;
  } catch { return undefined; }
}
