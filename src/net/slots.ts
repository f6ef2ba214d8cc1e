// Link slots shared by every praetor gateway in one network namespace: a slot is a directory
// created atomically (mkdir) holding its owner's pid, so two praetor processes never hand out
// the same /30; a slot whose owner died is taken over.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function slotRoot(): string {
  const ino = statSync('/proc/self/ns/net').ino;
  const dir = `/run/praetor-net/${ino}`;
  if (!existsSync(dir)) pruneDeadNamespaces();
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Drops the records of network namespaces that no longer exist (no process, no bind mount). */
export function pruneDeadNamespaces(): void {
  const live = new Set<number>();
  for (const p of safeList('/proc')) if (/^\d+$/.test(p)) { try { live.add(statSync(`/proc/${p}/ns/net`).ino); } catch { /* exited */ } }
  for (const n of safeList('/run/netns')) { try { live.add(statSync(`/run/netns/${n}`).ino); } catch { /* gone */ } }
  for (const d of safeList('/run/praetor-net')) if (!live.has(Number(d))) rmSync(`/run/praetor-net/${d}`, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export function allocateSlot(root: string, max: number, start = 0): number {
  for (let i = 0; i < max; i++) {
    const slot = (start + i) % max;
    const dir = join(root, String(slot));
    try {
      mkdirSync(dir);
    } catch {
      let owner = NaN;
      try { owner = Number(readFileSync(join(dir, 'pid'), 'utf8')); } catch { /* being created */ }
      if (!Number.isFinite(owner) || owner === process.pid || alive(owner)) continue;
      rmSync(dir, { recursive: true, force: true });
      try { mkdirSync(dir); } catch { continue; }
    }
    writeFileSync(join(dir, 'pid'), String(process.pid));
    return slot;
  }
  throw new Error(`no free link slot (all ${max} in use)`);
}

export function releaseSlot(root: string, slot: number): void {
  rmSync(join(root, String(slot)), { recursive: true, force: true });
}

/** Records which process owns gateway `id` in this namespace (for sweeping after a crash). */
export function claimGateway(root: string, id: string): void {
  writeFileSync(join(root, `gw-${id}`), String(process.pid));
}
export function releaseGateway(root: string, id: string): void {
  rmSync(join(root, `gw-${id}`), { force: true });
}

/** Gateways in this namespace whose owner died: their ids; their records and slots are freed. */
export function staleGateways(root: string): string[] {
  const stale: string[] = [];
  for (const f of safeList(root)) {
    const path = join(root, f);
    let owner = NaN;
    try { owner = Number(readFileSync(f.startsWith('gw-') ? path : join(path, 'pid'), 'utf8')); } catch { continue; }
    if (Number.isFinite(owner) && alive(owner)) continue;
    if (f.startsWith('gw-')) stale.push(f.slice(3));
    rmSync(path, { recursive: true, force: true });
  }
  return stale;
}

/** A directory's entries; none when it is missing or unreadable. */
export function safeList(p: string): string[] {
  try { return readdirSync(p); } catch { return []; }
}
