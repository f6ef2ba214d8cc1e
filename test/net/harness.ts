// Runs a gateway inside the topology's host namespace (`ip netns exec pt-…-host node harness.ts`),
// as praetor itself would run there. Commands arrive as JSON lines on stdin; replies and every
// bus event go out as JSON lines on stdout. It exits (closing the gateway) when stdin closes.
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { errorMessage } from '../../src/errors.ts';
import { EventBus } from '../../src/events/index.ts';
import { startGateway, type SandboxNet } from '../../src/net/index.ts';
import { nowNs } from '../../src/util/index.ts';

const bus = new EventBus();
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
// PT_EVENTS=0: the caller reads no events (benchmarks); they are still published on the bus.
if (process.env.PT_EVENTS !== '0') bus.subscribe((e) => out({ event: e }));
// The gateway keeps its TLS interception CA in its state dir: a private temp dir unless the
// caller names one, removed on exit (no CA key left behind in /tmp).
const ownState = process.env.PT_STATE ? null : mkdtempSync(join(tmpdir(), 'praetor-gw-state-'));
process.on('exit', () => { if (ownState) rmSync(ownState, { recursive: true, force: true }); });
const gw = await startGateway({ bus, stateDir: process.env.PT_STATE ?? ownState!, attemptPollMs: Number(process.env.PT_POLL_MS ?? 200), splice: process.env.PT_SPLICE !== '0', apiAddresses: JSON.parse(process.env.PT_API ?? '[]') as string[] });
const nets = new Map<string, SandboxNet>();
out({ ready: true, table: gw.table });

type Cmd = { id: number; op: string; graceMs?: number; sinceAgoMs?: number; forMs?: number; sandboxId?: string; policy?: unknown; phase?: string; pid?: number; egressTokens?: Array<{ name: string; value: string; kind: 'canary' | 'placeholder' }> };
const rl = createInterface({ input: process.stdin });
let closing = false;
rl.on('line', (line) => { void handle(JSON.parse(line) as Cmd); });
rl.on('close', () => { void shutdown(); });
process.on('SIGTERM', () => { void shutdown(); });

async function shutdown(): Promise<void> {
  if (closing) return; closing = true;
  await gw.close().catch(() => {});
  process.exit(0);
}

async function handle(c: Cmd): Promise<void> {
  try {
    let result: unknown = null;
    const n = c.sandboxId ? nets.get(c.sandboxId) : undefined;
    switch (c.op) {
      case 'prepare': {
        const sn = await gw.prepare(c.sandboxId!, c.policy as never, { ...(c.phase ? { phase: c.phase } : {}), ...(c.egressTokens ? { egressTokens: c.egressTokens } : {}) });
        nets.set(c.sandboxId!, sn);
        result = { resolvConf: sn.resolvConf, env: sn.env, gatewayIp: sn.gatewayIp, sandboxIp: sn.sandboxIp, hostIf: sn.hostIf, phase: sn.phase, caCertPem: sn.caCertPem, secrets: sn.secrets };
        break;
      }
      case 'attach': {
        // As the manager does: the namespace by an open file of it, never by the pid.
        const fd = openSync(`/proc/${c.pid!}/ns/net`, 'r');
        try { await n!.attach({ pid: c.pid!, fd }); } finally { closeSync(fd); }
        break;
      }
      case 'setPhase': n!.setPhase(c.phase!); break;
      case 'isolate': n!.isolate(); break;
      case 'containing': {
        // A containment that started sinceAgoMs ago (its trigger) and lasts forMs from now.
        const until = new Promise((r) => setTimeout(r, c.forMs ?? 0));
        result = { cut: n!.containing(nowNs() - (c.sinceAgoMs ?? 0) * 1e6, 'test rule', until) };
        break;
      }
      case 'detach': await n!.detach(); nets.delete(c.sandboxId!); break;
      case 'rotateCa': { const ca = await gw.rotateCa(c.graceMs); result = { certPem: ca.certPem, bundlePem: ca.bundlePem }; break; }
      case 'close': await shutdown(); break;
      default: throw new Error(`unknown op ${c.op}`);
    }
    out({ id: c.id, ok: true, result });
  } catch (e) {
    out({ id: c.id, ok: false, error: errorMessage(e) });
  }
}
