// Kernel kill (issue 17 §3): a known-bad binary (here named `xmrig`, a rule with kernel_kill)
// is SIGKILLed by the eBPF sensor in the exec tracepoint, before its first instruction. The
// binary writes a file as the very first thing main() does; on the code before this change the
// user-space kill came after that write. No network is involved: the sandbox has only lo.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
const dir = mkdtempSync('/tmp/pt-test-kkill-');
// The resident guard first (its sandboxes live under the state dir), then the files.
after(() => { spawnSync(PRAETOR, ['daemon', 'stop', '--state', `${dir}/state`], { stdio: 'ignore' }); rmSync(dir, { recursive: true, force: true }); });

type Ev = Record<string, unknown> & { kind: string; id: string };

function praetorRun(ws: string, argv: string[], guard: 'resident' | 'in-process'): { status: number | null; stdout: string; stderr: string; rep: { exitCode: number; contained: boolean; events: Ev[]; alerts: Ev[]; containment: Ev[]; degraded: string[] } } {
  const report = `${dir}/report-${Math.random().toString(36).slice(2)}.json`;
  // The resident guard's shared sensor arms each run's sandbox with that run's rules (BPF maps);
  // --no-guard runs its own sensor in the CLI process. Both must kill in the kernel.
  const r = spawnSync(PRAETOR, ['run', ...(guard === 'in-process' ? ['--no-guard'] : []), '--state', `${dir}/state`, '--workspace', ws, '--report', report, '--', ...argv], { encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, rep: JSON.parse(readFileSync(report, 'utf8')) };
}

for (const guard of ['resident', 'in-process'] as const) {
test(`${guard} guard: a binary named like a miner is killed in the kernel before it writes a byte; the alert and both containments are recorded`, async () => {
  const ws = `${dir}/ws-${guard}`;
  mkdirSync(ws, { recursive: true });
  chmodSync(ws, 0o777);
  // First instruction of substance: create and write the proof file.
  writeFileSync(`${dir}/m.c`, '#include <fcntl.h>\n#include <unistd.h>\nint main(void){int fd=open("/workspace/wrote",O_WRONLY|O_CREAT,0644);write(fd,"x",1);close(fd);for(;;)pause();}\n');
  // Static, so it writes microseconds after exec (no loader): user space alone loses that race
  // (on the code before this change the file appeared in 2 of 3 runs; the kernelKill marker
  // assertion below fails there every time).
  try { execFileSync('gcc', ['-O1', '-static', '-o', `${ws}/xmrig`, `${dir}/m.c`], { stdio: 'ignore' }); } catch { execFileSync('gcc', ['-O1', '-o', `${ws}/xmrig`, `${dir}/m.c`]); }
  const { status, stdout, stderr, rep } = praetorRun(ws, ['sh', '-c', './xmrig --donate-level=1; echo after-miner; sleep 5'], guard);
  const why = `status ${status}\n${stderr.slice(-1500)}\nalerts ${JSON.stringify(rep.alerts.map((a) => a.rule))}\ncontainment ${JSON.stringify(rep.containment, null, 1)}\ndegraded ${JSON.stringify(rep.degraded)}`;
  assert.deepEqual(rep.degraded, [], `kernel sensor and kernel kill available: ${why}`);
  assert.equal(existsSync(`${ws}/wrote`), false, `the killed program wrote nothing: ${why}`);
  // Its parent shell was stopped as it reaped the killed child: the rest of the script never ran.
  assert.doesNotMatch(stdout, /after-miner/, why);
  const exec = rep.events.find((e) => e.kind === 'process.exec' && e.comm === 'xmrig');
  assert.ok(exec, `its exec was seen: ${why}`);
  assert.equal((exec.kernelKill as { rule?: string } | undefined)?.rule, 'Crypto miner binary executed', `the exec event says the kernel killed it: ${JSON.stringify(exec)}`);
  const alert = rep.alerts.find((a) => a.rule === 'Crypto miner binary executed');
  assert.ok(alert, `user space still raised the alert: ${why}`);
  assert.deepEqual(alert.evidence, [exec.id], 'with the exec as evidence');
  const byKernel = rep.containment.filter((c) => c.alertId === alert.id && c.by === 'kernel');
  assert.equal(byKernel.length, 1, why);
  assert.equal(byKernel[0]!.action, 'kill');
  assert.equal(byKernel[0]!.ok, true, why);
  assert.equal(byKernel[0]!.outcome, 'verified');
  // The flags rule fired on the same exec: its kill-tree is the kernel's kill, not a hunt for
  // every agent process (the trigger is gone because the kernel killed it, not because it forked).
  const flags = rep.alerts.find((a) => a.rule === 'Crypto miner flags on command line');
  assert.ok(flags, why);
  const fk = rep.containment.find((c) => c.alertId === flags.id && c.action === 'kill-tree');
  assert.ok(fk && fk.ok === true && fk.targets === 0 && /kernel killed it/.test(String(fk.reason)), why);
  const exit = rep.events.find((e) => e.kind === 'process.exit' && e.pid === exec.pid);
  if (exit) assert.equal(exit.signal, 9, `died of SIGKILL: ${JSON.stringify(exit)}`);
  assert.equal(rep.contained, true, why);
  assert.equal(status, 125, why);
});
}
