// `praetor daemon run|start|stop|status`: the resident guard that `praetor run` starts on first
// use and then talks to (src/daemon). One per state directory and network namespace.
import { PraetorError } from '../errors.ts';
import { pidAlive } from '../util/index.ts';
import { parseFlags, stateDir } from './common.ts';

const USAGE = `praetor daemon <run|start|stop|status> [--state DIR] [--json]

  run     serve in the foreground (what \`praetor run\` starts, detached, on first use)
  start   start one in the background unless one is up; print its pid
  stop    stop it: its runs' sandboxes are destroyed, their clients get their reports
  status  whether one is resident, its pid, version and uptime

After upgrading praetor, stop the old guard (\`praetor daemon stop\`): a CLI and a guard of
different versions refuse each other, and the next \`praetor run\` starts a new one.`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') { process.stdout.write(`usage: ${USAGE}\n`); return sub === undefined ? 2 : 0; }
  const { values: v } = parseFlags(rest, { state: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const state = stateDir(v.state);
  const out = (o: unknown, text: string) => process.stdout.write(v.json ? JSON.stringify(o) + '\n' : text + '\n');
  switch (sub) {
    case 'run': {
      // bpftrace first, before the guard's own modules load: its seconds of compile overlap them.
      // Imported from its file, not sensors/index.ts, which would load the sensors whole first.
      const ebpf = await import('../sensors/ebpf-sensor.ts');
      if (process.getuid?.() === 0) ebpf.prestartEbpf({ kernelFilter: true, praetorLevel: 1, kernelKill: true });
      const { startGuardServer } = await import('../daemon/index.ts');
      const log = (m: string) => process.stderr.write(`${new Date().toISOString()} praetor guard: ${m}\n`);
      let g: Awaited<ReturnType<typeof startGuardServer>>;
      try { g = await startGuardServer({ stateDir: state, log }); } catch (e) { await ebpf.discardPrestartedEbpf(); throw e; }
      await g.stopped;
      log('stopped');
      return 0;
    }
    case 'start': {
      const { connectGuard } = await import('../daemon/guard-client.ts');
      const c = await connectGuard(state, { start: true });
      if (!c.ok) throw new PraetorError('GUARD_UNAVAILABLE', c.reason, { hint: 'see the guard log named above, or run `praetor daemon run` to see it start' });
      c.conn.close();
      out({ pid: c.conn.guardPid, started: c.started }, `${c.started ? 'started' : 'already running'}: resident guard pid ${c.conn.guardPid}`);
      return 0;
    }
    case 'stop': {
      // By signal, not over the socket: stop must work across versions (the upgrade path).
      const { readGuardPid, guardPaths } = await import('../daemon/paths.ts');
      const r = readGuardPid(guardPaths(state));
      if (!r || !pidAlive(r.pid, r.start)) { out({ stopped: false }, 'no resident guard is running'); return 0; }
      process.kill(r.pid, 'SIGTERM');
      const end = Date.now() + 30_000;
      while (pidAlive(r.pid, r.start)) {
        if (Date.now() > end) throw new PraetorError('TIMEOUT', `the resident guard (pid ${r.pid}) did not stop within 30 s`, { hint: `kill -9 ${r.pid}; the next run's gc removes what it left` });
        await new Promise((res) => setTimeout(res, 25));
      }
      out({ stopped: true, pid: r.pid }, `stopped resident guard pid ${r.pid}`);
      return 0;
    }
    case 'status': {
      const { residentGuard } = await import('../daemon/paths.ts');
      const g = residentGuard(state);
      out(g ? { resident: true, ...g } : { resident: false }, g ? `resident guard: pid ${g.pid}, version ${g.version}, up ${Math.round(g.uptimeMs / 1000)} s, socket ${g.sock}` : 'no resident guard (the next `praetor run` starts one)');
      return 0;
    }
    default:
      throw new PraetorError('BAD_ARGUMENT', sub ? `unknown daemon command "${sub}"` : 'which daemon command?', { hint: 'one of run, start, stop, status' });
  }
}
