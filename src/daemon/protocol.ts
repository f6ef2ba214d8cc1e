// The resident guard's wire protocol: newline-delimited JSON over a root-only Unix socket, one
// run per connection. Output bytes travel base64-encoded. The first message each way is a hello
// with the version: a CLI and a guard of different versions refuse each other, since a guard
// that enforces an older policy schema or rule pack would silently guard less than asked.
import { readFileSync } from 'node:fs';

/** Bumped when a message changes shape. */
export const PROTOCOL = 1;

/**
 * This Praetor's version. PRAETOR_GUARD_VERSION overrides it (to test an upgrade, or to pin a
 * canary guard); both sides read it the same way.
 */
export function praetorVersion(): string {
  if (process.env.PRAETOR_GUARD_VERSION) return process.env.PRAETOR_GUARD_VERSION;
  try { return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version; } catch { return 'unknown'; }
}

/**
 * What the client sends to start a run: the CLI's flags, with paths made absolute. The guard
 * checks it with the schema in run-request-schema.ts (zod stays off the thin client's path).
 */
export interface WireRunRequest {
  argv: string[];
  spec: Record<string, unknown>;
  policyFile?: string;
  phase?: 'setup' | 'agent';
  timeoutMs?: number;
  ledgerPath?: string;
  detect: boolean;
  stdin: boolean;
}

export type ClientMessage =
  | { t: 'hello'; version: string; protocol: number }
  | { t: 'run'; req: WireRunRequest }
  | { t: 'stdin'; d: string }
  | { t: 'stdin-end' }
  | { t: 'signal'; sig: 'SIGINT' | 'SIGTERM' }
  | { t: 'status' }
  | { t: 'stop' };

export interface WireError { code: string; message: string; hint?: string }

export type ServerMessage =
  | { t: 'hello'; version: string; protocol: number; pid: number; startedAt: number }
  | { t: 'out' | 'err'; d: string }
  | { t: 'log'; msg: string }
  | { t: 'report'; report: unknown }
  | { t: 'status'; pid: number; version: string; startedAt: number; runs: number; sensor: string; degraded: string[] }
  | { t: 'stopped' }
  | { t: 'error'; error: WireError };

export function encode(m: ClientMessage | ServerMessage): string {
  return JSON.stringify(m) + '\n';
}

/** Splits a byte stream into JSON messages; a line that is not JSON ends the stream (fail closed). */
export function lineReader(onMessage: (m: unknown) => void, onBad: (why: string) => void): (chunk: Buffer) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let m: unknown;
      try { m = JSON.parse(line); } catch { onBad('a message that is not JSON'); return; }
      onMessage(m);
    }
    if (buf.length > 64 << 20) onBad('a message over 64 MiB');
  };
}
