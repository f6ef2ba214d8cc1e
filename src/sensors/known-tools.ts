import { closeSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { errorMessage, PraetorError } from '../errors.ts';

// The catalog behind `proc.tool`: which tools Praetor can recognise by content, read from
// rules/known-tools.yaml (see its header for the four ways a tool is recognised). Renaming a
// copy of ssh, socat or a miner changes every name-based signal; the bytes stay the same.

const HEX64 = /^[0-9a-f]{64}$/;

const ToolEntry = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/).describe('tool name proc.tool reports; matches the rule pack\'s list items'),
  names: z.array(z.string().min(1)).min(1).describe('file names (globs: * and ?) of its host copies, searched in the sandbox PATH directories'),
  markers: z.array(z.string().min(4)).optional().describe('byte strings that all occur in every build: usage text, banner, Go module path'),
  sha256: z.array(z.object({
    hash: z.string().regex(HEX64).describe('lower-case hex SHA-256 of a real binary'),
    source: z.string().min(1).describe('which binary it was computed from (package, version, architecture)'),
  }).strict()).optional().describe('hashes of known builds, computed from real binaries only'),
  multicall: z.boolean().optional().describe('one binary, many applets chosen by argv[0] (busybox)'),
  source: z.string().optional().describe('where the markers were checked'),
}).strict();

export const KnownToolsFile = z.object({
  tools: z.array(ToolEntry).describe('every tool proc.tool can name'),
}).strict();
export type KnownToolsFile = z.infer<typeof KnownToolsFile>;

export const DEFAULT_KNOWN_TOOLS = fileURLToPath(new URL('../../rules/known-tools.yaml', import.meta.url));

/** Where a sandbox finds programs (the sandbox manager's BASE_PATH); the host's tools live here. */
export const TOOL_DIRS: readonly string[] = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Busybox applets that are a shell: busybox's sh is ash, not the host's sh. */
const BUSYBOX_SHELLS = new Set(['sh', 'ash', 'hush']);

export interface HostTool { path: string; tool: string; dev: bigint; ino: bigint }

export class ToolCatalog {
  readonly tools: readonly z.infer<typeof ToolEntry>[];
  readonly #byName: { re: RegExp; tool: string }[] = [];
  readonly #byHash = new Map<string, string>();
  readonly #multicall = new Set<string>();
  /** marker sets, each a list of byte strings that must all occur */
  readonly markerSets: readonly { tool: string; markers: readonly Buffer[] }[];
  readonly maxMarkerLen: number;

  constructor(file: KnownToolsFile) {
    this.tools = file.tools;
    const sets: { tool: string; markers: Buffer[] }[] = [];
    for (const t of file.tools) {
      for (const n of t.names) this.#byName.push({ re: globToRegExp(n), tool: t.name });
      for (const h of t.sha256 ?? []) this.#byHash.set(h.hash, t.name);
      if (t.multicall) this.#multicall.add(t.name);
      if (t.markers?.length) sets.push({ tool: t.name, markers: t.markers.map((m) => Buffer.from(m, 'utf8')) });
    }
    this.markerSets = sets;
    this.maxMarkerLen = Math.max(1, ...sets.flatMap((s) => s.markers.map((m) => m.length)));
  }

  /** The tool a host file of this name is a copy of (used only to label the host's own binaries). */
  toolForName(fileName: string): string | undefined {
    for (const n of this.#byName) if (n.re.test(fileName)) return n.tool;
    return undefined;
  }

  toolForHash(sha256: string): string | undefined { return this.#byHash.get(sha256); }

  /** Records a hash computed from a host binary. The first claim wins (bash before sh → dash). */
  learnHash(sha256: string, tool: string): void { if (!this.#byHash.has(sha256)) this.#byHash.set(sha256, tool); }

  isMulticall(tool: string): boolean { return this.#multicall.has(tool); }

  /**
   * The applet a multicall binary runs: argv[0]'s basename, or argv[1]'s after `busybox`. An
   * applet that is itself a known tool (nc, wget, telnet) is that tool; its shells are ash.
   */
  appletTool(multicall: string, argv: readonly string[]): string {
    let applet = basename(argv[0] ?? '');
    if (applet === multicall && argv[1]) applet = basename(argv[1]);
    if (BUSYBOX_SHELLS.has(applet)) return 'ash';
    const t = applet === multicall ? undefined : this.toolForName(applet);
    return t && !this.isMulticall(t) ? t : multicall;
  }

  /**
   * The host's copies of every known tool in `dirs`, one per inode. A file is labelled by its
   * real name first (/usr/bin/sh → dash), then by the name that led to it.
   */
  findHostTools(dirs: readonly string[] = TOOL_DIRS): HostTool[] {
    const seen = new Map<string, HostTool & { byReal: boolean }>();
    for (const dir of dirs) {
      let names: string[];
      try { names = readdirSync(dir); } catch { continue; }
      for (const n of names) {
        const byLink = this.toolForName(n);
        if (!byLink) continue;
        try {
          const real = realpathSync(`${dir}/${n}`);
          const st = statSync(real, { bigint: true });
          // Only ELF files: /proc/PID/exe is never a script (python3-config is not python3).
          if (!st.isFile() || (st.mode & 0o111n) === 0n || !isElf(real)) continue;
          const key = `${st.dev}:${st.ino}`;
          const byRealName = this.toolForName(basename(real));
          const prev = seen.get(key);
          if (!prev || (!prev.byReal && byRealName)) {
            seen.set(key, { path: real, tool: byRealName ?? byLink, dev: st.dev, ino: st.ino, byReal: byRealName !== undefined });
          }
        } catch { /* dangling link, unreadable */ }
      }
    }
    return [...seen.values()].map(({ byReal: _, ...t }) => t);
  }
}

/** Reads and validates the catalog; a broken file is a typed error naming the key. */
export function loadToolCatalog(path: string = DEFAULT_KNOWN_TOOLS): ToolCatalog {
  let raw: unknown;
  try { raw = parse(readFileSync(path, 'utf8')); } catch (e) {
    throw new PraetorError('BAD_RULE', `cannot read the known-tools file ${path}: ${errorMessage(e)}`, { hint: 'fix the YAML syntax at the position named', cause: e });
  }
  const r = KnownToolsFile.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PraetorError('BAD_RULE', `${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`, {
      hint: 'each tool needs name and names; sha256 entries need a 64-hex hash and its source',
    });
  }
  const names = new Set<string>();
  for (const t of r.data.tools) {
    if (names.has(t.name)) throw new PraetorError('BAD_RULE', `${path}: tool ${t.name} is listed twice`, { hint: 'merge the two entries' });
    names.add(t.name);
  }
  return new ToolCatalog(r.data);
}

function isElf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46;
  } catch { return false; } finally { if (fd !== undefined) closeSync(fd); }
}

function basename(p: string): string { return p.slice(p.lastIndexOf('/') + 1); }

function globToRegExp(g: string): RegExp {
  const body = g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
