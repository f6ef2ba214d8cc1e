// A warm pool of pre-created sandboxes of one spec. Handing one out is a map lookup, so an RL
// rollout's first tool call does not pay for namespace and cgroup setup; the pool refills
// in the background.
import type { SandboxManager } from './manager.ts';
import type { Sandbox } from './sandbox.ts';
import type { SandboxSpecInput } from './spec.ts';

export class WarmPool {
  readonly #m: SandboxManager;
  readonly #spec: SandboxSpecInput;
  readonly #size: number;
  readonly #ready: Sandbox[] = [];
  #filling = 0;
  readonly #inflight = new Set<Promise<void>>();
  #closed = false;
  #lastError: unknown;

  constructor(m: SandboxManager, spec: SandboxSpecInput, size: number) {
    this.#m = m;
    this.#spec = spec;
    this.#size = size;
  }

  get available(): number { return this.#ready.length; }
  get lastError(): unknown { return this.#lastError; }

  /** Fills the pool to its size (or to `upTo`, if smaller); resolves when that many are ready. */
  async fill(upTo = this.#size): Promise<void> {
    // A refill scheduled by take() may fire after close(): it must create nothing (it would leak).
    if (this.#closed) return;
    const want = Math.min(upTo, this.#size) - this.#ready.length - this.#filling;
    for (let i = 0; i < want; i++) {
      const p = this.#addOne().finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
    }
    await Promise.all([...this.#inflight]);
  }

  async #addOne(): Promise<void> {
    this.#filling++;
    try {
      const sb = await this.#m.create(this.#spec);
      if (this.#closed) await sb.destroy('pool closed');
      else {
        sb.onEnded(() => { const i = this.#ready.indexOf(sb); if (i >= 0) this.#ready.splice(i, 1); });
        this.#ready.push(sb);
      }
    } catch (e) {
      this.#lastError = e;
    } finally {
      this.#filling--;
    }
  }

  /** A ready sandbox, or a freshly created one when the pool is empty. */
  async take(): Promise<Sandbox> {
    const sb = this.#ready.shift();
    // Refill after handing out: creation does synchronous setup that must not delay the caller.
    if (!this.#closed) setImmediate(() => { void this.fill(); });
    return sb ?? this.#m.create(this.#spec);
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Creations still in flight destroy their sandbox when they land (see fill): wait for them,
    // or a guard that exits right after close leaves their cgroups behind.
    // Looped: a fill that began between take() and close() adds to the set while we wait.
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    await Promise.all(this.#ready.splice(0).map((s) => s.destroy('pool closed')));
  }
}
