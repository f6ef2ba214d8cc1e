// Canary credentials (policy `canaries: true`, the default): per sandbox, fake secrets where an
// agent hunting for keys would look — ~/.ssh/id_ed25519, ~/.aws/credentials, ~/.netrc and a
// secret-looking environment variable. No task needs them, so a read of one is hunting (rule
// "Canary credential read"), and their values in egress are exfiltration (the gateway scans
// outbound bytes for the tokens handed to it as `egressTokens`).
//
// Threats handled here: an image that already holds a real file at one of these paths must keep
// it (never clobbered: O_EXCL, and any existing entry skips the canary); an image that puts a
// symlink there (`.ssh -> /etc`) must not make the host write outside the sandbox, so no path
// component is ever followed (lstat each one, O_NOFOLLOW on the file). The values themselves
// never reach events or the ledger: only names and sha256 hashes do.
import { chownSync, closeSync, constants, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { generateCanaryValues, sha256Hex, type CanaryName, type CanaryValue } from './canary-values.ts';

/** What the sandbox, the sensors and the ledger may know about a planted canary: no value. */
export interface CanaryRecord {
  name: CanaryName;
  /** path inside the sandbox (file canaries) */
  path?: string;
  /** the same file as the host sees it, for opens the sensor resolves through the host's view */
  hostPath?: string;
  /** environment variable (the env canary) */
  env?: string;
  /** sha256 of each token value */
  sha256: string[];
}

/** The gateway's per-sandbox view: values to find in outbound bytes (see src/net). */
export interface EgressToken { name: string; value: string; kind: 'canary' | 'placeholder' }

export interface PlantedCanaries {
  records: CanaryRecord[];
  /** variables to add to every command's environment */
  env: Record<string, string>;
  /** the secret values, for the gateway only */
  egressTokens: EgressToken[];
}

export interface PlantOptions {
  /** the home directory as the host sees it (inside the sandbox's writable layer) */
  homeHost: string;
  /** the same directory inside the sandbox, e.g. /home/agent */
  home: string;
  uid: number;
  /** variables the sandbox already sets: an env canary never shadows one of them */
  envTaken: ReadonlySet<string>;
  /** comment of the SSH key (user@host, like ssh-keygen writes) */
  comment: string;
  /** for tests: the values to plant instead of fresh random ones */
  values?: CanaryValue[];
}

/** Plants every canary that does not collide with something already there; returns what was planted. */
export function plantCanaries(o: PlantOptions): PlantedCanaries {
  const out: PlantedCanaries = { records: [], env: {}, egressTokens: [] };
  if (!isRealDir(o.homeHost)) return out; // a symlinked home: plant nothing rather than follow it
  // AWS tooling pairs AWS_SECRET_ACCESS_KEY with an id from the environment: if the task set any
  // AWS_ variable, a canary secret there could break or hijack its real credentials.
  const awsTaken = [...o.envTaken].some((k) => k.startsWith('AWS_'));
  for (const c of o.values ?? generateCanaryValues({ comment: o.comment })) {
    if (c.env !== undefined) {
      if (o.envTaken.has(c.env) || (c.env.startsWith('AWS_') && awsTaken)) continue;
      out.env[c.env] = c.tokens[0]?.value ?? '';
      record(out, c, { env: c.env });
      continue;
    }
    if (c.rel === undefined || c.content === undefined) continue;
    const hostPath = writeNew(o.homeHost, c.rel, c.content, o.uid);
    if (hostPath === undefined) continue;
    for (const comp of c.companions ?? []) writeNew(o.homeHost, comp.rel, comp.content, o.uid, 0o644);
    record(out, c, { path: `${o.home}/${c.rel}`, hostPath });
  }
  return out;
}

function record(out: PlantedCanaries, c: CanaryValue, where: { path?: string; hostPath?: string; env?: string }): void {
  out.records.push({ name: c.name, ...where, sha256: c.tokens.map((t) => sha256Hex(t.value)) });
  for (const t of c.tokens) out.egressTokens.push({ name: t.name, value: t.value, kind: 'canary' });
}

function isRealDir(p: string): boolean {
  try { const st = lstatSync(p); return st.isDirectory() && !st.isSymbolicLink(); } catch { return false; }
}

/**
 * Creates `rel` below `base` with `content`, creating missing parent directories (0700, owned
 * by the agent). Returns the host path, or undefined when anything is already in the way: an
 * existing file (a real credential), a symlink or a non-directory component.
 */
function writeNew(base: string, rel: string, content: string, uid: number, mode = 0o600): string | undefined {
  const parts = rel.split('/');
  let dir = base;
  for (const part of parts.slice(0, -1)) {
    dir = `${dir}/${part}`;
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.isSymbolicLink()) return undefined;
    } catch {
      try { mkdirSync(dir, { mode: 0o700 }); chownSync(dir, uid, uid); } catch { return undefined; }
    }
  }
  const path = `${dir}/${parts.at(-1)}`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch { return undefined; } // EEXIST: a real file (or a link) is there, and stays
  try {
    writeSync(fd, content);
    chownSync(path, uid, uid);
  } finally { closeSync(fd); }
  return path;
}

/** `/a//b/./c/../d` → `/a/b/d`; `/proc/self/root/x` → `/x` (the same file through the process's root). */
export function normalisePath(p: string): string {
  const stripped = p.replace(/^\/proc\/(self|thread-self|[0-9]+)\/root(?=\/)/, '');
  const out: string[] = [];
  for (const part of stripped.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop(); else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** The canary planted at `path` (sandbox or host view), if any. */
export function canaryAtPath(records: readonly CanaryRecord[], path: string): CanaryName | undefined {
  const p = normalisePath(path);
  for (const r of records) if (r.path !== undefined && (r.path === p || r.hostPath === p)) return r.name;
  return undefined;
}

/** The ledger's form: name, where, hashes; never the host path or a value. */
export function canaryLedgerRecords(records: readonly CanaryRecord[]): Array<{ name: string; path?: string; env?: string; sha256: string[] }> {
  return records.map((r) => ({ name: r.name, ...(r.path ? { path: r.path } : {}), ...(r.env ? { env: r.env } : {}), sha256: r.sha256 }));
}
