// Reading what reached the fake servers: the Node servers' JSON lines as they are, and sshd's
// own log (LogLevel DEBUG1) turned into the same shape, so tests ask one question one way.
import { readFile } from 'node:fs/promises';
import type { LogEntry } from './servers/log.ts';

async function readText(path: string): Promise<string> {
  try { return await readFile(path, 'utf8'); } catch { return ''; }
}

export async function readJsonLines(path: string): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const line of (await readText(path)).split('\n')) {
    if (!line) continue;
    // A line being written right now may be cut short; it will be whole on the next read.
    try { out.push(JSON.parse(line) as LogEntry); } catch { /* partial line */ }
  }
  return out;
}

// Classifies the lines that matter for tunnel scenarios; LogLevel DEBUG1 is what makes sshd log
// forwarding requests at all (`ssh -R` → remote, `ssh -L`/`-W` → local).
const SSHD_PATTERNS: [RegExp, (m: RegExpExecArray) => Record<string, unknown>][] = [
  [/Server listening on (\S+) port (\d+)/, (m) => ({ event: 'listening', local: `${m[1]}:${m[2]}` })],
  [/Connection from (\S+) port (\d+) on (\S+) port (\d+)/, (m) => ({ event: 'connection', remote: `${m[1]}:${m[2]}`, local: `${m[3]}:${m[4]}` })],
  [/Accepted (\S+) for (\S+) from (\S+) port (\d+)/, (m) => ({ event: 'auth', ok: true, method: m[1], user: m[2], remote: `${m[3]}:${m[4]}` })],
  [/(Failed \S+ for|Invalid user|Connection closed by authenticating user|Disconnected from authenticating user)/, () => ({ event: 'auth', ok: false })],
  [/tcpip-forward listen (\S+) port (\d+)/, (m) => ({ event: 'forward', kind: 'remote', listen: `${m[1]}:${m[2]}` })],
  [/server_request_direct_tcpip: originator (\S+) port (\d+), target (\S+) port (\d+)/, (m) => ({ event: 'forward', kind: 'local', target: `${m[3]}:${m[4]}` })],
  [/rtype streamlocal-forward@openssh\.com/, () => ({ event: 'forward', kind: 'remote-unix' })],
  [/ctype direct-streamlocal@openssh\.com/, () => ({ event: 'forward', kind: 'local-unix' })],
  [/ctype tun@openssh\.com/, () => ({ event: 'forward', kind: 'tun' })],
  [/Starting session: (\S+) for (\S+)/, (m) => ({ event: 'session', kind: m[1], user: m[2] })],
  [/^(Connection closed by|Disconnected from|Received disconnect from)/, () => ({ event: 'close' })],
];

/**
 * sshd's log as entries: every line is one, `event` classified, the line kept in `text`. The
 * topology writes each line as `<epoch ms> <sshd's line>`, stamped when sshd wrote it (sshd's
 * own stderr log has no timestamps); `ts` is that time. A line without a stamp (a plain `sshd
 * -E` log) gets `unstampedTs`, by default the time of reading.
 */
export async function readSshdLog(path: string, unstampedTs = Date.now()): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const raw of (await readText(path)).split('\n')) {
    const stamped = /^(\d{13}) (.*)$/s.exec(raw);
    const ts = stamped ? Number(stamped[1]) : unstampedTs;
    const text = (stamped ? stamped[2]! : raw).trim();
    if (!text) continue;
    let fields: Record<string, unknown> = { event: 'log' };
    for (const [re, f] of SSHD_PATTERNS) {
      const m = re.exec(text);
      if (m) { fields = f(m); break; }
    }
    out.push({ ts, server: 'ssh', event: 'log', ...fields, text });
  }
  return out;
}
