// The privileged plumbing: two network namespaces joined by one veth pair, created directly
// inside the namespaces (the root namespace never holds a topology link), and their removal.
// `host` gets only lo + its veth end, so whatever runs there can reach the fake internet and
// nothing else; `inet` has an `unreachable` default route, so a packet for a real address dies
// there with an immediate ICMP error instead of leaving the machine or hanging.
import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { HOST_IP, INET_IP, LINK_PREFIX, inetLoopbackIps } from './addresses.ts';

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  /** Killed with SIGKILL after this long; default 30 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  /** Exit status; 128 + signal number when killed by a signal (137 after a timeout). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface Names {
  runId: string;
  hostNs: string;
  inetNs: string;
  hostIf: string;
  inetIf: string;
  resolvDir: string;
}

export function names(runId: string): Names {
  return {
    runId, hostNs: `pt-${runId}-host`, inetNs: `pt-${runId}-inet`,
    // ≤ 15 characters, and `pt-` so the leak check would see one that escaped to the root ns.
    hostIf: `pt-${runId}-h`, inetIf: `pt-${runId}-i`, resolvDir: `/etc/netns/pt-${runId}-host`,
  };
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    const child = execFile(cmd, args, { maxBuffer: 64 << 20, env: opts.env, cwd: opts.cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      clearTimeout(timer);
      const signal = (err as { signal?: NodeJS.Signals } | null)?.signal ?? null;
      const raw = (err as { code?: unknown } | null)?.code;
      const code = !err ? 0 : typeof raw === 'number' ? raw : signal ? 128 + (SIGNALS[signal] ?? 0) : 127;
      resolve({ code, signal, stdout, stderr: stderr || (err && typeof raw !== 'number' && !signal ? err.message : ''), timedOut });
    });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

async function must(cmd: string, args: string[], input?: string): Promise<void> {
  const r = await run(cmd, args, { input, timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
}

/** `extraRoutes`: CIDRs inet routes back via host (e.g. sandbox subnets Praetor routes unNATed). */
export async function createNamespaces(n: Names, extraRoutes: string[] = []): Promise<void> {
  await must('ip', ['-batch', '-'], [
    `netns add ${n.hostNs}`,
    `netns add ${n.inetNs}`,
    `link add name ${n.hostIf} netns ${n.hostNs} type veth peer name ${n.inetIf} netns ${n.inetNs}`,
  ].join('\n') + '\n');
  await Promise.all([
    must('ip', ['-n', n.hostNs, '-batch', '-'], [
      'link set lo up',
      `addr add ${HOST_IP}/${LINK_PREFIX} dev ${n.hostIf}`,
      `link set ${n.hostIf} up`,
      `route add default via ${INET_IP} dev ${n.hostIf}`,
    ].join('\n') + '\n'),
    must('ip', ['-n', n.inetNs, '-batch', '-'], [
      'link set lo up',
      ...inetLoopbackIps().map((ip) => `addr add ${ip}/32 dev lo`),
      `addr add ${INET_IP}/${LINK_PREFIX} dev ${n.inetIf}`,
      `link set ${n.inetIf} up`,
      'route add unreachable default',
      ...extraRoutes.map((cidr) => `route add ${cidr} via ${HOST_IP}`),
    ].join('\n') + '\n'),
    // Forwarding on in inet only so that it answers "unreachable" at once for real addresses
    // (without it the kernel drops them silently and a connect() hangs); no ICMP rate limit so
    // a probing scenario gets that answer every time. Nothing is forwarded: there is no route.
    must('ip', ['netns', 'exec', n.inetNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0']),
  ]);
}

function pidsIn(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n').map(Number).filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  } catch { return []; }
}

function killAll(ns: string): number {
  const pids = pidsIn(ns);
  for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  return pids.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Kills every process in both namespaces (whoever started it), then deletes them. */
export async function destroyNamespaces(n: Names): Promise<string[]> {
  const problems: string[] = [];
  for (const ns of [n.hostNs, n.inetNs]) {
    // Bounded: 50 rounds of 20 ms; a process that survives SIGKILL that long is reported.
    for (let i = 0; i < 50 && killAll(ns) > 0; i++) await sleep(20);
    const left = pidsIn(ns);
    if (left.length > 0) problems.push(`processes still in ${ns}: ${left.join(' ')}`);
    const r = await run('ip', ['netns', 'del', ns], { timeoutMs: 10_000 });
    if (r.code !== 0 && !/No such file/.test(r.stderr)) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  await rm(n.resolvDir, { recursive: true, force: true });
  return problems;
}

/** The same, synchronously, for process 'exit' and signal handlers (no event loop there). */
export function destroyNamespacesSync(n: Names): void {
  for (const ns of [n.hostNs, n.inetNs]) {
    for (let i = 0; i < 50 && killAll(ns) > 0; i++) execFileSync('sleep', ['0.02']);
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
  }
  rmSync(n.resolvDir, { recursive: true, force: true });
}
