import { lstatSync, readdirSync } from 'node:fs';
import { isSensitivePath } from './sensitive-paths.ts';

// The credentials a sandbox holds before any of its processes opened them (baked into the
// image, planted as canaries, written from the host): found once per sandbox, by walking the
// places credentials live inside its root (/proc/<pid>/root of one of its processes), so that a
// first read by another name (a symlink, a hard link, a moved key) is known by identity
// (secret-identities.ts). Bounded: a home full of files costs at most SCAN_MAX entries.
// Never follows a symlink: an absolute link under /proc/<pid>/root resolves against the
// reader's root, the host's, which the sandbox would thereby choose for us to stat.

export interface FoundCredential { path: string; ino: bigint; dev: bigint }

const SCAN_MAX = 2000;
const DEPTH_MAX = 6;
/** where credentials live (sensitive-paths.ts); homes and /root are walked, the rest looked at */
const WALK = ['/root', '/home'];
const LOOK = ['/etc/shadow', '/etc/gshadow', '/etc/sudoers'];

/** dev_t as stat(2) encodes it, to the kernel's encoding (major << 20 | minor), which the sensor reports. */
export function kernelDev(userDev: bigint): bigint {
  const major = ((userDev >> 8n) & 0xfffn) | ((userDev >> 32n) & ~0xfffn);
  const minor = (userDev & 0xffn) | ((userDev >> 12n) & ~0xffn);
  return (major << 20n) | minor;
}

/** Credential files under `root` (a host path that is the sandbox's /), as the sandbox names them. */
export function scanCredentials(root: string): FoundCredential[] {
  const out: FoundCredential[] = [];
  let budget = SCAN_MAX;
  const visit = (inner: string, depth: number): void => {
    if (budget-- <= 0) return;
    let st;
    try { st = lstatSync(root + inner, { bigint: true }); } catch { return; }
    if (st.isFile()) {
      if (isSensitivePath(inner)) out.push({ path: inner, ino: st.ino, dev: kernelDev(st.dev) });
      return;
    }
    if (!st.isDirectory() || depth >= DEPTH_MAX) return;
    let names: string[];
    try { names = readdirSync(root + inner); } catch { return; }
    for (const n of names) visit(`${inner === '/' ? '' : inner}/${n}`, depth + 1);
  };
  for (const w of WALK) visit(w, 0);
  for (const l of LOOK) visit(l, DEPTH_MAX);
  return out;
}
