// Operations on a sandbox shared by the native API, ROCK, GEM, episodes and MCP.
//
// Files are read and written by running a small command *inside* the sandbox as the agent uid,
// never by touching host paths. The kernel then does the confinement: paths resolve in the
// sandbox's mount namespace, so `../../..` stops at the sandbox root, a symlink to /etc/shadow
// means the sandbox's own (host-userland, read-only, unreadable to the agent) file, and
// permissions are the agent's. Threat: path traversal or a planted symlink turning a file API
// into a read/write primitive on the host (the class of bug openat2 RESOLVE_IN_ROOT exists for).
// We still reject `..` segments and NUL bytes up front, for a clear 400 instead of a surprise.
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import type { ExecOptions, ExecResult, Sandbox } from '../sandbox/index.ts';
import type { SandboxEntry } from './core.ts';
import { Session } from '../sandbox/index.ts';
import type { SessionResult } from '../sandbox/session.ts';

export const MAX_FILE_BYTES = 100 * 2 ** 20;
export const MAX_SESSIONS = 32;

export const SandboxPath = z.string().min(1).max(4096)
  .refine((p) => !p.includes('\0'), 'a path cannot contain NUL bytes')
  .refine((p) => !p.split('/').includes('..'), 'a path cannot contain ".." segments; give the path inside the sandbox directly')
  .describe('path inside the sandbox (absolute, or relative to its working directory)');

export const SessionName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1-64)').describe('session name');

export type Tags = NonNullable<ExecOptions['tags']>;

const READ_SCRIPT = `f=$1; n=$2
[ -e "$f" ] || { echo "$f: No such file or directory" >&2; exit 2; }
[ -d "$f" ] && { echo "$f: Is a directory" >&2; exit 3; }
[ -r "$f" ] || { echo "$f: Permission denied" >&2; exit 4; }
s=$(stat -L -c %s -- "$f") || exit 5
[ "$s" -le "$n" ] || { echo "$f: file is $s bytes, over the $n byte limit" >&2; exit 6; }
exec base64 -w0 -- "$f"`;

const WRITE_SCRIPT = `f=$1
[ -d "$f" ] && { echo "$f: Is a directory" >&2; exit 3; }
d=$(dirname -- "$f"); mkdir -p -- "$d" || exit 4
if [ "$2" = append ]; then exec cat >> "$f"; else exec cat > "$f"; fi`;

function fileError(path: string, r: ExecResult): PraetorError {
  const msg = (r.stderr || r.error || `exit ${r.code}`).trim().split('\n').pop()!.replace(/^(sh|cat|mkdir|head|base64|stat): /, '');
  if (r.exitCode === 4 || /Permission denied|Read-only file system|Not a directory|cannot create/.test(msg)) return new PraetorError('FORBIDDEN', `${path}: ${msg}`, { hint: 'the agent user cannot access it; write under /workspace, /tmp or the home directory' });
  if (r.exitCode === 2 || /No such file/.test(msg)) return new PraetorError('NOT_FOUND', `no file ${path} in the sandbox`, { hint: 'check the path; relative paths start at the sandbox working directory' });
  if (r.exitCode === 3 || /Is a directory/.test(msg)) return new PraetorError('BAD_ARGUMENT', `${path} is a directory`, { hint: 'give a file path' });
  if (r.exitCode === 6) return new PraetorError('TOO_LARGE', msg, { hint: 'read a smaller file, or download it in parts with a command' });
  if (/No space left/.test(msg)) return new PraetorError('TOO_LARGE', `${path}: the sandbox disk is full`, { hint: 'create the sandbox with a larger disk' });
  return new PraetorError('SANDBOX_FAILED', `${path}: ${msg}`, { hint: 'check the sandbox is running' });
}

export async function readFile(sb: Sandbox, path: string, tags?: Tags): Promise<Buffer> {
  const r = await sb.exec(['/bin/sh', '-c', READ_SCRIPT, 'sh', path, String(MAX_FILE_BYTES)], { timeoutMs: 60_000, ...(tags ? { tags } : {}) });
  if (r.code !== 0) throw fileError(path, r);
  return Buffer.from(r.stdout, 'base64');
}

export async function writeFile(sb: Sandbox, path: string, data: Buffer, opts: { append?: boolean; tags?: Tags } = {}): Promise<number> {
  if (data.length > MAX_FILE_BYTES) throw new PraetorError('TOO_LARGE', `${data.length} bytes is over the ${MAX_FILE_BYTES} byte file limit`, { hint: 'write smaller files' });
  const h = sb.spawn(['/bin/sh', '-c', WRITE_SCRIPT, 'sh', path, opts.append ? 'append' : 'truncate'], { stdin: true, timeoutMs: 120_000, ...(opts.tags ? { tags: opts.tags } : {}) });
  for (let i = 0; i < data.length; i += 1 << 20) h.write(data.subarray(i, i + (1 << 20)));
  h.closeStdin();
  const r = await h.done;
  if (r.code !== 0) throw fileError(path, r);
  return data.length;
}

/** Exact-string edit (the MCP/agent `edit` tool): old text must occur exactly once. */
export async function editFile(sb: Sandbox, path: string, oldText: string, newText: string, tags?: Tags): Promise<void> {
  const text = (await readFile(sb, path, tags)).toString('utf8');
  const at = text.indexOf(oldText);
  if (oldText === '' || at < 0) throw new PraetorError('BAD_ARGUMENT', `the text to replace was not found in ${path}`, { hint: 'read the file and copy the exact text, whitespace included' });
  if (text.indexOf(oldText, at + 1) >= 0) throw new PraetorError('BAD_ARGUMENT', `the text to replace occurs more than once in ${path}`, { hint: 'include more surrounding lines so it is unique' });
  await writeFile(sb, path, Buffer.from(text.slice(0, at) + newText + text.slice(at + oldText.length)), tags ? { tags } : {});
}

export interface ExecRequest {
  command: string | string[];
  shell?: boolean | undefined;
  timeoutMs?: number | undefined;
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  tags?: Tags | undefined;
}

/**
 * argv for a command. A list runs as is (through /bin/sh -c when `shell` is true); a string
 * runs through /bin/sh -c unless `shell` is explicitly false, when it is split on whitespace
 * (ROCK clients sending `ls -la` with shell=false get the program with its arguments).
 */
export function toArgv(command: string | string[], shell: boolean | undefined): string[] {
  if (Array.isArray(command)) {
    if (command.length === 0) throw new PraetorError('MISSING_COMMAND', 'the command list is empty', { hint: 'give at least the program name' });
    return shell ? ['/bin/sh', '-c', command.join(' ')] : command;
  }
  if (command.trim() === '') throw new PraetorError('MISSING_COMMAND', 'the command is empty', { hint: 'give a command' });
  if (shell !== false) return ['/bin/sh', '-c', command];
  return command.trim().split(/\s+/);
}

export function execIn(sb: Sandbox, r: ExecRequest): Promise<ExecResult> {
  return sb.exec(toArgv(r.command, r.shell), {
    ...(r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs } : {}),
    ...(r.cwd !== undefined ? { cwd: r.cwd } : {}),
    ...(r.env !== undefined ? { env: r.env } : {}),
    ...(r.tags ? { tags: r.tags } : {}),
  });
}

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
