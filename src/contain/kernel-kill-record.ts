// The containment record of a kill the kernel did: the eBPF sensor sent SIGKILL from the exec
// tracepoint (rules with `kernel_kill: true`), so the process died before its first user-space
// instruction. User space only confirms it is gone, and records it `by: kernel`, apart from its
// own actions, so a report never credits user space with the kernel's latency or vice versa.
import type { EventOf } from '../events/index.ts';
import { readFileSync } from 'node:fs';
import { inCgroup, killConfirmed, Pidfd, type Sandbox } from '../sandbox/index.ts';
import type { Step } from './step.ts';

export async function confirmKernelKill(sb: Sandbox, exec: EventOf<'process.exec'>): Promise<Step> {
  const k = exec.kernelKill!;
  const base = { action: 'kill', by: 'kernel' as const, atNs: k.ts, targets: 1 };
  if (exec.pid === undefined) return { ...base, outcome: 'failed', error: 'the exec event names no pid to confirm' };
  // Signalling again is harmless (the kernel's SIGKILL is already pending); what matters is the
  // pidfd reporting the exit, which proves the kill and not merely that it was sent.
  const r = await killConfirmed([exec.pid], sb.cgroup.rel, { timeoutMs: 1000 });
  if (r.survivors.length > 0 || r.errors.length > 0) return { ...base, outcome: 'failed', error: r.errors.join('; ') || 'still running' };
  return { ...base, outcome: 'verified', reason: 'SIGKILL sent by the eBPF sensor at exec; the process is gone' };
}

const stopped = (pid: number): boolean => {
  try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'T'; } catch { return false; }
};

/**
 * The kernel SIGSTOPs the killed process's parent as it reaps it (so the rest of the agent's
 * script does not run before user space decides). When the sandbox is not held for its owner,
 * the parent goes on as it would after a user-space kill-tree: SIGCONT, through a pidfd, only if
 * it is still the sandbox's. Bounded wait: a parent that never waits is never stopped.
 */
export async function resumeParent(sb: Sandbox, ppid: number | undefined): Promise<void> {
  if (ppid === undefined || !inSandbox(sb, ppid)) return;
  for (let i = 0; i < 20 && !stopped(ppid); i++) await new Promise((r) => setTimeout(r, 10));
  if (!stopped(ppid)) return;
  const fd = Pidfd.open(ppid);
  if (!fd) return;
  try { if (inSandbox(sb, ppid)) fd.signal(SIGCONT); } finally { fd.close(); }
}

const SIGCONT = 18;
const inSandbox = (sb: Sandbox, pid: number): boolean => inCgroup(pid, sb.cgroup.rel);
