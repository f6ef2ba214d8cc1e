import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';

// Reading a sandbox's files from the host, as the sandbox sees them: through /proc/PID/root,
// with every symlink resolved INSIDE that root. The sensor runs as root; the files are the
// agent's. A naive read of /proc/PID/root/home/agent/.ssh/config follows an absolute symlink
// (config -> /etc/shadow) against the HOST's root, so an agent could make Praetor read host
// files for it (confused deputy), and a FIFO in place of a config file would hang the sensor.
// Hence: links resolved by hand against the sandbox root, `..` clamped at it, the last open
// with O_NOFOLLOW|O_NONBLOCK, regular files only, size-capped.

const MAX_LINKS = 40;

/** The host path of `path` as seen by a process whose root is `root` (e.g. /proc/123/root). */
export function resolveInRoot(root: string, path: string, cwd = '/'): string | undefined {
  const abs = path.startsWith('/') ? path : `${cwd.replace(/\/$/, '')}/${path}`;
  let rest = abs.split('/');
  const out: string[] = [];
  let links = 0;
  while (rest.length > 0) {
    const part = rest.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') { out.pop(); continue; }
    const host = `${root}/${[...out, part].join('/')}`;
    let isLink: boolean;
    try { isLink = lstatSync(host).isSymbolicLink(); } catch { return undefined; }
    if (!isLink) { out.push(part); continue; }
    if (++links > MAX_LINKS) return undefined;
    let target: string;
    try { target = readlinkSync(host); } catch { return undefined; }
    if (target.startsWith('/')) out.length = 0;
    rest = [...target.split('/'), ...rest];
  }
  return `${root}/${out.join('/')}`;
}

export type SmallFile = { ok: true; text: string } | { ok: false; reason: string; missing?: boolean };

/** A regular file of at most `maxBytes`, read without following a last-component link or blocking. */
export function readSmallFile(hostPath: string, maxBytes: number): SmallFile {
  let fd: number;
  try { fd = openSync(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'no such file' : `cannot open (${code})`, missing: code === 'ENOENT' };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    if (st.size > maxBytes) return { ok: false, reason: `larger than ${maxBytes} bytes` };
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { ok: true, text: buf.subarray(0, off).toString('utf8') };
  } catch (e) {
    return { ok: false, reason: `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  } finally { closeSync(fd); }
}

/**
 * glob(3) over the sandbox's tree: `*`, `?` and `[…]` in any component, results sorted per
 * directory (as glob sorts), every directory resolved inside the root. Paths are returned as
 * the sandbox sees them.
 */
export function globInRoot(root: string, pattern: string, limit = 256): string[] {
  const parts = pattern.split('/').filter((p) => p !== '');
  let bases: string[] = ['/'];
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    const next: string[] = [];
    for (const b of bases) {
      const prefix = b === '/' ? '' : b;
      if (!/[*?[]/.test(part)) { next.push(`${prefix}/${part}`); continue; }
      const dir = resolveInRoot(root, b);
      if (!dir) continue;
      let names: string[];
      try { names = readdirSync(dir).sort(); } catch { continue; }
      const re = globPart(part);
      for (const n of names) {
        if (n.startsWith('.') && !part.startsWith('.')) continue; // glob(3) skips dotfiles for a leading wildcard
        if (re.test(n)) next.push(`${prefix}/${n}`);
        if (next.length >= limit) break;
      }
    }
    bases = last ? next : next.filter((p) => {
      const h = resolveInRoot(root, p);
      try { return h !== undefined && lstatSync(h).isDirectory(); } catch { return false; }
    });
  }
  return bases.slice(0, limit);
}

function globPart(g: string): RegExp {
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = g.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = g.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
