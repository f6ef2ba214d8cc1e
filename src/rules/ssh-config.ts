import { parseSshArgv } from './ssh-argv.ts';
import { hostMatches, parseSshConfig } from './ssh-config-parser.ts';

// The SSH client's effective configuration: what options are in force for one ssh process,
// resolved the way ssh(1) does, so that a RemoteForward in a -F file in /tmp, in an Include'd
// fragment or in ~/.ssh/config triggers the same rules as -R on the command line (the ROME
// reverse tunnel, hidden from argv). Order, as in ssh.c and readconf.c:
//   1. command-line -o options (first value of an option wins, so argv beats every file);
//   2. the -F file if given (`-F none`: no file at all), else ~/.ssh/config then
//      /etc/ssh/ssh_config;
//   3. inside a file, `Host` blocks apply when their patterns match the destination as given;
//      `Match` blocks are counted as matching whatever their criteria (conservative: evaluating
//      `exec` or `localnetwork` from outside would be a guess); `Include` (globs; relative to
//      ~/.ssh for user files, /etc/ssh for the system file) is read in place, only where active.
// The reader is an interface: the sensor reads through the sandbox's root (exec-identity-files),
// tests read from a map.

export type ConfigRead = { ok: true; text: string } | { ok: false; reason: string; missing?: boolean };

export interface SshConfigReader {
  /** a file as the ssh process sees it (absolute path inside the sandbox) */
  read(path: string): ConfigRead;
  /** glob(3) inside the sandbox, sorted */
  glob(pattern: string): string[];
}

export interface SshResolveInput {
  argv: readonly string[];
  reader: SshConfigReader;
  /** where ~ points for this process: its passwd home (what ssh uses), plus $HOME if it differs */
  homes: readonly string[];
  /** the process's working directory, for a relative -F */
  cwd: string;
  /**
   * The destination is not known yet (git's GIT_SSH_COMMAND, before git names the host):
   * every Host block counts, and argv's own options are reported too (they are not on the
   * exec'd process's command line).
   */
  anyHost?: boolean;
}

export interface EffectiveSshConfig {
  destination?: string;
  /** host part of the destination, what `Host` patterns are matched against */
  host?: string;
  /** keys (lower case, sorted) in force whose value came from a file, not from argv */
  opts: string[];
  /** files read, in order, as the sandbox names them */
  files: string[];
  /** what could not be inspected, and why: a hidden option may be there */
  unresolved: string[];
}

const SYSTEM_CONFIG = '/etc/ssh/ssh_config';
const MAX_DEPTH = 16; // readconf.c's READCONF_MAX_DEPTH
const MAX_FILES = 64;
/** options ssh accumulates instead of taking the first value */
const MULTI = new Set(['localforward', 'remoteforward', 'dynamicforward', 'identityfile', 'certificatefile', 'sendenv', 'setenv', 'permitremoteopen']);

type Source = 'argv' | 'file';
/** what a forwarding flag is as an option */
const FLAG_OPTION: Record<string, string> = { '-R': 'remoteforward', '-L': 'localforward', '-D': 'dynamicforward', '-w': 'tunnel' };

export function resolveSshConfig(input: SshResolveInput): EffectiveSshConfig {
  const a = parseSshArgv(input.argv);
  const host = a.destination === undefined ? undefined : destinationHost(a.destination);
  const first = new Map<string, { value: string; from: Source }>();
  const multi = new Map<string, Source>();
  const files: string[] = [];
  const unresolved: string[] = [];
  const homes = input.homes.length ? [...new Set(input.homes)] : [];

  const set = (key: string, value: string, from: Source): void => {
    if (MULTI.has(key)) { if (!multi.has(key)) multi.set(key, from); return; }
    if (!first.has(key)) first.set(key, { value, from });
  };
  for (const [k, v] of a.options) if (k) set(k, v, 'argv');

  const readFile = (path: string, user: boolean, home: string | undefined, depth: number, active: boolean, optional: boolean): void => {
    if (depth > MAX_DEPTH) { unresolved.push(`${path}: Include nested deeper than ${MAX_DEPTH}`); return; }
    if (files.length >= MAX_FILES) { unresolved.push(`${path}: more than ${MAX_FILES} files`); return; }
    const r = input.reader.read(path);
    if (!r.ok) {
      // A missing default file is normal; a file ssh was pointed to but we cannot read is not.
      if (!(r.missing && optional)) unresolved.push(`${path}: ${r.reason}`);
      return;
    }
    files.push(path);
    const parsed = parseSshConfig(r.text);
    for (const e of parsed.errors) unresolved.push(`${path}: ${e}`);
    let on = active;
    for (const l of parsed.lines) {
      if (l.keyword === 'host') { on = active && (input.anyHost === true || (host !== undefined && hostMatches(l.args, host))); continue; }
      if (l.keyword === 'match') {
        on = active;
        if (on && l.args.some((x) => x.toLowerCase() === 'exec')) set('match-exec', l.args.join(' '), 'file');
        continue;
      }
      if (!on) continue;
      if (l.keyword === 'include') {
        for (const pat of l.args) {
          const full = includePath(pat, user, home);
          if (full === undefined) { unresolved.push(`${path}:${l.line}: Include ${pat}: no home for ~`); continue; }
          const hits = /[*?[]/.test(full) ? input.reader.glob(full) : [full];
          for (const f of hits) readFile(f, user, home, depth + 1, on, /[*?[]/.test(full));
        }
        continue;
      }
      set(l.keyword, l.args.join(' '), 'file');
    }
  };

  if (a.configFile !== undefined) {
    if (a.configFile.toLowerCase() !== 'none') {
      const home = homes[0];
      const f = expandTilde(a.configFile, home);
      if (f === undefined) unresolved.push(`-F ${a.configFile}: no home for ~`);
      else readFile(f.startsWith('/') ? f : join(input.cwd, f), true, home, 0, true, false);
    }
  } else {
    for (const home of homes) readFile(`${home.replace(/\/$/, '')}/.ssh/config`, true, home, 0, true, true);
    readFile(SYSTEM_CONFIG, false, undefined, 0, true, true);
  }

  const opts = new Set<string>();
  const permitLocal = first.get('permitlocalcommand')?.value.toLowerCase() === 'yes';
  const counted = (from: Source) => from === 'file' || input.anyHost === true;
  for (const [k, v] of first) if (counted(v.from) && inForce(k, v.value, permitLocal)) opts.add(k);
  for (const [k, from] of multi) if (counted(from)) opts.add(k);
  if (input.anyHost) for (const [flag] of a.forwards) opts.add(FLAG_OPTION[flag] ?? flag);
  if (input.anyHost && a.flags.includes('-J')) opts.add('proxyjump');
  const out: EffectiveSshConfig = { opts: [...opts].sort(), files, unresolved };
  if (a.destination !== undefined) out.destination = a.destination;
  if (host !== undefined) out.host = host;
  return out;
}

/** Whether an option's first value turns it on; `Tunnel no` and `ProxyCommand none` do nothing. */
function inForce(key: string, value: string, permitLocalCommand: boolean): boolean {
  const v = value.trim().toLowerCase();
  switch (key) {
    case 'tunnel': return v !== 'no';
    case 'proxycommand': case 'proxyjump': return v !== 'none' && v !== '';
    case 'gatewayports': return v === 'yes';
    case 'localcommand': return permitLocalCommand && v !== '' && v !== 'none';
    default: return true;
  }
}

/** `user@host`, `ssh://user@host:2222`, `[::1]` → the host name ssh matches Host patterns with. */
export function destinationHost(dest: string): string {
  let d = dest;
  if (/^ssh:\/\//i.test(d)) {
    d = d.slice(6);
    const slash = d.indexOf('/');
    if (slash >= 0) d = d.slice(0, slash);
    d = d.slice(d.lastIndexOf('@') + 1);
    if (d.startsWith('[')) return d.slice(1, d.indexOf(']') > 0 ? d.indexOf(']') : undefined);
    return d.replace(/:\d+$/, '');
  }
  d = d.slice(d.lastIndexOf('@') + 1);
  if (d.startsWith('[') && d.endsWith(']')) d = d.slice(1, -1);
  return d;
}

function includePath(pat: string, user: boolean, home: string | undefined): string | undefined {
  const t = expandTilde(pat, home);
  if (t === undefined) return undefined;
  if (t.startsWith('/')) return t;
  if (!user) return `/etc/ssh/${t}`;
  return home === undefined ? undefined : `${home.replace(/\/$/, '')}/.ssh/${t}`;
}

function expandTilde(p: string, home: string | undefined): string | undefined {
  if (p !== '~' && !p.startsWith('~/')) return p;
  return home === undefined ? undefined : `${home.replace(/\/$/, '')}${p.slice(1)}`;
}

function join(dir: string, rel: string): string { return `${dir.replace(/\/$/, '')}/${rel}`; }
