// The resident guard's wire protocol: newline-delimited JSON over a root-only Unix socket, one
// run per connection. Output bytes travel base64-encoded. The first message each way is a hello
// with the version: a CLI and a guard of different versions refuse each other, since a guard
// that enforces an older policy schema or rule pack would silently guard less than asked.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

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

/** What the client sends to start a run: the CLI's flags, with paths made absolute. */
export const WireRunRequest = z.object({
  argv: z.array(z.string()).min(1).describe('the command and its arguments'),
  spec: z.record(z.string(), z.unknown()).describe('sandbox spec input (validated by the sandbox manager)'),
  policyFile: z.string().startsWith('/').optional().describe('absolute path of the policy YAML'),
  phase: z.enum(['setup', 'agent']).optional().describe('network phase to start in'),
  timeoutMs: z.number().nonnegative().optional().describe('kill the command after this long (0: never, over the policy)'),
  ledgerPath: z.string().startsWith('/').optional().describe('absolute path of the ledger'),
  detect: z.boolean().describe('run sensors and rules'),
  stdin: z.boolean().describe('the client forwards stdin'),
}).strict();
export type WireRunRequest = z.infer<typeof WireRunRequest>;

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
