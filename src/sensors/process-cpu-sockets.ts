import { execFile } from 'node:child_process';
import { errorMessage } from '../errors.ts';

// Bytes moved per TCP socket, from `ss -tinHe` (sock_diag's tcp_info: bytes_sent,
// bytes_received) run in the sandbox's network namespace. /proc has no per-socket byte
// counts; without this the mining rule falls back to the namespace's interface counters,
// which a miner can drown in a parallel bulk transfer.

const ADDR = /^(\[[^\]]*\]|[0-9.]+|\*):(\d+|\*)$/;

export interface SockInfo { bytes: number; peer: string }

/** `ss -tinHe` output → socket inode → remote ip:port and bytes sent + received. */
export function parseSsTcpInfo(text: string): Map<number, SockInfo> {
  const out = new Map<number, SockInfo>();
  let cur: { ino: number; peer: string } | undefined;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (!/^\s/.test(line)) {
      const f = line.trim().split(/\s+/);
      const i = f.findIndex((x) => x.startsWith('ino:'));
      const ino = i > 0 ? Number(f[i]!.slice(4)) : 0;
      // Local then peer address; `uid:N` may sit between the peer and `ino:` (non-root owners).
      const peer = (f.filter((x) => ADDR.test(x))[1] ?? '').replace(/^\[(?:::ffff:)?([0-9.]+)\]/, '$1');
      cur = ino ? { ino, peer } : undefined;
      continue;
    }
    if (!cur) continue;
    const sent = Number(/\bbytes_sent:(\d+)/.exec(line)?.[1] ?? 0);
    const recv = Number(/\bbytes_received:(\d+)/.exec(line)?.[1] ?? 0);
    out.set(cur.ino, { bytes: sent + recv, peer: cur.peer });
    cur = undefined;
  }
  return out;
}

export function readSocketBytes(netPid: number, timeoutMs = 2000): Promise<Map<number, SockInfo>> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=/proc/${netPid}/ns/net`, 'ss', '-tinHe', 'state', 'established'], { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout) => {
      if (err) { reject(new Error(`ss -ti in the sandbox's network namespace failed: ${errorMessage(err)}`)); return; }
      resolve(parseSsTcpInfo(stdout));
    });
  });
}
