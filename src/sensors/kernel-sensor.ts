import { errorMessage } from '../errors.ts';
import { startEbpf } from './ebpf-sensor.ts';
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

  const degrade = (reason: string): void => {
    opts.bus.publish({ kind: 'sensor.degraded', sandboxId: HOST_SANDBOX, sensor: 'kernel', reason });
    opts.onDegraded?.(reason);
  };
  const fallback = (): Promise<void> => {
    mode = 'procfs';
    const p = startProcfs({ bus: opts.bus, resolver: opts.resolver, intervalMs: opts.procfsIntervalMs ?? 20 });
    backend = p;
    return p.ready;
  };

  let ready: Promise<void>;
  if (want === 'procfs') {
    ready = fallback();
  } else {
    const e = startEbpf({
      bus: opts.bus, resolver: opts.resolver, kernelFilter: opts.kernelFilter ?? true,
      praetorLevel: opts.praetorLevel ?? 1, ...(opts.bpftrace ? { bpftrace: opts.bpftrace } : {}),
      ...(opts.kernelKill?.length && opts.kernelKillGroup ? { kernelKill: opts.kernelKill, kernelKillGroup: opts.kernelKillGroup, onKernelKillUnavailable: (why: string) => degrade(`kernel kill off (${why}); kernel_kill rules contain from user space`) } : {}),
      onDied: (reason) => {
        if (stopped) return;
        opts.bus.publish({ kind: 'sensor.failed', sandboxId: HOST_SANDBOX, sensor: 'ebpf', reason });
        degrade(`eBPF sensor died (${reason}); /proc scanner took over`);
        void fallback();
      },
    });
    backend = e;
    mode = 'ebpf';
    try {
      await e.ready;
      ready = Promise.resolve();
    } catch (err) {
      await e.stop();
      if (want === 'ebpf') throw err;
      degrade(`eBPF unavailable (${errorMessage(err)}); polling /proc instead, short-lived processes and refused connects may be missed`);
      ready = fallback();
    }
  }
  return {
    get mode() { return mode; },
    ready,
    async stop() { stopped = true; await backend?.stop(); },
  };
}
