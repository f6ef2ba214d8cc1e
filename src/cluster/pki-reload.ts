// Certificate rotation without a restart. A watcher on an identity directory (cert.pem, key.pem,
// ca.pem) notices new files (a renewal's atomic renames, a Kubernetes Secret's symlink swap, an
// operator's copy), loads and checks them, and hands the new identity to whoever serves or calls
// with it: TLS servers get it through setSecureContext (new connections use it, live ones keep
// theirs) and the control replica's node link builds new agents from it.
// Fail closed (threat: a half-written or planted file silently downgrading a link): files that
// do not make a valid identity of the expected role (and pass the caller's own check, e.g. the
// node id and address) are refused with an 'error' event and the identity in use stays in use.
// Nothing here ever falls back to no TLS; there is no such state to fall back to.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { PraetorError, errorMessage, isPraetorError } from '../errors.ts';
import { IDENTITY_FILES, loadIdentity, type ClusterIdentity, type ClusterRole } from './pki-identity.ts';
import { secureContextOptions } from './pki-tls.ts';

export interface IdentityWatchOptions {
  /** a check on top of loadIdentity (same id, names the advertised address); throw to refuse. */
  check?: (id: ClusterIdentity) => void;
  /** settle time after a file event: a rotation writes three files (default 150 ms). */
  debounceMs?: number;
  /** re-read this often too, for filesystems whose events do not arrive (default 30 s; 0: never). */
  pollMs?: number;
}

export interface IdentityWatcherEvents {
  reload: [identity: ClusterIdentity, previous: ClusterIdentity];
  error: [error: PraetorError];
}

/** Emits 'reload' with a new valid identity and 'error' when new files are refused. */
export class IdentityWatcher extends EventEmitter<IdentityWatcherEvents> {
  readonly dir: string;
  readonly role: ClusterRole;
  #current: ClusterIdentity;
  #seen: string;
  #fsw: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #o: IdentityWatchOptions;

  constructor(initial: ClusterIdentity, o: IdentityWatchOptions = {}) {
    super();
    this.dir = initial.dir;
    this.role = initial.role;
    this.#current = initial;
    this.#o = o;
    this.#seen = this.#fingerprint() ?? '';
    try {
      this.#fsw = watch(this.dir, { persistent: false }, () => this.#soon());
      this.#fsw.on('error', () => { this.#fsw?.close(); this.#fsw = undefined; });
    } catch { /* no events on this filesystem: the poll still sees changes */ }
    const pollMs = o.pollMs ?? 30_000;
    if (pollMs > 0) { this.#poll = setInterval(() => this.check(), pollMs); this.#poll.unref(); }
  }

  /** The identity in use: the last one that loaded and passed every check. */
  get current(): ClusterIdentity { return this.#current; }

  #fingerprint(): string | undefined {
    const h = createHash('sha256');
    try {
      for (const f of [IDENTITY_FILES.cert, IDENTITY_FILES.key, IDENTITY_FILES.ca]) h.update(readFileSync(join(this.dir, f))).update('\0');
    } catch (e) {
      return `unreadable:${errorMessage(e)}`;
    }
    return h.digest('hex');
  }

  #soon(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.check(), this.#o.debounceMs ?? 150);
    this.#debounce.unref();
  }

  /** Reads the directory now; reloads or refuses when its files changed since last seen. */
  check(): void {
    if (this.#closed) return;
    const fp = this.#fingerprint();
    if (fp === undefined || fp === this.#seen) return;
    this.#seen = fp; // a refused set is reported once, not on every poll
    let next: ClusterIdentity;
    try {
      next = loadIdentity(this.dir, this.role);
      this.#o.check?.(next);
    } catch (e) {
      const pe = isPraetorError(e) ? e : new PraetorError('CERT_INVALID', errorMessage(e), { hint: 'write a valid identity (cert.pem, key.pem, ca.pem) into the directory' });
      this.emit('error', new PraetorError(pe.code, `new certificate files in ${this.dir} refused, still using ${this.#current.role} ${this.#current.id}'s certificate ${this.#current.fingerprint256.slice(0, 23)}…: ${pe.message}`, { ...(pe.hint ? { hint: pe.hint } : {}), cause: e }));
      return;
    }
    if (next.fingerprint256 === this.#current.fingerprint256 && next.keyPem === this.#current.keyPem && next.caPem === this.#current.caPem) return;
    const previous = this.#current;
    this.#current = next;
    this.emit('reload', next, previous);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    this.#fsw?.close();
  }
}

/**
 * Watches `dir` and logs every reload and refusal; `onReload` applies a new identity. Throws at
 * once when the directory's identity is unusable now (a process must not start without one).
 */
export function watchIdentity(dir: string, role: ClusterRole, o: IdentityWatchOptions & { log?: (msg: string) => void; onReload?: (id: ClusterIdentity) => void } = {}): IdentityWatcher {
  const initial = loadIdentity(dir, role);
  o.check?.(initial);
  const w = new IdentityWatcher(initial, o);
  const log = o.log ?? (() => {});
  w.on('error', (e) => log(`cluster: ${e.code}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`));
  w.on('reload', (id) => {
    o.onReload?.(id);
    log(`cluster: ${id.role} ${id.id}: certificate reloaded from ${dir} (sha256 ${id.fingerprint256.slice(0, 23)}…, until ${id.notAfter.toISOString()}); new connections use it`);
  });
  return w;
}

/** Puts each reloaded identity into these TLS servers (new handshakes use it; live connections keep theirs). */
export function reloadServers(w: IdentityWatcher, servers: () => Iterable<TlsServer>): void {
  w.on('reload', (id) => {
    for (const s of servers()) {
      try { s.setSecureContext(secureContextOptions(id)); } catch (e) {
        w.emit('error', new PraetorError('CERT_INVALID', `a server refused the reloaded certificate of ${id.role} ${id.id}, and keeps its previous one: ${errorMessage(e)}`, { hint: 'check the files in the identity directory', cause: e }));
      }
    }
  });
}
