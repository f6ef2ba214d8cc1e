// Reaps sandboxes whose owner is gone. A sandbox's record names the praetor process that created
// it (pid + start time, so a recycled pid is not mistaken for the owner); when that process is
// dead, its sandboxes' processes, cgroups, mounts and directories are removed. Cgroups of this
// state directory with no record at all are reaped too: nothing may live unaccounted for.
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { readStartTime, pidAlive } from '../util/proc.ts';
import { Cgroup, listSandboxCgroups } from './cgroup.ts';
import { hierarchyRoots } from './cgroup-layout.ts';
import type { HostInfo } from './host.ts';
import { umount } from './syscalls.ts';

export interface OwnerRecord { ownerPid: number; ownerStart: string }
export interface GcResult { reaped: string[]; kept: number; errors: string[] }

export function ownerRecord(): OwnerRecord {
  return { ownerPid: process.pid, ownerStart: readStartTime(process.pid) ?? '' };
}

// Always compare start times, also for our own pid: a restarted praetor (a container's pid 1, a
// systemd unit) often gets its dead predecessor's pid back, and its sandboxes must be reaped.
export function ownerAlive(r: OwnerRecord): boolean {
  return pidAlive(r.ownerPid, r.ownerStart);
}

function mountsUnder(prefix: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp === prefix || mp.startsWith(`${prefix}/`))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out.sort((a, b) => b.length - a.length); // deepest first
}

export async function gcSandboxes(stateDir: string, host: HostInfo, opts: { onReap?: (id: string) => void } = {}): Promise<GcResult> {
  const res: GcResult = { reaped: [], kept: 0, errors: [] };
  const dir = `${stateDir}/sandboxes`;
  const records = existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith('sb-')) : [];
  const seen = new Set<string>();
  for (const id of records) {
    seen.add(id);
    let rec: OwnerRecord | undefined;
    try { rec = JSON.parse(readFileSync(`${dir}/${id}/owner.json`, 'utf8')) as OwnerRecord; } catch { /* half-written: reap */ }
    if (rec && ownerAlive(rec)) { res.kept++; continue; }
    try {
      await reapOne(host, `${dir}/${id}`, id);
      res.reaped.push(id);
      opts.onReap?.(id);
    } catch (e) { res.errors.push(`${id}: ${e instanceof Error ? e.message : String(e)}`); }
  }
  for (const id of listSandboxCgroups(host.cgroups, host.cgroupGroup)) {
    if (seen.has(id)) continue;
    try { await new Cgroup(host.cgroups, `${host.cgroupGroup}/${id}`).remove(); res.reaped.push(id); } catch (e) { res.errors.push(`${id}: ${String(e)}`); }
  }
  if (res.kept === 0) removeEmptyGroup(host);
  return res;
}

/** Removes this state's `praetor-<hash>` directories once they hold no sandbox (rmdir refuses otherwise). */
export function removeEmptyGroup(host: HostInfo): void {
  for (const r of hierarchyRoots(host.cgroups)) { try { rmdirSync(`${r}/${host.cgroupGroup}`); } catch { /* in use, or already gone */ } }
}

async function reapOne(host: HostInfo, sbDir: string, id: string): Promise<void> {
  await new Cgroup(host.cgroups, `${host.cgroupGroup}/${id}`).remove();
  for (const mp of mountsUnder(sbDir)) umount(mp);
  rmSync(sbDir, { recursive: true, force: true });
}
