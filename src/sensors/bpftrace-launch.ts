import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// How bpftrace is started, and why it starts in a mount namespace of its own.
//
// Measured on bpftrace 0.17 (strace, kernel 6.18): it re-reads the kernel's whole
// `available_events` list (2,300 tracepoints, a seq file the kernel renders on every read) for
// every attach point in every compiler pass, quadratically for a probe with many attach points:
// 2,271 reads for the sensor's 60 attach points, 1.1 s of kernel time and as much again of user
// time matching its lines, more than half of the sensor's start. bpftrace has no option to skip
// it and no way to point it at another tracefs. So it runs in a private mount namespace where a
// regular file listing only the script's own tracepoints (checked present in the real list) is
// bind-mounted over `available_events`: the same answers for every name the script uses, read
// from the page cache. Nothing else in tracefs changes (formats, ids and attaching are the
// kernel's), nothing propagates to the host's mounts, and if the namespace or the mount cannot be
// made bpftrace starts as before, only slower.

/** The `category:name` tracepoints a generated script attaches to. */
export function scriptTracepoints(script: string): string[] {
  const out = new Set<string>();
  for (const m of script.matchAll(/(?:^|[\s,])tracepoint:([a-z0-9_]+):([a-z0-9_]+)/gm)) out.add(`${m[1]}:${m[2]}`);
  return [...out];
}

/**
 * Writes `dir/available_events` with the lines of the real list that the script uses, or returns
 * undefined when the real list cannot be read (then bpftrace reads the real one).
 */
export function writeTrimmedEvents(tracefs: string, script: string, dir: string): string | undefined {
  let all: string;
  try { all = readFileSync(join(tracefs, 'available_events'), 'utf8'); } catch { return undefined; }
  const want = new Set(scriptTracepoints(script));
  const lines = all.split('\n').filter((l) => want.has(l));
  const file = join(dir, 'available_events');
  writeFileSync(file, lines.length > 0 ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
  return file;
}

/** Runs in the shell that becomes bpftrace: $0 is bpftrace, "$@" its arguments. */
const INNER = 'ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -H -l)" 2>/dev/null; '
  + 'if [ -n "$PRAETOR_EVENTS" ]; then mount --bind "$PRAETOR_EVENTS" "$PRAETOR_TRACEFS/available_events" 2>/dev/null; fi; '
  + 'command -v setpriv >/dev/null && exec setpriv --pdeathsig KILL "$0" "$@"; exec "$0" "$@"';

/**
 * How to spawn bpftrace: RLIMIT_MEMLOCK raised (old kernels charge BPF maps to it; kernels ≥ 5.11
 * charge memcg, so failing is not fatal); setpriv's parent-death signal ends bpftrace (and
 * detaches its probes) when its praetor dies, even by SIGKILL, so a resident guard killed mid-run
 * never leaves probes on every exec of the host; and, with `events`, the private mount namespace
 * above. Every step is an exec: the pid Node holds is bpftrace's.
 */
export function bpftraceSpawn(o: { bin: string; args: readonly string[]; tracefs: string; events?: string | undefined }): { cmd: string; args: string[]; env: Record<string, string> } {
  const unshare = o.events ? ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p)) : undefined;
  if (!unshare) return { cmd: '/bin/sh', args: ['-c', INNER, o.bin, ...o.args], env: {} };
  // The trial run of unshare asks whether this host lets us make a mount namespace at all (a
  // container without CAP_SYS_ADMIN does not): without one, the plain start, never a failed one.
  const outer = `if ${unshare} --mount --propagation private true 2>/dev/null; then exec ${unshare} --mount --propagation private /bin/sh -c "$PRAETOR_INNER" "$0" "$@"; fi; `
    + 'PRAETOR_EVENTS= exec /bin/sh -c "$PRAETOR_INNER" "$0" "$@"';
  return { cmd: '/bin/sh', args: ['-c', outer, o.bin, ...o.args], env: { PRAETOR_INNER: INNER, PRAETOR_TRACEFS: o.tracefs, PRAETOR_EVENTS: o.events! } };
}
