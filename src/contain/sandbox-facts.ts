// What containment reads about a sandbox to decide and to verify: which of its processes are the
// runtime's own (by recorded identity, never by name: an agent can call itself `bwrap` with cp or
// prctl(PR_SET_NAME)), and which network links its namespace holds (a sandbox with only `lo` has
// no network to cut, and an isolate must not be recorded as if it had done something).
import { readFileSync, readlinkSync } from 'node:fs';
import { isSameProcess, type Sandbox } from '../sandbox/index.ts';

/** Pids of the runtime's processes that are still the very processes recorded at creation. */
export function runtimePids(sb: Sandbox): Set<number> {
  const out = new Set<number>();
  for (const p of sb.runtimeProcesses) if (isSameProcess(p)) out.add(p.pid);
  // The outermost runtime process is ours by construction (we spawned it); a sandbox built
  // without a recorded identity (older state) spares only it, and a kill-tree is then a kill-all.
  if (sb.hostPid !== undefined) out.add(sb.hostPid);
  return out;
}

function netnsOf(pid: number): string | undefined {
  try { return readlinkSync(`/proc/${pid}/ns/net`); } catch { return undefined; }
}

/**
 * Network interfaces in the sandbox's own network namespace (from /proc/PID/net/dev of a member
 * that is not in ours); undefined when no member is there to ask.
 */
export function sandboxLinks(members: readonly number[]): string[] | undefined {
  const mine = netnsOf(process.pid);
  for (const pid of members) {
    const ns = netnsOf(pid);
    if (!ns || ns === mine) continue;
    let dev: string;
    try { dev = readFileSync(`/proc/${pid}/net/dev`, 'utf8'); } catch { continue; }
    return dev.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean);
  }
  return undefined;
}

export const onlyLoopback = (links: readonly string[]): boolean => links.every((l) => l === 'lo');
