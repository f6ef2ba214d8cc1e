import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, read, readlinkSync, readSync } from 'node:fs';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import { resolveInRoot } from './exec-identity-files.ts';
import { readCgroupV2Path, sandboxCgroupPath } from './proc-util.ts';
import { TOOL_DIRS, type ToolCatalog } from './known-tools.ts';

// Executable identity: the content hash of the file a process actually runs and the known tool
// it is a copy of (see rules/known-tools.yaml). A renamed copy of ssh keeps its bytes.
//
// Hot path: open /proc/PID/exe (the file itself, even if deleted or renamed since), fstat it,
// look up (dev, ino, mtime, size) in the cache: one open and one stat per exec (~25 µs). A miss
// hashes synchronously only files up to `syncMaxBytes` (8 MiB: every tool on a Debian host fits,
// python3.11 is 6.8 MiB, about 4 ms; ssh is 1.1 MiB, under 1 ms);
// a larger file (node: 99 MiB) is hashed off the critical path, so an argv rule on the exec
// never waits for it. The exec is then published with `identity: pending`, and the hash and
// tool follow as a `process.identity` event that rules re-evaluate (fields.ts). Markers are
// searched the same way, after the exec, for unknown hashes only.

export type IdentitySource = 'exe' | 'path' | 'pending' | 'unavailable';
export type ToolBy = 'hash' | 'marker' | 'busybox' | 'shebang';

export interface ExecIdentityResult {
  /** hex SHA-256 of the file that runs (a #! script's interpreter) */
  sha256?: string;
  /** known tool, null when checked and unknown, undefined when not (yet) known */
  tool?: string | null;
  toolBy?: ToolBy;
  /** exe: hashed through /proc/PID/exe; path: the process was gone, its path was hashed (degraded) */
  identity: IdentitySource;
  parentTool?: string;
  /** what arrives after the exec: a deferred hash, or a tool found by markers */
  later?: Promise<LateIdentity | undefined>;
}

export interface LateIdentity { sha256: string; tool: string | null; toolBy?: ToolBy }

interface Entry { sha256: string; tool: string | null; by?: 'hash' | 'marker' }

export interface ExecIdentityOptions {
  syncMaxBytes?: number;
  /** markers are not searched in files larger than this */
  markerMaxBytes?: number;
  cacheMax?: number;
  /** bytes read (and marker-searched) between two yields of the event loop */
  chunkBytes?: number;
  /**
   * Whether a live process belongs to a sandbox, so its root may stand in for a gone one's
   * (default: its cgroup is under a praetor* directory). Never the host's root: hashing a host
   * file that has the sandbox path's name would invent an identity.
   */
  inSandbox?: (pid: number) => boolean;
  /** search markers in files under the system directories too (default: only elsewhere) */
  markersEverywhere?: boolean;
}

/**
 * Where only the image's root can write (the host's own /usr for host-root sandboxes, read-only
 * to the agent). A renamed copy the agent planted lives elsewhere (/tmp, /workspace, home), so
 * markers are searched only there: a build's compilers (cc1 alone is 33 MiB) are not scanned.
 * A root agent writing into an image's /usr/bin is still named by hash, not by markers.
 */
const SYSTEM_PREFIXES = ['/usr/', '/bin/', '/sbin/', '/lib/', '/lib64/', '/lib32/', '/libx32/'];

const readAsync = promisify(read);
const MAX_SHEBANG = 256;

export class ExecIdentity {
  readonly catalog: ToolCatalog;
  readonly #cache = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();
  readonly #markerRuns = new Map<string, Promise<Entry>>();
  readonly #pidTool = new Map<number, string>();
  /** pid → ppid of live processes seen exec'ing: a gone process's files are read through its nearest live ancestor */
  readonly #parent = new Map<number, number>();
  readonly #o: Required<ExecIdentityOptions>;
  /** counters for the bench and for tests of the cache */
  readonly stats = { hits: 0, misses: 0, syncHashes: 0, asyncHashes: 0, markerScans: 0, fallbacks: 0, unavailable: 0 };

  constructor(catalog: ToolCatalog, o: ExecIdentityOptions = {}) {
    this.catalog = catalog;
    this.#o = { syncMaxBytes: 8 << 20, markerMaxBytes: 64 << 20, cacheMax: 8192, chunkBytes: 256 << 10, inSandbox: inPraetorCgroup, markersEverywhere: false, ...o };
  }

  /**
   * Hashes the host's copies of every known tool (TOOL_DIRS): a copy anywhere else has the same
   * bytes and so the same hash. Run once at start, before sandboxes do anything.
   */
  async learnHostTools(dirs: readonly string[] = TOOL_DIRS): Promise<{ tools: number; bytes: number; ms: number }> {
    const t0 = performance.now();
    let bytes = 0;
    const found = this.catalog.findHostTools(dirs);
    for (const h of found) {
      let fd: number | undefined;
      try {
        fd = openSync(h.path, 'r');
        const st = fstatSync(fd, { bigint: true });
        const sha256 = await hashFd(fd, Number(st.size), this.#o.chunkBytes);
        bytes += Number(st.size);
        this.catalog.learnHash(sha256, h.tool);
        this.#remember(statKey(st), { sha256, tool: this.catalog.toolForHash(sha256) ?? h.tool, by: 'hash' });
      } catch { /* vanished while scanning: nothing to learn */ } finally { if (fd !== undefined) closeSync(fd); }
    }
    return { tools: found.length, bytes, ms: performance.now() - t0 };
  }

  /** Identity of a process that just exec'd `path`; synchronous, see the header for the cost. */
  identify(pid: number, ppid: number | undefined, path: string, argv: readonly string[]): ExecIdentityResult {
    const parentTool = ppid === undefined ? undefined : this.#pidTool.get(ppid);
    if (ppid !== undefined) {
      if (this.#parent.size >= this.#o.cacheMax * 4) this.#parent.delete(this.#parent.keys().next().value!);
      this.#parent.set(pid, ppid);
    }
    let fd: number | undefined;
    try { fd = openSync(`/proc/${pid}/exe`, 'r'); } catch { /* gone already: fall back below */ }
    let r: ExecIdentityResult;
    if (fd !== undefined) r = this.#fromFd(fd, argv, 'exe', () => readLinkOr(`/proc/${pid}/exe`, path));
    else r = this.#fromPath(pid, ppid, path, argv);
    if (parentTool !== undefined) r.parentTool = parentTool;
    if (r.tool) this.#pidTool.set(pid, r.tool); else this.#pidTool.delete(pid);
    if (r.later) {
      r.later = r.later.then((l) => {
        if (l?.tool) this.#pidTool.set(pid, l.tool);
        return l;
      });
    }
    return r;
  }

  /** The process exited: its pid may be reused by something else. */
  forget(pid: number): void { this.#pidTool.delete(pid); this.#parent.delete(pid); }

  get cacheSize(): number { return this.#cache.size; }

  /** Takes ownership of fd (closes it, now or when the deferred work ends). */
  #fromFd(fd: number, argv: readonly string[], identity: 'exe' | 'path', where: () => string): ExecIdentityResult {
    let keep = false;
    try {
      const st = fstatSync(fd, { bigint: true });
      const key = statKey(st);
      const hit = this.#cache.get(key);
      if (hit) {
        this.stats.hits++;
        return this.#result(hit, argv, identity, this.#markerRuns.get(key));
      }
      this.stats.misses++;
      const size = Number(st.size);
      if (size <= this.#o.syncMaxBytes) {
        this.stats.syncHashes++;
        const buf = readAll(fd, size);
        const e = this.#entryFor(createHash('sha256').update(buf).digest('hex'));
        this.#remember(key, e);
        return this.#result(e, argv, identity, e.tool === null && this.#markersFor(where()) ? this.#scanMarkers(key, e, buf) : undefined);
      }
      // Too big to hash on the alert path: hash it from the same open file, off the path.
      let run = this.#inflight.get(key);
      if (!run) {
        this.stats.asyncHashes++;
        keep = true;
        run = this.#hashLater(fd, size, key, this.#markersFor(where())).finally(() => { closeSync(fd); this.#inflight.delete(key); });
        this.#inflight.set(key, run);
      }
      const later = run.then((e) => this.#late(e, argv));
      return { identity: 'pending', later };
    } catch {
      return { identity: 'unavailable' };
    } finally {
      if (!keep) closeSync(fd);
    }
  }

  /**
   * The process is gone (a short-lived exec): hash its path, read through its own or its
   * parent's root, and say so (`identity: path`). A #! script is replaced by its interpreter,
   * as the kernel did. Never a guess: if the file cannot be found inside the root, no hash.
   */
  #fromPath(pid: number, ppid: number | undefined, path: string, argv: readonly string[]): ExecIdentityResult {
    // The nearest live ancestor holds the same root (a sandbox's processes share one); for a
    // relative path its cwd is the best evidence left, and the result says `path`, not `exe`.
    const view = this.#liveAncestor(ppid === undefined ? [pid] : [pid, ppid]);
    if (view !== undefined) {
      const root = `/proc/${view}/root`;
      const host = resolveInRoot(root, path, path.startsWith('/') ? '/' : cwdOf(view));
      let fd: number | undefined;
      if (host) { try { fd = openSync(host, 'r'); } catch { /* not there */ } }
      if (fd !== undefined) {
        this.stats.fallbacks++;
        const interp = shebangInterpreter(fd);
        if (interp === undefined) return this.#fromFd(fd, argv, 'path', () => path);
        closeSync(fd);
        const ihost = interpreterPath(root, interp);
        let ifd: number | undefined;
        if (ihost) { try { ifd = openSync(ihost, 'r'); } catch { /* no interpreter */ } }
        if (ifd !== undefined) {
          const r = this.#fromFd(ifd, argv, 'path', () => interp);
          if (r.tool) r.toolBy = 'shebang';
          return r;
        }
      }
    }
    this.stats.unavailable++;
    return { identity: 'unavailable' };
  }

  /** The first of `start`, then their recorded ancestors, whose /proc entry can still be read. */
  #liveAncestor(start: number[]): number | undefined {
    const seen = new Set<number>();
    let p: number | undefined = start[0];
    const queue = [...start];
    for (let hops = 0; hops < 16 && queue.length > 0; hops++) {
      p = queue.shift()!;
      if (seen.has(p)) continue;
      seen.add(p);
      try { readlinkSync(`/proc/${p}/root`); if (this.#o.inSandbox(p)) return p; } catch { /* gone */ }
      const up = this.#parent.get(p);
      if (up !== undefined && queue.length === 0) queue.push(up);
    }
    return undefined;
  }

  #entryFor(sha256: string): Entry {
    const tool = this.catalog.toolForHash(sha256);
    return tool ? { sha256, tool, by: 'hash' } : { sha256, tool: null };
  }

  #result(e: Entry, argv: readonly string[], identity: 'exe' | 'path', markers: Promise<Entry> | undefined): ExecIdentityResult {
    const r: ExecIdentityResult = { sha256: e.sha256, tool: e.tool, identity };
    if (e.tool && e.by) r.toolBy = e.by;
    if (e.tool && this.catalog.isMulticall(e.tool)) { r.tool = this.catalog.appletTool(e.tool, argv); r.toolBy = 'busybox'; }
    if (markers && e.tool === null) r.later = markers.then((m) => (m.tool ? this.#late(m, argv) : undefined));
    return r;
  }

  #late(e: Entry, argv: readonly string[]): LateIdentity {
    if (e.tool && this.catalog.isMulticall(e.tool)) return { sha256: e.sha256, tool: this.catalog.appletTool(e.tool, argv), toolBy: 'busybox' };
    return e.tool && e.by ? { sha256: e.sha256, tool: e.tool, toolBy: e.by } : { sha256: e.sha256, tool: e.tool };
  }

  #remember(key: string, e: Entry): void {
    if (this.#cache.size >= this.#o.cacheMax) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, e);
  }

  #markersFor(location: string): boolean {
    return this.#o.markersEverywhere || !SYSTEM_PREFIXES.some((p) => location.startsWith(p));
  }

  async #hashLater(fd: number, size: number, key: string, markers: boolean): Promise<Entry> {
    const h = createHash('sha256');
    const scan = markers && size <= this.#o.markerMaxBytes ? new MarkerScan(this.catalog) : undefined;
    const buf = Buffer.alloc(Math.min(this.#o.chunkBytes, Math.max(1, size)));
    for (let off = 0; off < size;) {
      const { bytesRead } = await readAsync(fd, buf, 0, buf.length, off);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      scan?.push(chunk);
      off += bytesRead;
    }
    const e = this.#entryFor(h.digest('hex'));
    if (e.tool === null && scan) {
      this.stats.markerScans++;
      const t = scan.result();
      if (t) { e.tool = t; e.by = 'marker'; }
    }
    this.#remember(key, e);
    return e;
  }

  /** Searches an unknown file's bytes for markers in slices, yielding between them; updates the cache entry. */
  #scanMarkers(key: string, e: Entry, buf: Buffer): Promise<Entry> | undefined {
    if (buf.length > this.#o.markerMaxBytes || this.catalog.markerSets.length === 0 || !isElfBuf(buf)) return undefined;
    const run = (async () => {
      this.stats.markerScans++;
      const scan = new MarkerScan(this.catalog);
      for (let off = 0; off < buf.length; off += this.#o.chunkBytes) {
        scan.push(buf.subarray(off, off + this.#o.chunkBytes));
        await yieldLoop();
      }
      const t = scan.result();
      if (t) { e.tool = t; e.by = 'marker'; }
      return e;
    })().finally(() => this.#markerRuns.delete(key));
    this.#markerRuns.set(key, run);
    return run;
  }
}

/** Streams a file through every marker set; a marker split across two chunks is still found. */
class MarkerScan {
  readonly #sets: { tool: string; markers: readonly Buffer[]; seen: boolean[] }[];
  #tail = Buffer.alloc(0);
  readonly #keep: number;
  constructor(catalog: ToolCatalog) {
    this.#sets = catalog.markerSets.map((s) => ({ ...s, seen: s.markers.map(() => false) }));
    this.#keep = catalog.maxMarkerLen - 1;
  }
  push(chunk: Buffer): void {
    const hay = this.#tail.length ? Buffer.concat([this.#tail, chunk]) : chunk;
    for (const s of this.#sets) for (const [i, m] of s.markers.entries()) if (!s.seen[i] && hay.includes(m)) s.seen[i] = true;
    this.#tail = Buffer.from(hay.subarray(Math.max(0, hay.length - this.#keep)));
  }
  result(): string | undefined { return this.#sets.find((s) => s.seen.every(Boolean))?.tool; }
}

function statKey(st: { dev: bigint; ino: bigint; mtimeNs: bigint; size: bigint }): string {
  return `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`;
}

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? buf : buf.subarray(0, off);
}

async function hashFd(fd: number, size: number, chunk: number): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.alloc(Math.min(chunk, Math.max(1, size)));
  for (let off = 0; ;) {
    const { bytesRead } = await readAsync(fd, buf, 0, buf.length, off);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  return h.digest('hex');
}

function inPraetorCgroup(pid: number): boolean {
  const rel = readCgroupV2Path(pid);
  return rel !== undefined && sandboxCgroupPath(rel) !== undefined;
}

const isElfBuf = (b: Buffer): boolean => b.length >= 4 && b.readUInt32BE(0) === 0x7f454c46;

function readLinkOr(link: string, fallback: string): string {
  try { return readlinkSync(link); } catch { return fallback; }
}

function cwdOf(pid: number): string {
  try { return readlinkSync(`/proc/${pid}/cwd`); } catch { return '/'; }
}

/** `#!/usr/bin/env -S python3 -u` → python3; `#!/bin/sh -e` → /bin/sh; undefined if no #!. */
export function shebangInterpreter(fd: number): string | undefined {
  const b = Buffer.alloc(MAX_SHEBANG);
  let n: number;
  try { n = readSync(fd, b, 0, MAX_SHEBANG, 0); } catch { return undefined; }
  return parseShebang(b.subarray(0, n).toString('latin1'));
}

export function parseShebang(head: string): string | undefined {
  if (!head.startsWith('#!')) return undefined;
  const line = head.slice(2).split('\n')[0]!.trim();
  const words = line.split(/[ \t]+/).filter(Boolean);
  const interp = words[0];
  if (!interp) return undefined;
  if (interp.slice(interp.lastIndexOf('/') + 1) !== 'env') return interp;
  // env's own options (-S, -i, -u NAME) and NAME=value come before the program.
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === '-u' || w === '--unset') { i++; continue; }
    if (w.startsWith('-') || w.includes('=')) continue;
    return w;
  }
  return interp;
}

/** The host path of an interpreter inside `root`: absolute, or found on the sandbox PATH. */
function interpreterPath(root: string, interp: string): string | undefined {
  if (interp.startsWith('/')) return resolveInRoot(root, interp);
  for (const d of TOOL_DIRS) {
    const h = resolveInRoot(root, `${d}/${interp}`);
    if (h) return h;
  }
  return undefined;
}
