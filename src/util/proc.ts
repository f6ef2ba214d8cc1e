// Process identity from /proc: a pid alone is recycled by the kernel, so "is the process that
// wrote this record still alive?" must compare the pid's start time too. One parser for every
// caller (sandbox gc, ledger lock, procfs sensor) so they cannot disagree about a stale owner.
import { readFileSync } from 'node:fs';

/**
 * Field 22 of /proc/PID/stat (starttime, in clock ticks since boot), or undefined when the
 * process does not exist. Counted from after the parenthesised comm, which may hold spaces and
 * parentheses (a process can name itself `a) b`), hence lastIndexOf.
 */
export function readStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return undefined; }
}

/** True when `pid` is alive and is the same process (same start time) as when it was recorded. */
export function pidAlive(pid: number, startTime: string): boolean {
  const st = readStartTime(pid);
  return st !== undefined && st === startTime;
}

/**
 * A raw Linux wait status (waitpid's, or the kernel's task exit_code) as exit code or signal
 * number. The one decoder for the init channel and the eBPF exit records.
 */
export function decodeWaitStatus(status: number): { code: number | null; signal: number | null } {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: sig };
}
