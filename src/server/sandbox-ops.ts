// Session operations on a server sandbox entry; the file and command operations live in
// sandbox/file-ops.ts and are re-exported here for the routes.
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import type { SandboxEntry } from './core.ts';
import { Session, type SessionResult } from '../sandbox/index.ts';

export { MAX_FILE_BYTES, SandboxPath, readFile, writeFile, editFile, toArgv, execIn, type Tags, type ExecRequest } from '../sandbox/index.ts';

export const MAX_SESSIONS = 32;

export const SessionName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1-64)').describe('session name');

export function openSession(e: SandboxEntry, name: string, opts: { env?: Record<string, string>; cwd?: string } = {}): Session {
  const existing = e.sessions.get(name);
  if (existing && !existing.ended) throw new PraetorError('CONFLICT', `session ${name} already exists`, { hint: 'use it, close it first, or pick another name' });
  if (e.sessions.size >= MAX_SESSIONS) throw new PraetorError('QUOTA_EXCEEDED', `sandbox ${e.sb.id} already has ${MAX_SESSIONS} sessions`, { hint: 'close sessions you no longer use' });
  const s = new Session(e.sb, name, opts);
  e.sessions.set(name, s);
  return s;
}

export function getSession(e: SandboxEntry, name: string): Session {
  const s = e.sessions.get(name);
  if (!s || s.ended) throw new PraetorError('NOT_FOUND', `no session ${JSON.stringify(name.slice(0, 80))} in sandbox ${e.sb.id}`, { hint: 'create it first' });
  return s;
}

/** Runs a command in a session; the sandbox counts as busy (not idle) until it returns. */
export async function runInSession(e: SandboxEntry, name: string, command: string, timeoutMs?: number, input?: string): Promise<SessionResult> {
  const s = getSession(e, name);
  e.sessionRuns++;
  try { return await s.run(command, timeoutMs, input !== undefined ? { input } : {}); } finally {
    e.sessionRuns--;
    e.lastUsed = Date.now();
  }
}

export function closeSession(e: SandboxEntry, name: string): void {
  getSession(e, name).close();
  e.sessions.delete(name);
}

/** Live stats of a sandbox, from its cgroup. */
export function stats(e: SandboxEntry): Record<string, unknown> {
  const u = e.sb.usage();
  return { sandbox_id: e.sb.id, state: e.sb.state, usage: u, limits: e.sb.limits, running_commands: e.sb.runningCommands, sessions: e.sessions.size };
}
