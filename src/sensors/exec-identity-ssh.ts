import { readFileSync, readlinkSync } from 'node:fs';
import { resolveSshConfig, splitArgs, type EffectiveSshConfig, type SshConfigReader } from '../rules/index.ts';
import { globInRoot, readSmallFile, resolveInRoot } from './exec-identity-files.ts';

// Effective SSH configuration of a live ssh process, read through the sandbox's root the way
// that process will read it (see src/rules/ssh-config.ts for the resolution order). Done at
// exec time, which is before ssh reads its files: an agent that rewrites a config file in the
// microseconds between is a race we accept (the gateway still sees the SSH handshake).

const MAX_CONFIG_BYTES = 256 << 10;

/** The process's view: its root, its passwd home (what ssh uses for ~) and $HOME, its cwd. */
export function sshConfigOf(pid: number, ppid: number | undefined, argv: readonly string[]): EffectiveSshConfig | undefined {
  const viewPid = [pid, ppid].find((p) => p !== undefined && canRead(`/proc/${p}/root`));
  if (viewPid === undefined) return undefined;
  return resolveSshConfig({ argv, reader: readerFor(viewPid), homes: homesOf(viewPid, `/proc/${viewPid}/root`), cwd: cwdOf(viewPid) });
}

/**
 * git runs `$GIT_SSH_COMMAND` (through sh) or `$GIT_SSH` for ssh remotes: the ssh options it
 * will use are in git's environment before any ssh exists. Resolved with every Host block
 * counted, since git has not named the host yet. Undefined when neither variable is set.
 * (core.sshCommand in git config files is not read yet.)
 */
export function gitSshConfigOf(pid: number): EffectiveSshConfig | undefined {
  let env: string[];
  try { env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0'); } catch { return undefined; }
  const get = (k: string) => env.find((v) => v.startsWith(`${k}=`))?.slice(k.length + 1);
  const cmd = get('GIT_SSH_COMMAND');
  const words = cmd !== undefined ? splitArgs(cmd).args : (get('GIT_SSH') !== undefined ? [get('GIT_SSH')!] : undefined);
  if (!words || words.length === 0) return undefined;
  return resolveSshConfig({ argv: words, reader: readerFor(pid), homes: homesOf(pid, `/proc/${pid}/root`), cwd: cwdOf(pid), anyHost: true });
}

function cwdOf(pid: number): string {
  try { return readlinkSync(`/proc/${pid}/cwd`); } catch { return '/'; }
}

function readerFor(viewPid: number): SshConfigReader {
  const root = `/proc/${viewPid}/root`;
  const reader: SshConfigReader = {
    read(path) {
      const host = resolveInRoot(root, path);
      return host === undefined ? { ok: false, reason: 'no such file', missing: true } : readSmallFile(host, MAX_CONFIG_BYTES);
    },
    glob: (pattern) => globInRoot(root, pattern),
  };
  return reader;
}

/** ssh takes ~ from getpwuid(getuid()); $HOME is read too, in case the two disagree (conservative). */
function homesOf(pid: number, root: string): string[] {
  const homes: string[] = [];
  const uid = nsUid(pid);
  const passwd = resolveInRoot(root, '/etc/passwd');
  const pw = passwd ? readSmallFile(passwd, 1 << 20) : undefined;
  if (pw?.ok && uid !== undefined) {
    for (const line of pw.text.split('\n')) {
      const f = line.split(':');
      if (f.length >= 7 && f[2] === String(uid) && f[5]) { homes.push(f[5]); break; }
    }
  }
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    const home = env.find((v) => v.startsWith('HOME='))?.slice(5);
    if (home?.startsWith('/') && !homes.includes(home)) homes.push(home);
  } catch { /* gone */ }
  return homes;
}

/** The process's real uid as its own user namespace numbers it (the sandbox's passwd does). */
function nsUid(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hostUid = Number(/^Uid:\s*(\d+)/m.exec(status)?.[1]);
    if (!Number.isInteger(hostUid)) return undefined;
    const map = readFileSync(`/proc/${pid}/uid_map`, 'utf8');
    for (const l of map.trim().split('\n')) {
      const [inside, outside, count] = l.trim().split(/\s+/).map(Number);
      if (inside === undefined || outside === undefined || count === undefined) continue;
      if (hostUid >= outside && hostUid < outside + count) return inside + (hostUid - outside);
    }
    return hostUid;
  } catch { return undefined; }
}

function canRead(p: string): boolean {
  try { readlinkSync(p); return true; } catch { return false; }
}
