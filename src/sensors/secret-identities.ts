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

export class SecretIdentities {
  /** per sandbox (its cgroup id, never reused): file id to the credential path it is */
  readonly #bySandbox = new Map<bigint, Map<bigint, string>>();
  /** how many sandboxes hold each id: the kernel entry goes with the last (a host file two share) */
  readonly #refs = new Map<bigint, number>();
  #map: IdentityMap | undefined;
  /** why the kernel map is not written, once said */
  #mapError: string | undefined;

  /** Starts writing identities to the kernel (every one known so far, then each new one). */
  attachMap(map: IdentityMap): string | undefined {
    this.#map = map;
    for (const id of this.#refs.keys()) { const e = this.#put(id); if (e) return e; }
    return undefined;
  }

  detachMap(): void { this.#map = undefined; }

  /**
   * In sandbox `sandbox`, the file `id` (fileId) is the credential at `path`. Scoped to the
   * sandbox: inode numbers and anonymous devices (each sandbox's tmpfs) are reused after it
   * ends, and a file of a later sandbox must not inherit an earlier one's credential.
   */
  learn(sandbox: bigint, id: bigint, path: string): string | undefined {
    if (id === 0n) return undefined;
    let ids = this.#bySandbox.get(sandbox);
    if (!ids) { ids = new Map(); this.#bySandbox.set(sandbox, ids); }
    const had = ids.has(id);
    ids.set(id, path);
    if (had) return undefined;
    if (ids.size > PER_SANDBOX_MAX) this.#release(ids, ids.keys().next().value!);
    const n = this.#refs.get(id) ?? 0;
    this.#refs.set(id, n + 1);
    return n === 0 ? this.#put(id) : undefined;
  }

  /** The credential path file `id` was last known by in this sandbox, if it is one. */
  lookup(sandbox: bigint, id: bigint): string | undefined {
    return id === 0n ? undefined : this.#bySandbox.get(sandbox)?.get(id);
  }

  /** The sandbox is gone: its identities with it. */
  forget(sandbox: bigint): void {
    const ids = this.#bySandbox.get(sandbox);
    if (!ids) return;
    for (const id of [...ids.keys()]) this.#release(ids, id);
    this.#bySandbox.delete(sandbox);
  }

  /** sandboxes that hold identities, for the owner to sweep the ended ones */
  sandboxes(): bigint[] { return [...this.#bySandbox.keys()]; }

  #release(ids: Map<bigint, string>, id: bigint): void {
    ids.delete(id);
    const n = (this.#refs.get(id) ?? 1) - 1;
    if (n > 0) { this.#refs.set(id, n); return; }
    this.#refs.delete(id);
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
