// The sandbox's own /etc: generated identity files plus an allow-list of the host's harmless
// configuration (linker cache, CA certificates, …). An allow-list, not a deny-list, because a
// new secret dropped into the host's /etc (shadow, sudoers, ssh host keys, cloud creds) must
// stay invisible without anyone remembering to add it somewhere.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { PraetorError } from '../errors.ts';

const execFileP = promisify(execFile);

/** Host /etc entries bound read-only into host-image sandboxes (skipped when absent). */
export const HOST_ETC_ALLOW: readonly string[] = [
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives', 'ssl', 'ca-certificates',
  'ca-certificates.conf', 'nsswitch.conf', 'localtime', 'timezone', 'os-release', 'debian_version',
  'mime.types', 'protocols', 'services', 'bash.bashrc', 'profile', 'profile.d', 'inputrc',
  'environment', 'gai.conf', 'host.conf', 'python3', 'python3.11', 'perl', 'magic', 'magic.mime',
  'gitconfig', 'npmrc', 'vim', 'terminfo', 'xattr.conf', 'login.defs', 'shells', 'ethertypes',
];

export interface Identity {
  uid: number;
  gid: number;
  user: string;
  home: string;
  hostname: string;
}

export interface EtcContent {
  passwd: string;
  group: string;
  hosts: string;
  hostname: string;
  'resolv.conf': string;
}

export function etcContent(id: Identity, resolvConf: string | undefined, extraHosts = ''): EtcContent {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\n${id.user}:x:${id.uid}:${id.gid}:${id.user}:${id.home}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\n${id.user}:x:${id.gid}:\nnogroup:x:65534:\n`,
    hosts: `127.0.0.1\tlocalhost\n127.0.1.1\t${id.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n${extraHosts}`,
    hostname: `${id.hostname}\n`,
    // No network: an empty resolver list makes lookups fail at once instead of timing out.
    'resolv.conf': resolvConf ?? '# this sandbox has no network\n',
  };
}

export const GENERATED_ETC = ['passwd', 'group', 'hosts', 'hostname', 'resolv.conf'] as const;

/** Writes the per-sandbox generated files into dir. */
export function writeEtc(dir: string, content: EtcContent): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(content)) writeFileSync(`${dir}/${name}`, text, { mode: 0o644 });
}

function fingerprint(): string {
  // Cheap change detection: names, sizes and mtimes of the allow-listed entries (one level deep).
  const h = createHash('sha256');
  for (const name of HOST_ETC_ALLOW) {
    const p = `/etc/${name}`;
    try {
      const st = lstatSync(p);
      h.update(`${name}:${st.size}:${st.mtimeMs}\n`);
      if (st.isDirectory()) for (const c of readdirSync(p)) { const cs = lstatSync(`${p}/${c}`); h.update(`${c}:${cs.size}:${cs.mtimeMs}\n`); }
    } catch { h.update(`${name}:absent\n`); }
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The read-only /etc that host-image sandboxes share: a copy of the allow-listed host entries
 * plus placeholders for the generated files (bound over per sandbox). One bind mount instead of
 * one per entry keeps sandbox start fast. Immutable once built and named by a fingerprint of
 * the host's files, so running sandboxes never see it change; a host change builds a new one.
 */
export async function hostEtcTemplate(stateDir: string): Promise<string> {
  const base = `${stateDir}/etc-host`;
  const dir = `${base}/${fingerprint()}`;
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`; // two managers in one process may build at once
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  const present = HOST_ETC_ALLOW.filter((n) => { try { lstatSync(`/etc/${n}`); return true; } catch { return false; } }).map((n) => `/etc/${n}`);
  // Asynchronously: on a loaded host the copy takes most of a second, which a synchronous spawn
  // took from every other tenant of the event loop (the guard's first run, the gateway).
  try { await execFileP('cp', ['-a', '--', ...present, tmp], { encoding: 'utf8' }); } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new PraetorError('SANDBOX_FAILED', `could not copy the host's /etc allow-list: ${String((e as { stderr?: string }).stderr ?? e).trim()}`, { hint: 'check free space in the state directory' });
  }
  for (const f of GENERATED_ETC) { rmSync(`${tmp}/${f}`, { force: true }); writeFileSync(`${tmp}/${f}`, ''); }
  try { renameSync(tmp, dir); } catch { rmSync(tmp, { recursive: true, force: true }); } // another praetor won the race
  if (!statSync(dir).isDirectory()) throw new PraetorError('SANDBOX_FAILED', `${dir} is not a directory`, { hint: 'remove it and retry' });
  return dir;
}

/** System trust bundle paths (Debian/Ubuntu/Alpine, RHEL/Fedora); the first is where the CA variables point. */
export const CA_BUNDLE_PATHS = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'] as const;

/**
 * Writes `<dir>/ca-bundle.crt`: the root's own bundle (root '' = the host) plus the gateway's
 * interception CA, for the runtime to bind over CA_BUNDLE_PATHS. Returns its path.
 */
export function writeCaBundle(dir: string, root: string, caPem: string): string {
  let base = '';
  for (const p of CA_BUNDLE_PATHS) { try { base = readFileSync(`${root}${p}`, 'utf8'); break; } catch { /* next */ } }
  const out = `${dir}/ca-bundle.crt`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(out, `${base.trimEnd()}\n# Praetor egress inspection CA (the gateway terminates TLS to allowed names)\n${caPem.trim()}\n`, { mode: 0o644 });
  return out;
}
