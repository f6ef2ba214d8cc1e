import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readSocketBytes, type SockInfo } from './process-cpu-sockets.ts';
import { readLink, readTcpTable } from './proc-util.ts';

// CPU per process and per thread (utime + stime deltas from /proc/PID/stat and
// /proc/PID/task/TID/stat), so a saturation signal names its process, and, for a process that
// holds a quota-saturating CPU, the connections its process tree keeps.
//
// Threat: a miner that no name gives away — a hashing loop in the stock interpreter, a renamed
// binary, a copy of xmrig in /usr/local — beside the pool connection it needs: long-lived,
// low-volume, periodic (jobs pushed, shares submitted). The cgroup's saturation alone cannot
// tell it from a compile; "this process at full CPU while its tree keeps such a connection"
// can, and no renaming changes it.
//
// What is read, per sample (1 s):
// - /proc/PID/stat of every pid in the sandbox's cgroup (ppid, utime, stime, start time);
// - task/*/stat only for processes above a fifth of a CPU (the top thread's name and share);
// - for saturated processes only: /proc/PID/fd of the process, its ancestors and descendants
//   (socket inodes), /proc/PID/net/tcp{,6} (which are established to a non-loopback peer), and
//   /proc/PID/net/dev (the sandbox namespace's non-loopback bytes, per sample).
// - bytes per connection from sock_diag's tcp_info (`ss -ti`, process-cpu-sockets.ts), asked
//   asynchronously once a second while a saturated process's tree holds a connection; where
//   that fails, the namespace's non-loopback interface counters (/proc/PID/net/dev) instead.
// Traffic is judged only over the time the process has been saturated (and the connection
// held): a package manager whose pool connection downloads between builds is idle while its
// build child pins the CPU; a pool keeps talking while the hashing runs.
// Limits, honestly: a connection is aged from when its process was first seen saturated;
// per-socket figures lag one sample (the query is asynchronous); with the namespace fallback
// a miner that also runs a bulk transfer looks high-volume; a miner split into two sibling
// processes (one hashes, the other holds the connection, neither the other's ancestor) is not
// linked.

export interface ProcessCpuReport {
  pid: number; ppid: number; comm: string; path: string;
  /** percent of one CPU over the last sample */
  cpuPct: number;
  /** how long it has held ≥ 80 % of min(quota, one CPU) */
  saturatedMs: number;
  threads: number;
  topThread?: { tid: number; comm: string; cpuPct: number };
  /** established outbound inet connections held by the process, its ancestors or descendants */
  netConns: number;
  netPeers: string[];
  /** how long the oldest of them has been held, as observed */
  netConnAgeMs: number;
  /** sandbox's non-loopback bytes per second over min(age, 120 s) */
  netBytesPerSec: number;
  /** samples (≈ seconds) with non-loopback traffic in that window */
  netActiveSecs: number;
  /** the two figures above are the connection's own (tcp_info), not the namespace's */
  netPerSocket: boolean;
}

interface Stat { ppid: number; comm: string; ticks: number; start: string; threads: number }

export const SATURATED_SHARE = 0.8;
const THREAD_MIN_SHARE = 0.2;
const NET_WINDOW_MS = 120_000;
const MAX_REPORTS = 4;
const LOOPBACK = /^(127\.|::1\]?:|::1$|::ffff:127\.|0\.0\.0\.0$|::$)/;
/** a tcp_info answer older than this is not used (the query runs once a sample) */
const SOCK_FRESH_MS = 2500;

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

export function parseStat(text: string): Stat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // Fields after the comm, 0-based from field 3 (state): ppid 4, utime 14, stime 15, num_threads 20, starttime 22.
  const ppid = Number(f[1]); const ut = Number(f[11]); const st = Number(f[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(ut) || !Number.isFinite(st)) return undefined;
  return { ppid, comm, ticks: ut + st, start: f[19] ?? '', threads: Number(f[17]) || 1 };
}

function readStat(path: string): Stat | undefined {
  try { return parseStat(readFileSync(path, 'utf8')); } catch { return undefined; }
}

/** The sandbox namespace's bytes in + out on every interface but lo, from /proc/PID/net/dev. */
export function parseNetDev(text: string): number {
  let sum = 0;
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0 || line.slice(0, i).trim() === 'lo') continue;
    const f = line.slice(i + 1).trim().split(/\s+/);
    sum += (Number(f[0]) || 0) + (Number(f[8]) || 0);
  }
  return sum;
}

/**
 * A pid in the sandbox's network namespace: the newest one whose namespace is not the host's.
 * Not simply the first: the runtime's outer process (bwrap) sits in the cgroup but outside the
 * sandbox's namespace.
 */
function sandboxNetPid(pids: readonly number[], stats: ReadonlyMap<number, Stat>): number | undefined {
  const host = readLink('/proc/self/ns/net');
  let fallback: number | undefined;
  for (let i = pids.length - 1; i >= 0; i--) {
    const pid = pids[i]!;
    if (!stats.has(pid)) continue;
    fallback ??= pid;
    const ns = readLink(`/proc/${pid}/ns/net`);
    if (ns !== undefined && ns !== host) return pid;
  }
  return fallback;
}

export class ProcessCpuTracker {
  readonly #pids: () => number[];
  readonly #share: number;
  #prev = new Map<number, { start: string; ticks: number }>();
  #prevThreads = new Map<string, number>();
  #prevAt: number | undefined;
  readonly #since = new Map<string, number>();
  /** per saturated process (pid:start): socket inode → first seen */
  readonly #conns = new Map<string, Map<number, number>>();
  readonly #net: Array<{ at: number; bytes: number }> = [];
  /** per socket inode: (time, bytes sent + received) from tcp_info, oldest first */
  readonly #sock = new Map<number, Array<{ at: number; bytes: number }>>();
  #sockInFlight = false;
  /** the latest tcp_info answer: established sockets of the namespace */
  #sockInfo: { at: number; m: Map<number, SockInfo> } | undefined;
  /** true once a sample found pids but could read none of their stat files */
  unreadable = false;
  /** why per-socket byte counts are unavailable, once a query failed in a live sandbox */
  socketBytesUnavailable: string | undefined;

  /** `cpuLimit`: the sandbox's quota in CPUs, null for none. */
  constructor(o: { pids: () => number[]; cpuLimit: number | null }) {
    this.#pids = o.pids;
    this.#share = SATURATED_SHARE * Math.min(o.cpuLimit ?? 1, 1);
  }

  sample(now = performance.now()): ProcessCpuReport[] {
    let pids: number[];
    try { pids = this.#pids(); } catch { return []; }
    const hz = ticksPerSecond();
    const stats = new Map<number, Stat>();
    for (const pid of pids) { const s = readStat(`/proc/${pid}/stat`); if (s) stats.set(pid, s); }
    this.unreadable = pids.length > 0 && stats.size === 0;
    const dtS = this.#prevAt === undefined ? 0 : (now - this.#prevAt) / 1000;
    const next = new Map<number, { start: string; ticks: number }>();
    const hot: Array<{ pid: number; st: Stat; share: number; key: string }> = [];
    for (const [pid, st] of stats) {
      next.set(pid, { start: st.start, ticks: st.ticks });
      const p = this.#prev.get(pid);
      const key = `${pid}:${st.start}`;
      if (!p || p.start !== st.start || dtS <= 0) continue;
      const share = (st.ticks - p.ticks) / hz / dtS;
      if (share >= this.#share) {
        if (!this.#since.has(key)) this.#since.set(key, now - dtS * 1000);
        hot.push({ pid, st, share, key });
      } else {
        this.#since.delete(key);
        this.#conns.delete(key);
      }
      if (share >= THREAD_MIN_SHARE && !hot.some((h) => h.pid === pid)) hot.push({ pid, st, share, key });
    }
    // Forget processes that are gone.
    for (const k of this.#since.keys()) { const [pid, start] = k.split(':'); if (next.get(Number(pid))?.start !== start) { this.#since.delete(k); this.#conns.delete(k); } }
    this.#prev = next;
    this.#prevAt = now;
    const netPid = sandboxNetPid(pids, stats);
    if (netPid !== undefined) {
      try { this.#net.push({ at: now, bytes: parseNetDev(readFileSync(`/proc/${netPid}/net/dev`, 'utf8')) }); } catch { /* gone */ }
      while (this.#net.length > 2 && now - this.#net[1]!.at > NET_WINDOW_MS) this.#net.shift();
    }

    const threads = new Map<string, number>();
    const reports: ProcessCpuReport[] = [];
    hot.sort((a, b) => b.share - a.share);
    for (const h of hot) {
      const top = this.#topThread(h.pid, dtS, hz, threads);
      const since = this.#since.get(h.key);
      if (since === undefined) continue; // busy, not saturated: thread figures kept for next time
      if (reports.length >= MAX_REPORTS) continue;
      const conn = this.#connections(h.key, h.pid, stats, h.pid, now);
      const win = Math.min(conn.ageMs, now - since, NET_WINDOW_MS);
      const perSock = this.#bestSocket(conn.inodes, win, now);
      const net = perSock ?? this.#netOver(win, now);
      reports.push({
        pid: h.pid, ppid: h.st.ppid, comm: h.st.comm, path: readLink(`/proc/${h.pid}/exe`) ?? '',
        cpuPct: Math.round(h.share * 1000) / 10, saturatedMs: Math.round(now - since), threads: h.st.threads,
        ...(top ? { topThread: top } : {}),
        netConns: conn.peers.length, netPeers: conn.peers, netConnAgeMs: Math.round(conn.ageMs),
        netBytesPerSec: Math.round(net.rate), netActiveSecs: net.active, netPerSocket: perSock !== undefined,
      });
    }
    this.#prevThreads = threads;
    return reports;
  }

  #topThread(pid: number, dtS: number, hz: number, into: Map<string, number>): ProcessCpuReport['topThread'] {
    let tids: string[];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { return undefined; }
    let best: ProcessCpuReport['topThread'];
    for (const tid of tids.slice(0, 256)) {
      const st = readStat(`/proc/${pid}/task/${tid}/stat`);
      if (!st) continue;
      const key = `${tid}:${st.start}`;
      into.set(key, st.ticks);
      const prev = this.#prevThreads.get(key);
      if (prev === undefined || dtS <= 0) continue;
      const pct = Math.round(((st.ticks - prev) / hz / dtS) * 1000) / 10;
      if (!best || pct > best.cpuPct) best = { tid: Number(tid), comm: st.comm, cpuPct: pct };
    }
    return best;
  }

  /** Outbound established sockets of the process, its ancestors and its descendants. */
  #connections(key: string, pid: number, stats: ReadonlyMap<number, Stat>, netPid: number, now: number): { peers: string[]; ageMs: number; inodes: number[] } {
    const tree = new Set<number>([pid]);
    for (let p = stats.get(pid)?.ppid; p !== undefined && stats.has(p) && !tree.has(p); p = stats.get(p)?.ppid) tree.add(p);
    const children = new Map<number, number[]>();
    for (const [c, s] of stats) { const a = children.get(s.ppid) ?? []; a.push(c); children.set(s.ppid, a); }
    for (const queue = [pid]; queue.length > 0;) for (const c of children.get(queue.shift()!) ?? []) if (!tree.has(c)) { tree.add(c); queue.push(c); }
    const inodes = new Set<number>();
    for (const p of tree) {
      let fds: string[] = [];
      try { fds = readdirSync(`/proc/${p}/fd`); } catch { continue; }
      for (const fd of fds) {
        const m = /^socket:\[(\d+)\]$/.exec(readLink(`/proc/${p}/fd/${fd}`) ?? '');
        if (m) inodes.add(Number(m[1]));
      }
    }
    const seen = this.#conns.get(key) ?? new Map<number, number>();
    const live = new Map<number, number>();
    const peers: string[] = [];
    if (inodes.size > 0) {
      this.#refreshSockets(netPid);
      const info = this.#sockInfo && now - this.#sockInfo.at <= SOCK_FRESH_MS ? this.#sockInfo.m : undefined;
      if (info) {
        for (const ino of inodes) {
          const e = info.get(ino);
          if (!e || LOOPBACK.test(e.peer.replace(/^\[/, ''))) continue;
          live.set(ino, seen.get(ino) ?? now);
          peers.push(e.peer);
        }
      } else if (this.socketBytesUnavailable) {
        // No sock_diag here: /proc's tables, read synchronously (they walk the kernel's whole
        // TCP hash table, a few ms each on a busy host).
        for (const f of ['/proc/net/tcp', '/proc/net/tcp6'] as const) {
          for (const [ino, e] of readTcpTable(f, netPid)) {
            if (!inodes.has(ino) || e.state !== 1 || LOOPBACK.test(e.ip)) continue;
            live.set(ino, seen.get(ino) ?? now);
            peers.push(`${e.ip.replace(/^::ffff:/, '')}:${e.port}`);
          }
        }
      }
    }
    this.#conns.set(key, live);
    let oldest = now;
    for (const t of live.values()) oldest = Math.min(oldest, t);
    return { peers, ageMs: now - oldest, inodes: [...live.keys()] };
  }

  /** Asks tcp_info for the namespace's sockets; the answer lands in #sock for the next sample. */
  #refreshSockets(netPid: number): void {
    if (this.#sockInFlight) return;
    this.#sockInFlight = true;
    readSocketBytes(netPid).then((m) => {
      const at = performance.now();
      this.#sockInfo = { at, m };
      for (const [ino, { bytes }] of m) {
        const h = this.#sock.get(ino) ?? [];
        h.push({ at, bytes });
        while (h.length > 2 && at - h[1]!.at > NET_WINDOW_MS) h.shift();
        this.#sock.set(ino, h);
      }
      for (const ino of this.#sock.keys()) if (!m.has(ino)) this.#sock.delete(ino);
    }, (e: Error) => {
      // A sandbox that ended meanwhile takes its namespace along: not a degradation.
      if (readLink(`/proc/${netPid}/ns/net`) !== undefined) this.socketBytesUnavailable = e.message;
    }).finally(() => { this.#sockInFlight = false; });
  }

  /** The most periodic of the tree's connections over the window, from tcp_info; undefined without data. */
  #bestSocket(inodes: readonly number[], winMs: number, now: number): { rate: number; active: number } | undefined {
    let best: { rate: number; active: number } | undefined;
    for (const ino of inodes) {
      const pts = (this.#sock.get(ino) ?? []).filter((p) => p.at >= now - winMs - 1);
      if (pts.length < 2) continue;
      let active = 0;
      for (let i = 1; i < pts.length; i++) if (pts[i]!.bytes > pts[i - 1]!.bytes) active++;
      const span = (pts[pts.length - 1]!.at - pts[0]!.at) / 1000;
      const rate = span > 0 ? (pts[pts.length - 1]!.bytes - pts[0]!.bytes) / span : 0;
      if (!best || active > best.active || (active === best.active && rate < best.rate)) best = { rate, active };
    }
    return best;
  }

  #netOver(winMs: number, now: number): { rate: number; active: number } {
    const pts = this.#net.filter((p) => p.at >= now - winMs - 1);
    if (pts.length < 2 || winMs <= 0) return { rate: 0, active: 0 };
    let active = 0;
    for (let i = 1; i < pts.length; i++) if (pts[i]!.bytes > pts[i - 1]!.bytes) active++;
    const span = (pts[pts.length - 1]!.at - pts[0]!.at) / 1000;
    return { rate: span > 0 ? (pts[pts.length - 1]!.bytes - pts[0]!.bytes) / span : 0, active };
  }
}
