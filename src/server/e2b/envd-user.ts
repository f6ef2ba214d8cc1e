// The envd "user" an E2B call asks for (HTTP Basic `user:` on RPCs, `username` on /files).
// Praetor runs every command as the sandbox's unprivileged agent user and never as root inside
// a sandbox (threat: a root process inside the sandbox is one kernel bug from the host), so a
// call asking for root is refused with the reason instead of silently running as someone else.
import { PraetorError } from '../../errors.ts';

/**
 * Where relative paths start and commands run by default. E2B uses the user's home; Praetor's
 * sandboxes work in /workspace (the agent's $HOME, /home/agent, cannot be a command's starting
 * directory: the sandbox init enters it before dropping to the agent), so files written with a
 * relative path are where a command's relative path finds them.
 */
export const E2B_HOME = '/workspace';
const ACCEPTED = new Set(['', 'user', 'agent']);

export function userFromBasic(authorization: string | null | undefined): string {
  const m = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m) return '';
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? text : text.slice(0, i);
}

export function checkUser(user: string | undefined): void {
  if (user === undefined || ACCEPTED.has(user)) return;
  throw new PraetorError('FORBIDDEN', `user "${user.slice(0, 64)}" is not available: Praetor runs every command as the sandbox's unprivileged agent user (never root)`, { hint: 'leave `user` unset (or "user"); install what needs root into the image instead' });
}

/** An absolute path inside the sandbox: relative ones start at the agent's home, as in E2B. */
export function resolvePath(p: string): string {
  if (p === '' || p === '~') return E2B_HOME;
  if (p.startsWith('~/')) return `${E2B_HOME}/${p.slice(2)}`;
  return p.startsWith('/') ? p : `${E2B_HOME}/${p}`;
}
