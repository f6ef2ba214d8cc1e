import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { errorMessage } from '../errors.ts';
import { readStartTime } from '../util/index.ts';
import type { FdRef, NetFacts, ProcNode } from './pipe-graph.ts';
import { readLink, readStatus, readTcpTable } from './proc-util.ts';

// What the pipe graph needs from /proc, read synchronously per process (a relay that exits
// between two reads simply drops out). What this relies on, all readable by root on Linux:
// - /proc/PID/fd/N links (`pipe:[ino]`, `socket:[ino]`, a FIFO's path, /dev/pts/N, /dev/ptmx),
//   stat() through them for a FIFO's device and inode (two paths to one FIFO are one object);
// - /proc/PID/fdinfo/N `flags` (O_ACCMODE: which end of a pipe or FIFO) and `tty-index`
//   (which pty a /dev/ptmx master drives);
// - /proc/PID/net/{tcp,tcp6,udp,udp6} of the sandbox's network namespace: socket inode →
//   remote address and state;
// - the sockets of the sandbox's network namespace from one `ss -tuxaneH` (sock_diag, run in
//   that namespace through nsenter): inet inode → remote address and state, and the peer of a
//   unix socket, which /proc does not show (UNIX_DIAG_PEER). Asynchronous on purpose: reading
//   /proc/net/tcp walks the kernel's whole TCP hash table (shared by every namespace) and took
//   about 6 ms per file on a loaded test host, synchronously, in the process that runs the rule
//   engine. /proc/PID/net/{tcp,tcp6,udp,udp6} remain the fallback when ss or nsenter fails.

const O_ACCMODE = 3;

function fdinfo(pid: number, fd: string): { acc: number; ttyIndex?: number } {
  try {
    const s = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const acc = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(s)?.[1] ?? '2', 8) & O_ACCMODE;
    const tty = /^tty-index:\s*(\d+)/m.exec(s)?.[1];
    return tty === undefined ? { acc } : { acc, ttyIndex: Number(tty) };
  } catch { return { acc: 2 }; }
}

/** The fds of one process that can carry a stdio chain (pipes, FIFOs, sockets, ptys). */
export function readFds(pid: number): FdRef[] | undefined {
  let names: string[];
  try { names = readdirSync(`/proc/${pid}/fd`); } catch { return undefined; }
  const out: FdRef[] = [];
  for (const name of names) {
    const link = readLink(`/proc/${pid}/fd/${name}`);
    if (!link) continue;
    const fd = Number(name);
    let m = /^pipe:\[(\d+)\]$/.exec(link);
    if (m) {
      const { acc } = fdinfo(pid, name);
      out.push({ fd, obj: `p:pipefs:${m[1]}`, kind: 'pipe', label: link, read: acc !== 1, write: acc !== 0 });
      continue;
    }
    m = /^socket:\[(\d+)\]$/.exec(link);
    // Kind unknown here (inet or unix): the caller settles it from the namespace's tables.
    if (m) { out.push({ fd, obj: `s:${m[1]}`, kind: 'unix', label: `socket:[${m[1]}]`, read: true, write: true }); continue; }
    m = /^\/dev\/pts\/(\d+)$/.exec(link);
    if (m) { out.push({ fd, obj: `ts:${m[1]}`, kind: 'pty', label: link, read: true, write: true }); continue; }
    if (link === '/dev/ptmx' || link === '/dev/pts/ptmx') {
      const { ttyIndex } = fdinfo(pid, name);
      if (ttyIndex !== undefined) out.push({ fd, obj: `tm:${ttyIndex}`, kind: 'pty', label: `ptmx(${ttyIndex})`, read: true, write: true });
      continue;
    }
    if (!link.startsWith('/')) continue;
    try {
      const st = statSync(`/proc/${pid}/fd/${name}`);
      if (!st.isFIFO()) continue;
      const { acc } = fdinfo(pid, name);
      out.push({ fd, obj: `p:${st.dev}:${st.ino}`, kind: 'fifo', label: link, read: acc !== 1, write: acc !== 0 });
    } catch { /* closed meanwhile */ }
  }
  return out;
}

export function readProcNode(pid: number): ProcNode | undefined {
  const st = readStatus(pid);
  const fds = st ? readFds(pid) : undefined;
  if (!st || !fds) return undefined;
  const exe = readLink(`/proc/${pid}/exe`);
  const start = Number(readStartTime(pid));
  return { pid, ppid: st.ppid, comm: st.name, fds, ...(Number.isFinite(start) ? { start } : {}), ...(exe ? { exeName: exe.slice(exe.lastIndexOf('/') + 1) } : {}) };
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.|0\.0\.0\.0$|::$)/;

/** Socket inode → remote ip:port, for inet sockets with a non-loopback peer in `netPid`'s namespace. */
export function readOutbound(netPid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6'] as const) {
    for (const [ino, e] of readTcpTable(f, netPid)) {
      // LISTEN (10) has no peer; TIME_WAIT/CLOSE (6, 7) sockets are no longer anybody's.
      if (e.state === 10 || e.state === 6 || e.state === 7 || e.port === 0 || LOOPBACK.test(e.ip)) continue;
      out.set(ino, f.endsWith('6') && !e.ip.startsWith('::ffff:') ? `[${e.ip}]:${e.port}` : `${e.ip.replace(/^::ffff:/, '')}:${e.port}`);
    }
  }
  // UDP tables share the layout; a connected UDP socket (nc -u) has a remote port.
  for (const f of ['udp', 'udp6']) {
    for (const [ino, e] of readTcpTable(`/proc/net/${f}` as '/proc/net/tcp', netPid)) {
      if (e.port === 0 || LOOPBACK.test(e.ip)) continue;
      out.set(ino, `${e.ip.replace(/^::ffff:/, '')}:${e.port}`);
    }
  }
  return out;
}

/** Inodes of every inet socket in the namespace (any state), to tell inet from unix fds. */
export function readInetInodes(netPid: number): Set<number> {
  const s = new Set<number>();
  for (const f of ['tcp', 'tcp6', 'udp', 'udp6']) for (const ino of readTcpTable(`/proc/net/${f}` as '/proc/net/tcp', netPid).keys()) s.add(ino);
  return s;
}

const ADDR = /^(\[[^\]]*\]|[0-9.]+|\*):(\d+|\*)$/;

export interface NetSockets { inet: Set<number>; outbound: Map<number, string>; unixPeer: Map<number, number> }

/** `ss -tuxaneH`: tcp/udp lines carry `ino:N` after the peer; unix lines carry both inodes. */
export function parseSsSockets(text: string): NetSockets {
  const out: NetSockets = { inet: new Set(), outbound: new Map(), unixPeer: parseSsUnix(text) };
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'tcp' && f[0] !== 'udp') continue;
    const i = f.findIndex((x) => x.startsWith('ino:'));
    const ino = i > 0 ? Number(f[i]!.slice(4)) : 0;
    if (!ino) continue;
    out.inet.add(ino);
    const state = f[1];
    // Local then peer address; `uid:N` may sit between the peer and `ino:` (non-root owners).
    const peer = f.filter((x) => ADDR.test(x))[1] ?? '';
    if (state === 'LISTEN' || state === 'TIME-WAIT') continue;
    const m = /^\[?(.*?)\]?:(\d+|\*)$/.exec(peer);
    if (!m || m[2] === '*' || m[2] === '0') continue;
    const ip = m[1]!.replace(/^::ffff:/, '').replace(/%.*$/, '');
    if (ip === '*' || LOOPBACK.test(ip)) continue;
    out.outbound.set(ino, ip.includes(':') ? `[${ip}]:${m[2]}` : `${ip}:${m[2]}`);
  }
  return out;
}

export function readNetSockets(netPid: number, timeoutMs = 2000): Promise<NetSockets> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=/proc/${netPid}/ns/net`, 'ss', '-tuxaneH'], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout) => {
      if (err) { reject(new Error(`ss in the sandbox's network namespace failed: ${errorMessage(err)}`)); return; }
      resolve(parseSsSockets(stdout));
    });
  });
}

export function parseSsUnix(text: string): Map<number, number> {
  const peers = new Map<number, number>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local-Address Local-Port Peer-Address Peer-Port [users]
    if (f.length < 8 || !f[0]?.startsWith('u_')) continue;
    const local = Number(f[5]);
    const peer = Number(f[7]);
    if (Number.isInteger(local) && Number.isInteger(peer) && local > 0 && peer > 0) peers.set(local, peer);
  }
  return peers;
}

/** Settles socket fds to inet or unix and builds the facts the graph needs. */
export function settleSockets(procs: ProcNode[], inet: ReadonlySet<number>): void {
  for (const p of procs) for (const r of p.fds) {
    if (r.obj.startsWith('s:') && inet.has(Number(r.obj.slice(2)))) { r.kind = 'inet'; r.label = `inet:[${r.obj.slice(2)}]`; }
  }
}

export type { NetFacts };
