import { FILE_ID_MUL } from './ebpf-script.ts';

// Credentials known by what they are, not by the path that opened them (issue 13). Threat: a
// symlink (`ln -s ~/.ssh/id_rsa /tmp/notes`), a hard link, a `mv` of the key, or a path the
// kernel's prefix filter drops (`/usr/../home/agent/.aws/credentials`) reads a secret by a
// name no sensitive-path rule matches, and the data-flow guard (secret-taint.ts) never learns
// to keep its values in. Every successful open reports the inode it opened and its filesystem
// (ebpf-script.ts), so once a credential has been opened by its own name (created by `ssh-keygen`
// or `openssl`, written by a setup step, read once), every later open of the same file, by any
// name, is reported as an open of that credential. The identities also go into the kernel's @si
// map, which the prefix filter never drops.
//
// Not covered: a credential no process in the sandbox has ever opened by its own name (baked into
// the image, or written from the host) and then read only through another name. Its canary, PEM
// markers and egress scan still apply.

/** How the identities reach the kernel (BpftraceMaps in production). */
export interface IdentityMap {
  update(name: 'si', key: Buffer, value: Buffer): number;
  delete(name: 'si', key: Buffer): void;
}

/** The file identity the kernel reports (ebpf-script.ts FILE_ID_MUL): inode and dev_t (kernel encoding). */
export function fileId(ino: bigint, dev: bigint): bigint {
  return (ino ^ (dev * FILE_ID_MUL)) & 0xffff_ffff_ffff_ffffn;
}

const u64 = (x: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(x); return b; };
/** identities kept per sandbox; beyond it the oldest is forgotten (a sandbox making keys in a loop) */
const PER_SANDBOX_MAX = 512;

interface Known { path: string; sandbox: bigint }

export class SecretIdentities {
  readonly #byId = new Map<bigint, Known>();
  readonly #bySandbox = new Map<bigint, bigint[]>();
  #map: IdentityMap | undefined;
  /** why the kernel map is not written, once said */
  #mapError: string | undefined;

  /** Starts writing identities to the kernel (every one known so far, then each new one). */
  attachMap(map: IdentityMap): string | undefined {
    this.#map = map;
    for (const id of this.#byId.keys()) { const e = this.#put(id); if (e) return e; }
    return undefined;
  }

  detachMap(): void { this.#map = undefined; }

  /** The credential at `path` of sandbox `sandbox` (its cgroup id) is the file `id` (fileId). */
  learn(sandbox: bigint, id: bigint, path: string): string | undefined {
    if (id === 0n) return undefined;
    const had = this.#byId.get(id);
    if (had) { had.path = path; return undefined; }
    let list = this.#bySandbox.get(sandbox);
    if (!list) { list = []; this.#bySandbox.set(sandbox, list); }
    list.push(id);
    if (list.length > PER_SANDBOX_MAX) this.#drop(list.shift()!);
    this.#byId.set(id, { path, sandbox });
    return this.#put(id);
  }

  /** The credential path file `id` was last opened by, if it is a known credential. */
  lookup(id: bigint): string | undefined {
    return id === 0n ? undefined : this.#byId.get(id)?.path;
  }

  /** The sandbox is gone: its identities (tmpfs inode numbers get reused) with it. */
  forget(sandbox: bigint): void {
    for (const id of this.#bySandbox.get(sandbox) ?? []) this.#drop(id);
    this.#bySandbox.delete(sandbox);
  }

  /** sandboxes that hold identities, for the owner to sweep the ended ones */
  sandboxes(): bigint[] { return [...this.#bySandbox.keys()]; }

  get size(): number { return this.#byId.size; }

  #drop(id: bigint): void {
    this.#byId.delete(id);
    if (this.#map) { try { this.#map.delete('si', u64(id)); } catch { /* the sensor stopped */ } }
  }

  #put(id: bigint): string | undefined {
    if (!this.#map) return undefined;
    const e = this.#map.update('si', u64(id), u64(1n));
    if (e === 0) return undefined;
    // Full (E2BIG) or refused: user space still matches every record that passes the prefix filter.
    const why = `the kernel refused a credential identity (errno ${-e}); opens of it by a path under a system prefix are not seen`;
    if (this.#mapError === why) return undefined;
    this.#mapError = why;
    return why;
  }
}
