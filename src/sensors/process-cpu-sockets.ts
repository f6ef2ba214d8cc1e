import { execFile } from 'node:child_process';
import { errorMessage } from '../errors.ts';

// Bytes moved per TCP socket, from `ss -tinHe` (sock_diag's tcp_info: bytes_sent,
// bytes_received) run in the sandbox's network namespace. /proc has no per-socket byte
// counts; without this the mining rule falls back to the namespace's interface counters,
// which a miner can drown in a parallel bulk transfer.

/** `ss -tinHe` output → socket inode → bytes sent + received. */
export function parseSsTcpInfo(text: string): Map<number, number> {
  const out = new Map<number, number>();
  let ino: number | undefined;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (!/^\s/.test(line)) {
      const m = /\bino:(\d+)/.exec(line);
      ino = m ? Number(m[1]) : undefined;
      continue;
    }
    if (ino === undefined || ino === 0) continue;
    const sent = Number(/\bbytes_sent:(\d+)/.exec(line)?.[1] ?? 0);
    const recv = Number(/\bbytes_received:(\d+)/.exec(line)?.[1] ?? 0);
    out.set(ino, sent + recv);
    ino = undefined;
  }
  return out;
}

export function readSocketBytes(netPid: number, timeoutMs = 2000): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=/proc/${netPid}/ns/net`, 'ss', '-tinHe', 'state', 'established'], { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout) => {
      if (err) { reject(new Error(`ss -ti in the sandbox's network namespace failed: ${errorMessage(err)}`)); return; }
      resolve(parseSsTcpInfo(stdout));
    });
  });
}
