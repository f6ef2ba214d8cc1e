import { errorMessage } from '../errors.ts';
import { EventBus } from '../events/index.ts';
import { discardPrestartedEbpf, startEbpf, type EbpfBackend } from './ebpf-sensor.ts';
import { ExecIdentity } from './exec-identity.ts';
import { noteExit, publishExec } from './exec-identity-publish.ts';
import { loadToolCatalog } from './known-tools.ts';
import { startPipeGraphScanner } from './pipe-graph-scan.ts';
import { TapBus } from './pipe-graph-tap.ts';
import { startProcfs } from './procfs-scanner.ts';
import { HOST_SANDBOX, type KernelSensor, type KernelSensorOptions } from './sensor-types.ts';

// Chooses the backend and keeps watching when it fails. Fail closed: if bpftrace dies while
// sandboxes run, `sensor.failed` tells the owner to contain them (what they did in the gap is
// unknown), and the /proc scanner takes over so that later sandboxes are still watched.

export async function startKernelSensor(opts: KernelSensorOptions): Promise<KernelSensor> {
  const want = opts.mode ?? 'auto';
  let mode: 'ebpf' | 'procfs' = 'procfs';
  let stopped = false;
  let backend: { stop(): Promise<void> } | undefined;
  let ebpf: EbpfBackend | undefined;
  // The backends' execs and connects also schedule the pipe-graph scan (reverse shells
  // assembled from FIFOs and pipes); its own events go to the real bus.
  const graph = startPipeGraphScanner({ bus: opts.bus, resolver: opts.resolver, onDegraded: (r) => opts.onDegraded?.(`pipe graph: ${r}`) });
  const bus = new TapBus(opts.bus, (e) => graph.observe(e));

  const degrade = (reason: string): void => {
    opts.bus.publish({ kind: 'sensor.degraded', sandboxId: HOST_SANDBOX, sensor: 'kernel', reason });
    opts.onDegraded?.(reason);
  };
  // Executable identity (proc.tool): the host's tools are hashed while bpftrace starts. Without
  // the catalog every exec still flows, without a tool, and the run says it is degraded.
  let identity: ExecIdentity | undefined;
  let learning: Promise<unknown> = Promise.resolve();
  if (opts.identity !== false) {
    try {
      identity = opts.identity ?? new ExecIdentity(loadToolCatalog());
      learning = identity.learnHostTools().catch((e: unknown) => degrade(`executable identity: cannot hash the host's tools (${errorMessage(e)}); proc.tool is known only by markers`));
    } catch (e) {
      degrade(`executable identity unavailable (${errorMessage(e)}); proc.tool and proc.sha256 are empty`);
    }
  }
  const fallback = (): Promise<void> => {
    mode = 'procfs';
    const p = startProcfs({ bus: identity ? identifyingRelay(bus, identity) : bus, resolver: opts.resolver, intervalMs: opts.procfsIntervalMs ?? 20 });
    backend = p;
    return p.ready;
  };

  let ready: Promise<void>;
  if (want === 'procfs') {
    void discardPrestartedEbpf(); // nobody will adopt it
    ready = fallback();
  } else {
    const e = startEbpf({
      bus: identity ? identifyingRelay(bus, identity) : bus, resolver: opts.resolver, kernelFilter: opts.kernelFilter ?? true,
      praetorLevel: opts.praetorLevel ?? 1, ...(opts.bpftrace ? { bpftrace: opts.bpftrace } : {}), onDegraded: degrade,
      ...(opts.kernelKill ? { kernelKill: true } : {}),
      onDied: (reason) => {
        if (stopped) return;
        opts.bus.publish({ kind: 'sensor.failed', sandboxId: HOST_SANDBOX, sensor: 'ebpf', reason });
        degrade(`eBPF sensor died (${reason}); /proc scanner took over`);
        void fallback();
      },
    });
    backend = e;
    ebpf = e;
    mode = 'ebpf';
    try {
      await e.ready;
      ready = Promise.resolve();
    } catch (err) {
      await e.stop();
      if (want === 'ebpf') { graph.stop(); throw err; }
      degrade(`eBPF unavailable (${errorMessage(err)}); polling /proc instead, short-lived processes and refused connects may be missed`);
      ready = fallback();
    }
  }
  await learning;
  return {
    get mode() { return mode; },
    ready,
    caughtUp: (ns, ms) => (mode === 'ebpf' && ebpf ? ebpf.caughtUp(ns, ms) : Promise.resolve(!stopped)),
    armKernelKill(sandboxCgroupId, rules) {
      if (mode !== 'ebpf' || !ebpf) return `the kernel sensor runs as ${mode}`;
      const table = ebpf.kernelKill();
      if (typeof table === 'string') return rules.length > 0 ? table : undefined;
      try { return table.set(sandboxCgroupId, rules); } catch (e) { return errorMessage(e); }
    },
    knowCredentials(sandboxCgroupId, pids) {
      if (mode !== 'ebpf' || !ebpf) return `the kernel sensor runs as ${mode}`;
      try { return ebpf.knowCredentials(sandboxCgroupId, pids); } catch (e) { return errorMessage(e); }
    },
    async stop() { stopped = true; graph.stop(); await backend?.stop(); },
  };
}

/**
 * Each backend publishes on a bus of its own; this relay adds the executable identity to its
 * execs on the way to the real bus, synchronously (the same turn of the event loop, the same
 * ts), so /proc/PID/exe is opened right after the backend's own /proc reads. One relay for both
 * backends keeps them from disagreeing about what `proc.tool` means.
 */
function identifyingRelay(out: EventBus, identity: ExecIdentity): EventBus {
  const relay = new EventBus();
  relay.subscribe((e) => {
    const { id: _id, ...input } = e;
    if (input.kind === 'process.exec') {
      const { kind: _k, ...exec } = input;
      // Never lose an exec to an identity failure: the rules still see it, without a tool.
      try { publishExec(out, identity, exec); } catch (err) {
        out.publish(input);
        out.publish({ kind: 'sensor.degraded', sandboxId: input.sandboxId, sensor: 'exec-identity', reason: `identity of ${input.path} failed: ${errorMessage(err)}` });
      }
      return;
    }
    if (input.kind === 'process.exit') noteExit(identity, input.pid);
    out.publish(input);
  });
  return relay;
}
