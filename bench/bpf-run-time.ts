// The kernel time a process's BPF programs took, from the kernel's own accounting
// (kernel.bpf_stats_enabled: run_time_ns per program, in /proc/PID/fdinfo of each program fd).
// It separates what the sensor costs the workload in the kernel from the noise of a shared
// machine, which moves a build's wall time by more than the whole sensor costs.
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

const STATS = '/proc/sys/kernel/bpf_stats_enabled';

/** Sum of run_time_ns over the BPF programs `pid` holds (0 when none, or none readable). */
export function bpfRunTimeNs(pid: number): number {
  let total = 0;
  let fds: string[];
  try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return 0; }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      total += Number(/^run_time_ns:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? 0);
    } catch { /* closed meanwhile */ }
  }
  return total;
}

/** Direct children of this process named `comm`. */
export function childrenNamed(comm: string): number[] {
  let kids: string;
  try { kids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8'); } catch { return []; }
  return kids.trim().split(/\s+/).filter(Boolean).map(Number).filter((p) => {
    try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm; } catch { return false; }
  });
}

/**
 * Runs `fn` with the kernel's BPF statistics on (they cost two clock reads per program run, so
 * never during the timed series) and returns its result and the BPF time of `pids` meanwhile,
 * or undefined for the time when the statistics cannot be switched on here.
 */
export async function withBpfStats<T>(pids: readonly number[], fn: () => Promise<T>): Promise<{ result: T; ns: number | undefined }> {
  let before: string;
  try { before = readFileSync(STATS, 'utf8').trim(); writeFileSync(STATS, '1'); } catch { return { result: await fn(), ns: undefined }; }
  try {
    const sum = (): number => pids.reduce((s, p) => s + bpfRunTimeNs(p), 0);
    const t0 = sum();
    const result = await fn();
    return { result, ns: sum() - t0 };
  } finally {
    try { writeFileSync(STATS, before); } catch { /* left on: only a little slower */ }
  }
}
