// JSON-lines logs of what reached each fake server. Written synchronously, one line per event,
// so a test that reads the log right after its client finished sees every byte that arrived —
// that is how a test proves "zero bytes of the mining handshake were delivered".
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';

/** One thing that reached a fake server. `event` says which of the optional fields are set. */
export interface LogEntry {
  /** Milliseconds since the epoch. */
  ts: number;
  /** Which fake server: web, tls, stratum, ssh, jsonrpc, dns, internal, metadata. */
  server: string;
  /**
   * connection | close (bytesIn/bytesOut of the whole connection) | data (raw bytes, stratum) |
   * request (HTTP) | sni | tls | tls-error | method (stratum JSON) | rpc (JSON-RPC) |
   * query (DNS) | auth | forward | log (sshd lines) | listening
   */
  event: string;
  /** Connection number, unique per server process and server. */
  conn?: number;
  /** Peer as `ip:port`. */
  remote?: string;
  /** Address the client reached, as `ip:port`. */
  local?: string;
  [key: string]: unknown;
}

export interface Logger {
  (event: string, fields?: Record<string, unknown>): void;
  close(): void;
}

export function openLogger(path: string, server: string): Logger {
  const fd = openSync(path, 'a');
  const log = ((event: string, fields: Record<string, unknown> = {}) => {
    writeSync(fd, JSON.stringify({ ts: Date.now(), server, event, ...fields }) + '\n');
  }) as Logger;
  log.close = () => closeSync(fd);
  return log;
}

export function addr(ip: string | undefined, port: number | undefined): string {
  return `${(ip ?? '?').replace(/^::ffff:/, '')}:${port ?? '?'}`;
}

/** Logs the connection and, when it closes, how many bytes crossed it; returns its number. */
export function trackConnection(log: Logger, socket: Socket, nextId: () => number): number {
  const conn = nextId();
  const remote = addr(socket.remoteAddress, socket.remotePort);
  const local = addr(socket.localAddress, socket.localPort);
  log('connection', { conn, remote, local });
  socket.once('close', () => log('close', { conn, remote, local, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten }));
  return conn;
}

export function counter(): () => number {
  let n = 0;
  return () => ++n;
}

export function head(buf: Buffer, max = 4096): string {
  return buf.subarray(0, max).toString('utf8');
}
