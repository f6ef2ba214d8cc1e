// What works on this host and what runs degraded: the facts behind `praetor status`, the run
// report's `degraded` list and the dashboard's warnings.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { errorMessage } from '../errors.ts';
import { HostInfo, probeHost, RUNTIME_NAMES, runtimeFor } from '../sandbox/index.ts';

export interface Check { name: string; ok: boolean; detail: string; degraded?: boolean }

export async function hostStatus(stateDir: string): Promise<{ ok: boolean; checks: Check[]; degraded: string[] }> {
  const checks: Check[] = [];
  const isRoot = process.getuid?.() === 0;
  checks.push({ name: 'root', ok: isRoot, detail: isRoot ? 'running as root' : 'praetor needs root (namespaces, cgroups, nftables)' });
  try {
    const host = probeHost(stateDir);
    const c = host.cgroups;
    checks.push({ name: 'cgroups', ok: true, detail: `${c.mode}: v1 [${Object.keys(c.v1).join(', ')}]${c.unified ? `, unified at ${c.unified}${c.v2Controllers.size ? ` [${[...c.v2Controllers].join(', ')}]` : ''}` : ''}` });
    checks.push({ name: 'sandbox-init', ok: true, detail: host.initPath });
  } catch (e) {
    checks.push({ name: 'sandbox', ok: false, detail: errorMessage(e) });
  }
  for (const r of RUNTIME_NAMES) {
    const why = runtimeFor(r).unavailableReason();
    checks.push({ name: `runtime:${r}`, ok: !why, detail: why ?? 'available', ...(why && r !== 'bwrap' ? { degraded: true } : {}) });
  }
  // The gateway runs `nft` from PATH: check the same lookup, so status and gateway agree.
  const nft = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'nft')).find((p) => existsSync(p));
  checks.push({ name: 'nftables', ok: nft !== undefined, detail: nft ? `available (egress gateway): ${nft}` : 'missing: apt-get install nftables' });
  const gpus = HostInfo.gpuDevices().filter((d) => /nvidia\d+$/.test(d));
  checks.push({ name: 'gpu', ok: true, detail: gpus.length ? `${gpus.length} NVIDIA GPU(s)` : 'none (GPU grants and the GPU sensor are unavailable)' });
  for (const extra of await sensorChecks()) checks.push(extra);
  const degraded = checks.filter((c) => c.degraded).map((c) => `${c.name}: ${c.detail}`);
  const ok = checks.every((c) => c.ok || c.degraded);
  return { ok, checks, degraded };
}

/** Sensor probes, when the sensors module is present. */
async function sensorChecks(): Promise<Check[]> {
  try {
    const s = await import('../sensors/index.ts') as { probeSensors?: () => Promise<{ ebpf: { ok: boolean; reason?: string }; gpu: { ok: boolean; count?: number; reason?: string } }> };
    if (!s.probeSensors) return [];
    const p = await s.probeSensors();
    return [{ name: 'sensor:ebpf', ok: p.ebpf.ok, detail: p.ebpf.ok ? 'bpftrace on tracepoints' : `unavailable (${p.ebpf.reason ?? 'unknown'}); the /proc scanner runs instead`, ...(!p.ebpf.ok ? { degraded: true } : {}) }];
  } catch {
    return [];
  }
}
