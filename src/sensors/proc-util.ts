import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename } from 'node:path';

// Small synchronous /proc readers shared by both kernel-sensor backends. Synchronous on purpose:
// a process that just exec'd may be gone in microseconds, and an await between "seen" and
// "read" is exactly the window a short-lived miner launcher or reverse shell slips through.

export function readCmdline(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return undefined; // kernel thread or zombie
    const argv = raw.toString('utf8').split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    return argv;
  } catch { return undefined; }
}

export function readLink(path: string): string | undefined {
  try { return readlinkSync(path); } catch { return undefined; }
}

/** What fds 0-2 point at (`socket:[123]`, `pipe:[9]`, `/dev/pts/0`); undefined where unreadable. */
export function readStdio(pid: number): (string | undefined)[] {
  return [0, 1, 2].map((fd) => readLink(`/proc/${pid}/fd/${fd}`));
}

export interface ProcStatus { name: string; ppid: number; uid: number }
export function readStatus(pid: number): ProcStatus | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string): string => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(s)?.[1] ?? '';
    return { name: get('Name'), ppid: Number(get('PPid')), uid: Number(get('Uid').split(/\s+/)[0]) };
  } catch { return undefined; }
}

/** The path of the unified (v2) hierarchy: /sys/fs/cgroup on pure v2 hosts, else …/unified. */
export function unifiedRoot(): string | undefined {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return '/sys/fs/cgroup';
  if (existsSync('/sys/fs/cgroup/unified/cgroup.procs')) return '/sys/fs/cgroup/unified';
  return undefined;
}

/** The v2 cgroup path of a pid (`/praetor-x/sb-y`), from the `0::` line of /proc/<pid>/cgroup. */
export function readCgroupV2Path(pid: number): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    return /^0::(.*)$/m.exec(s)?.[1];
  } catch { return undefined; }
}

/** The cgroup id (inode of the directory in the unified hierarchy), as bpftrace's `cgroup`. */
export function cgroupIdOfPath(root: string, rel: string): bigint | undefined {
  return statIno(`${root}${rel === '/' ? '' : rel}`);
}

/** For a v2 path `/a/praetor-x/sb-y/sub`, the sandbox directory `/a/praetor-x/sb-y`, if any. */
export function sandboxCgroupPath(rel: string): string | undefined {
  const m = /^(.*\/praetor[^/]*\/[^/]+)(\/.*)?$/.exec(rel);
  return m?.[1];
}

/** `socket:[123]` for socket fds, else what /proc says, else a kind from the inode mode. */
export function describeFd(mode: number, ino: number, link: string | undefined): string {
  const type = mode & 0xf000;
  if (type === 0xc000) return `socket:[${ino}]`;
  if (type === 0x1000) return link ?? `pipe:[${ino}]`;
  if (link !== undefined) return link;
  if (type === 0) return 'closed';
  return type === 0x2000 ? `chr:[${ino}]` : type === 0x8000 ? `file:[${ino}]` : `inode:[${ino}]`;
}

/** Parses /proc/net/tcp{,6}: socket inode → remote address, for connects the poller saw late. */
export function readTcpTable(file: '/proc/net/tcp' | '/proc/net/tcp6', pid?: number): Map<number, { ip: string; port: number; state: number }> {
  const out = new Map<number, { ip: string; port: number; state: number }>();
  let text: string;
  try { text = readFileSync(pid === undefined ? file : file.replace('/proc/', `/proc/${pid}/`), 'utf8'); } catch { return out; }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [ipHex, portHex] = (f[2] ?? '').split(':');
    if (!ipHex || !portHex) continue;
    out.set(Number(f[9]), { ip: hexToIp(ipHex), port: Number.parseInt(portHex, 16), state: Number.parseInt(f[3] ?? '0', 16) });
  }
  return out;
}

function hexToIp(h: string): string {
  if (h.length === 8) {
    const n = Number.parseInt(h, 16); // little-endian u32 on the hosts we run on (x86_64, arm64)
    return `${n & 255}.${(n >> 8) & 255}.${(n >> 16) & 255}.${(n >>> 24) & 255}`;
  }
  const b: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = h.slice(w * 8, w * 8 + 8);
    for (let i = 3; i >= 0; i--) b.push(Number.parseInt(word.slice(i * 2, i * 2 + 2), 16));
  }
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  return g.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** For socket inodes (undefined: not a socket), the TCP peer `ip:port` ('' if none/unknown),
 * looked up in the network namespace of the first of `netPids` that is still readable. */
export function peersForInodes(inos: (number | undefined)[], netPids: number[]): string[] {
  if (!inos.some((x) => x !== undefined)) return inos.map(() => '');
  for (const pid of netPids) {
    const v4 = readTcpTable('/proc/net/tcp', pid);
    const v6 = readTcpTable('/proc/net/tcp6', pid);
    if (v4.size + v6.size === 0) continue;
    return inos.map((ino) => {
      if (ino === undefined) return '';
      const e4 = v4.get(ino);
      if (e4) return `${e4.ip}:${e4.port}`;
      const e6 = v6.get(ino);
      return e6 ? `[${e6.ip}]:${e6.port}` : '';
    });
  }
  return inos.map(() => '');
}

/**
 * Every cgroup at or below a sandbox's own directory (`…/praetor-*` at `praetorLevel`, then
 * `sb-*`), as [its cgroup id, the sandbox directory's id]: what the eBPF sensor seeds its
 * sandbox filter with, for processes that were already running when it started.
 */
export function sandboxCgroupIds(root: string, praetorLevel: number, max: number): { ids: [bigint, bigint][]; skipped: number } {
  const ids: [bigint, bigint][] = [];
  let skipped = 0;
  const subdirs = (dir: string): string[] => {
    try { return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${dir}/${d.name}`); } catch { return []; }
  };
  const below = (dir: string, sb: bigint): void => {
    const id = statIno(dir);
    if (id === undefined) return;
    if (ids.length >= max) { skipped++; return; }
    ids.push([id, sb]);
    for (const d of subdirs(dir)) below(d, sb);
  };
  let level = [root];
  for (let l = 1; l < praetorLevel; l++) level = level.flatMap(subdirs);
  for (const group of level.flatMap(subdirs).filter((d) => basename(d).startsWith('praetor'))) {
    for (const sb of subdirs(group)) {
      const id = statIno(sb);
      if (id !== undefined) below(sb, id);
    }
  }
  return { ids, skipped };
}

function statIno(path: string): bigint | undefined {
  try { return statSync(path, { bigint: true }).ino; } catch { return undefined; }
}
