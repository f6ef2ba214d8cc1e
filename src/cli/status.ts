// `praetor status`: what works on this host and what runs degraded, and whether a resident guard
// (the process `praetor run` talks to) is up for this state directory.
import { parseFlags, stateDir, table } from './common.ts';

const USAGE = 'praetor status [--json] [--state DIR]';

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, { json: { type: 'boolean' }, state: { type: 'string' } }, USAGE);
  const state = stateDir(v.state);
  // From its file, not runner/index.ts: probing the host needs the sandbox's probes, not the
  // runner's gateway, ledger and rule engine (~250 modules instead of ~600).
  const { hostStatus } = await import('../runner/host-status.ts');
  const s = await hostStatus(state);
  // From its file, not daemon/index.ts, which also loads the guard server (the runner, every sensor).
  const { residentGuard } = await import('../daemon/paths.ts');
  const g = residentGuard(state);
  // Not a check that can fail: without a resident guard the next run starts one.
  const guard = g ? { resident: true, pid: g.pid, version: g.version, uptimeMs: g.uptimeMs, socket: g.sock } : { resident: false };
  const guardDetail = g ? `resident: pid ${g.pid}, version ${g.version}, up ${formatUptime(g.uptimeMs)}` : 'not running (the next `praetor run` starts one)';
  if (v.json) process.stdout.write(JSON.stringify({ ...s, guard }) + '\n');
  else {
    process.stdout.write(table([['CHECK', 'STATE', 'DETAIL'], ...s.checks.map((c) => [c.name, c.ok ? 'ok' : c.degraded ? 'degraded' : 'FAIL', c.detail]), ['guard', 'ok', guardDetail]]) + '\n');
    if (s.degraded.length) process.stdout.write(`\ndegraded:\n  ${s.degraded.join('\n  ')}\n`);
  }
  return s.ok ? 0 : 1;
}

function formatUptime(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}
