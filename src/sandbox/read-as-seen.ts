// Reads a file the way a process in the sandbox saw it, from the host, without running anything
// in the sandbox. Used when the sensor reports a credential read: the guard must learn what was
// read (secret-taint.ts) without starting a process the sensors would report in turn, and
// without trusting the path: it resolves inside the sandbox's own root (openInRoot), so a
// symlink the agent planted cannot make root read a host file.
import { closeSync, fstatSync, openSync, readlinkSync, readSync, constants } from 'node:fs';
import { openInRoot } from './syscalls.ts';
import type { Sandbox } from './sandbox.ts';

export type SeenFile = { ok: true; content: Buffer } | { ok: false; reason: string };

/** Reads `path` (absolute, or relative to `pid`'s working directory) as `pid` or, once it is gone, the sandbox's own processes see it. */
export function readAsSeen(sb: Sandbox, pid: number | undefined, path: string, maxBytes: number): SeenFile {
  const hostMnt = mountNs('self');
  // The reader first (it may sit in a mount namespace of its own), then the runtime's processes
  // whose mount namespace is not the host's: the sandbox's init sees the sandbox's root.
  const candidates = [...(pid !== undefined ? [pid] : []), ...sb.runtimeProcesses.map((p) => p.pid)];
  let last = 'no process of the sandbox is left to resolve the path in';
  for (const p of candidates) {
    const ns = mountNs(String(p));
    if (!ns || ns === hostMnt) continue;
    const relative = !path.startsWith('/');
    if (relative && p !== pid) { last = `${path} is relative and its reader (pid ${pid}) is gone`; continue; }
    let dir: number;
    try { dir = openSync(`/proc/${p}/${relative ? 'cwd' : 'root'}`, constants.O_RDONLY | constants.O_DIRECTORY); } catch { continue; }
    try {
      const fd = openInRoot(dir, relative ? path : path.slice(1) || '.');
      if (fd < 0) { last = `cannot open ${path} (errno ${-fd})`; continue; }
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) return { ok: false, reason: `${path} is not a regular file` };
        const buf = Buffer.alloc(Math.min(st.size, maxBytes));
        let n = 0;
        while (n < buf.length) { const r = readSync(fd, buf, n, buf.length - n, n); if (r === 0) break; n += r; }
        return { ok: true, content: buf.subarray(0, n) };
      } finally { closeSync(fd); }
    } finally { closeSync(dir); }
  }
  return { ok: false, reason: last };
}

function mountNs(pid: string): string | undefined {
  try { return readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return undefined; }
}
