// Reaps sandboxes whose owner is gone. A sandbox's record names the praetor process that created
// it (pid + start time, so a recycled pid is not mistaken for the owner); when that process is
// dead, its sandboxes' processes, cgroups, mounts and directories are removed. Cgroups of this
// state directory with no record at all are reaped too: nothing may live unaccounted for.
//
// Race (issue 16): many `praetor run`s start at once and each one's start-up gc runs while the
// others create sandboxes. A sandbox directory must therefore never be visible without its owner
// record (it is assembled under a dot name and renamed into place), and a cgroup is only taken
// for record-less after its record has been looked for again at the moment of removal.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { readStartTime, pidAlive } from '../util/index.ts';
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

/** Prefix of a sandbox directory being assembled; gc only looks at it to reap a dead creator's. */
const NEW_PREFIX = '.new-';

/**
 * Creates `<stateDir>/sandboxes/<id>` with its owner record already inside, atomically: the
 * directory and record are written under a dot name and renamed into place, so no gc ever sees a
 * sandbox without an owner (and reaps it while it is being created).
 */
export function createSandboxDir(stateDir: string, id: string, record: object): string {
  const base = `${stateDir}/sandboxes`;
  const tmp = `${base}/${NEW_PREFIX}${id}`;
  mkdirSync(tmp, { mode: 0o700 });
  try {
    writeFileSync(`${tmp}/owner.json`, JSON.stringify({ ...ownerRecord(), ...record }));
    renameSync(tmp, `${base}/${id}`);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return `${base}/${id}`;
}

function readOwner(file: string): OwnerRecord | undefined {
  try { return JSON.parse(readFileSync(file, 'utf8')) as OwnerRecord; } catch { return undefined; }
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
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  // A creator that died between mkdir and rename leaves a dot directory with nothing mounted.
  for (const e of entries.filter((d) => d.startsWith(`${NEW_PREFIX}sb-`))) {
    const rec = readOwner(`${dir}/${e}/owner.json`);
    if (rec && ownerAlive(rec)) { res.kept++; continue; }
    if (!rec && youngerThan(`${dir}/${e}`, HALF_WRITTEN_GRACE_MS)) { res.kept++; continue; } // its record is being written
    rmSync(`${dir}/${e}`, { recursive: true, force: true });
  }
  const records = entries.filter((d) => d.startsWith('sb-'));
  const seen = new Set<string>();
  for (const id of records) {
    seen.add(id);
    const rec = readOwner(`${dir}/${id}/owner.json`);
    if (rec && ownerAlive(rec)) { res.kept++; continue; }
    // No record at all: it is being destroyed by its owner right now (the record goes last), or
    // it is damaged. Its owner's destroy wins; gc reaps it once it is plainly abandoned.
    if (!rec && existsSync(`${dir}/${id}`) && youngerThan(`${dir}/${id}`, HALF_WRITTEN_GRACE_MS)) { res.kept++; continue; }
    try {
      await reapOne(host, `${dir}/${id}`, id);
      res.reaped.push(id);
      opts.onReap?.(id);
    } catch (e) { res.errors.push(`${id}: ${e instanceof Error ? e.message : String(e)}`); }
  }
  for (const id of listSandboxCgroups(host.cgroups, host.cgroupGroup)) {
    if (seen.has(id)) continue;
    // Created after the listing above: its record (written before its cgroup) is there now.
    if (existsSync(`${dir}/${id}`)) { res.kept++; continue; }
    try { await new Cgroup(host.cgroups, `${host.cgroupGroup}/${id}`).remove(); res.reaped.push(id); } catch (e) { res.errors.push(`${id}: ${String(e)}`); }
  }
  if (res.kept === 0) removeEmptyGroup(host);
  return res;
}

/** How long a record-less sandbox directory is left alone (its owner writes or removes it). */
const HALF_WRITTEN_GRACE_MS = 30_000;

function youngerThan(path: string, ms: number): boolean {
  try { return Date.now() - statSync(path).mtimeMs < ms; } catch { return false; }
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
