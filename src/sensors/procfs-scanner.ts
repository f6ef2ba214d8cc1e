import { readdirSync, readFileSync } from 'node:fs';
import type { EventBus } from '../events/index.ts';
import { readStartTime } from '../util/index.ts';
import {
  cgroupIdOfPath, peersForInodes, readCgroupV2Path, readCmdline, readLink, readStatus, readStdio, readTcpTable,
  sandboxCgroupPath, unifiedRoot,
} from './proc-util.ts';
import { isSensitivePath } from './sensitive-paths.ts';
import type { SandboxResolver } from './sensor-types.ts';

// The fallback when eBPF is unavailable: poll /proc. It sees what exists at poll time, so a
// process that lives less than one period (a `curl | sh` stage, /bin/true) can be missed, a
// refused connect leaves no socket to find, and a file read and closed in between is invisible.
// That is why running on it is reported as degraded, never silently.

interface Known {
  start: string; sandboxId: string; exe: string | undefined; cmd: string; comm: string;
  sockets: Set<number>; files: Set<string>;
}

export interface ProcfsBackend { ready: Promise<void>; stop(): Promise<void> }

export function startProcfs(o: { bus: EventBus; resolver: SandboxResolver; intervalMs: number }): ProcfsBackend {
  const root = unifiedRoot();
  const known = new Map<number, Known>();
  /** pids seen outside any sandbox, by start time, so they are not re-read every poll */
  const outside = new Map<number, string>();
  const cgIds = new Map<string, bigint | undefined>();
  let first = true;

  const sandboxOf = (pid: number): string | undefined => {
    const rel = readCgroupV2Path(pid);
    const sbPath = rel === undefined ? undefined : sandboxCgroupPath(rel);
    if (sbPath && root) {
      if (!cgIds.has(sbPath)) cgIds.set(sbPath, cgroupIdOfPath(root, sbPath));
      const id = cgIds.get(sbPath);
      const s = id === undefined ? undefined : o.resolver.sandboxForCgroupId(id);
      if (s) return s;
    }
    return o.resolver.sandboxForPid(pid);
  };

  const poll = (): void => {
    let entries: string[];
    try { entries = readdirSync('/proc'); } catch { return; }
    const alive = new Set<number>();
    for (const name of entries) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(name);
      alive.add(pid);
      const start = readStartTime(pid);
      if (start === undefined) continue;
      if (outside.get(pid) === start) continue;
      let k = known.get(pid);
      if (k && k.start !== start) { exit(pid, k); k = undefined; }
      if (!k) {
        const sandboxId = sandboxOf(pid);
        if (sandboxId === undefined) { outside.set(pid, start); continue; }
        k = { start, sandboxId, exe: undefined, cmd: '', comm: '', sockets: new Set(), files: new Set() };
        known.set(pid, k);
      }
      // A new pid, or the same pid after execve (`sh -c 'exec miner'`): the image changed.
      const exe = readLink(`/proc/${pid}/exe`);
      const argv = readCmdline(pid) ?? [];
      const cmd = argv.join('\0');
      if (exe !== k.exe || cmd !== k.cmd) {
        k.exe = exe; k.cmd = cmd;
        const st = readStatus(pid);
        k.comm = st?.name ?? '';
        if (!first || argv.length > 0) {
          // One read of fds 0-2 for both fields: two reads could disagree (a dup2 in between).
          const stdio = readStdio(pid);
          o.bus.publish({ kind: 'process.exec', sandboxId: k.sandboxId, pid, ppid: st?.ppid, uid: st?.uid,
            path: exe ?? argv[0] ?? '', argv, comm: k.comm, parentComm: st ? readStatus(st.ppid)?.name : undefined,
            stdio: stdio.map((s) => s ?? 'closed'), stdioPeers: stdioPeers(pid, stdio), sensor: 'procfs' });
        }
      }
      scanFds(pid, k);
    }
    for (const [pid, k] of known) if (!alive.has(pid)) exit(pid, k);
    for (const pid of outside.keys()) if (!alive.has(pid)) outside.delete(pid);
    first = false;
  };

  const exit = (pid: number, k: Known): void => {
    known.delete(pid);
    // The exit status went to the parent's wait(); /proc no longer has it.
    o.bus.publish({ kind: 'process.exit', sandboxId: k.sandboxId, pid, comm: k.comm, exitCode: null, signal: null });
  };

  const scanFds = (pid: number, k: Known): void => {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return; }
    let newSockets: number[] | undefined;
    for (const fd of fds) {
      const l = readLink(`/proc/${pid}/fd/${fd}`);
      if (!l) continue;
      const m = /^socket:\[(\d+)\]$/.exec(l);
      if (m) {
        const ino = Number(m[1]);
        if (!k.sockets.has(ino)) (newSockets ??= []).push(ino);
      } else if (l.startsWith('/') && !k.files.has(l) && isSensitivePath(l)) {
        k.files.add(l);
        let write = false;
        try { write = (Number.parseInt(/^flags:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8) & 3) !== 0; } catch { /* gone */ }
        const canary = o.resolver.canaryAt?.(k.sandboxId, l);
        o.bus.publish({ kind: 'file.open', sandboxId: k.sandboxId, pid, comm: k.comm, path: l, write, ...(canary ? { canary } : {}) });
      }
    }
    if (!newSockets) return;
    const v4 = readTcpTable('/proc/net/tcp', pid);
    const v6 = readTcpTable('/proc/net/tcp6', pid);
    for (const ino of newSockets) {
      const e = v4.get(ino) ?? v6.get(ino);
      const family = v4.has(ino) ? 'inet' : 'inet6';
      // Listening (10) and unconnected sockets have no peer yet; look again next poll.
      if (!e || e.state === 10 || e.port === 0) continue;
      k.sockets.add(ino);
      o.bus.publish({ kind: 'net.connect', sandboxId: k.sandboxId, pid, comm: k.comm, family, dstIp: e.ip, dstPort: e.port,
        result: e.state === 2 ? -115 : 0, sensor: 'procfs' });
    }
  };

  poll();
  const timer = setInterval(poll, o.intervalMs);
  return { ready: Promise.resolve(), async stop() { clearInterval(timer); } };
}

/** Per fd 0-2: `ip:port` of the peer when it is a TCP socket (a reverse shell), else ''. */
function stdioPeers(pid: number, stdio: ReturnType<typeof readStdio>): string[] {
  return peersForInodes(stdio.map((l) => {
    const m = /^socket:\[(\d+)\]$/.exec(l ?? '');
    return m ? Number(m[1]) : undefined;
  }), [pid]);
}
