// Kills that cannot hit the wrong process, and that are confirmed. `process.kill(pid)` names a
// process by a number the kernel recycles: between listing a sandbox's cgroup and signalling, the
// agent's process may exit and its pid be handed to a host process (threat: a containment that
// kills the host's sshd, or one that "kills" nothing and records success). A pidfd names one
// process for as long as it is open; we open it, then check that the process it names is still a
// member of the sandbox's cgroup, signal through it, and poll it until the process has exited.
// Privileged code (libc through koffi), kept small for audit, like syscalls.ts.
import { closeSync, readFileSync } from 'node:fs';
import koffi from 'koffi';
import { PraetorError } from '../errors.ts';
import { readStartTime } from '../util/index.ts';

type Libc = {
  syscall: (...args: unknown[]) => number | bigint;
  poll: (fds: { fd: number; events: number; revents: number }, n: number, timeout: number) => number;
  errno: () => number;
};

let libc: Libc | undefined; // bound on first use, like syscalls.ts

// The generic syscall table numbers (x86_64 and aarch64 agree since Linux 5.3).
const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const POLLIN = 1;
const ESRCH = 3;
const SIGKILL = 9;

function lib(): Libc {
  if (libc) return libc;
  const l = koffi.load('libc.so.6');
  const errnoLoc = l.func('int *__errno_location(void)');
  koffi.struct('praetor_pollfd', { fd: 'int', events: 'short', revents: 'short' });
  libc = {
    syscall: l.func('long syscall(long number, ...)') as Libc['syscall'],
    poll: l.func('int poll(_Inout_ praetor_pollfd *fds, unsigned long nfds, int timeout)') as Libc['poll'],
    errno: () => koffi.decode(errnoLoc(), 'int') as number,
  };
  return libc;
}

/** A process recorded by identity: its pid and its start time (which a recycled pid lacks). */
export interface ProcessIdentity { pid: number; startTime: string }

export function identityOf(pid: number): ProcessIdentity | undefined {
  const startTime = readStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** True when `id` still names the same live (or not yet reaped) process. */
export function isSameProcess(id: ProcessIdentity): boolean {
  return readStartTime(id.pid) === id.startTime;
}

/** An open pidfd; close it when done (it holds a kernel reference to the process). */
export class Pidfd {
  readonly pid: number;
  readonly fd: number;
  #closed = false;

  private constructor(pid: number, fd: number) { this.pid = pid; this.fd = fd; }

  /** Opens a pidfd for `pid`; undefined when no such process exists (it already exited). */
  static open(pid: number): Pidfd | undefined {
    const l = lib();
    const fd = Number(l.syscall(SYS_PIDFD_OPEN, 'int', pid, 'uint', 0));
    if (fd >= 0) return new Pidfd(pid, fd);
    const e = l.errno();
    if (e === ESRCH) return undefined;
    throw new PraetorError('HOST_UNSUPPORTED', `pidfd_open(${pid}) failed with errno ${e}`, { hint: 'Praetor needs Linux 5.3 or later (pidfd_open) to kill sandbox processes safely' });
  }

  /** Sends `sig` to exactly this process; false when it has already exited. */
  signal(sig = SIGKILL): boolean {
    const l = lib();
    if (Number(l.syscall(SYS_PIDFD_SEND_SIGNAL, 'int', this.fd, 'int', sig, 'void *', null, 'uint', 0)) === 0) return true;
    const e = l.errno();
    if (e === ESRCH) return false;
    throw new PraetorError('SANDBOX_FAILED', `pidfd_send_signal to pid ${this.pid} failed with errno ${e}`, { hint: 'report this as a bug: praetor runs as root and should be allowed to signal sandbox processes' });
  }

  /** The process has exited (a zombie counts: it runs no more instructions). */
  exited(): boolean {
    const p = { fd: this.fd, events: POLLIN, revents: 0 };
    return lib().poll(p, 1, 0) > 0 && (p.revents & POLLIN) !== 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try { closeSync(this.fd); } catch { /* closed already */ }
  }
}

/** Whether the process `pid` sits in cgroup `rel` (or below it) in any hierarchy. */
export function inCgroup(pid: number, rel: string): boolean {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch { return false; }
  const want = `/${rel}`;
  for (const line of text.split('\n')) {
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    if (path === want || path.startsWith(`${want}/`)) return true;
  }
  return false;
}

export interface KillResult {
  /** processes signalled and confirmed exited */
  killed: number[];
  /** processes that were already gone before the signal */
  gone: number[];
  /** processes still running at the deadline, or that could not be signalled */
  survivors: number[];
  errors: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * SIGKILLs each pid that is (checked after the pidfd is open) a member of cgroup `rel`, then
 * waits, without blocking the event loop, until every one has exited or `timeoutMs` passed.
 * `beforeWait` runs between signalling and waiting (a v1-frozen task dies only once thawed).
 */
export async function killConfirmed(pids: readonly number[], rel: string, o: { timeoutMs?: number; beforeWait?: () => Promise<void> } = {}): Promise<KillResult> {
  const res: KillResult = { killed: [], gone: [], survivors: [], errors: [] };
  const open: Pidfd[] = [];
  try {
    for (const pid of pids) {
      let fd: Pidfd | undefined;
      try { fd = Pidfd.open(pid); } catch (e) { res.survivors.push(pid); res.errors.push((e as Error).message); continue; }
      if (!fd) { res.gone.push(pid); continue; }
      // The pidfd is ours now; if the process it names is not the sandbox's (the pid was
      // recycled since the listing), ours has exited: leave the stranger alone.
      if (!inCgroup(pid, rel)) { res.gone.push(pid); fd.close(); continue; }
      try {
        if (fd.signal(SIGKILL)) open.push(fd);
        else { res.gone.push(pid); fd.close(); }
      } catch (e) { res.survivors.push(pid); res.errors.push((e as Error).message); fd.close(); }
    }
    await o.beforeWait?.();
    const end = Date.now() + (o.timeoutMs ?? 2000);
    let waiting = open;
    for (let delay = 1; ; delay = Math.min(delay + 1, 5)) {
      waiting = waiting.filter((fd) => { if (!fd.exited()) return true; res.killed.push(fd.pid); return false; });
      if (waiting.length === 0 || Date.now() > end) break;
      await sleep(delay);
    }
    for (const fd of waiting) { res.survivors.push(fd.pid); res.errors.push(`pid ${fd.pid} still running ${o.timeoutMs ?? 2000} ms after SIGKILL`); }
  } finally {
    for (const fd of open) fd.close();
  }
  return res;
}
