// A control replica's view of the nodes: ordinal → address and state, read from the
// membership table and refreshed about once a second (and at once on a miss), so routing a call
// costs no query. The same loop declares stale nodes lost (ClusterControl.detectLost: stale
// heartbeat AND a free session lock); every replica runs it, the transaction makes it once.
import { errorMessage } from '../errors.ts';
import type { ClusterControl, LostNode } from './control.ts';
import type { NodeRow } from './schema.ts';

export interface DirectoryOptions {
  refreshMs?: number;
  /** a node silent this long (and whose session is gone) is lost (default 5 s). */
  lostAfterMs?: number;
  onLost?: (n: LostNode) => void;
  /** reservations no node confirmed in this long are ended (default 10 min: an image's first pull may be slow). */
  reservationTtlMs?: number;
  log?: (msg: string) => void;
}

export class NodeDirectory {
  readonly #ctl: ClusterControl;
  readonly #o: DirectoryOptions;
  #byOrdinal = new Map<number, NodeRow>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #lastError: string | undefined;
  #ticking = false;
  #ticks = 0;

  constructor(ctl: ClusterControl, o: DirectoryOptions = {}) {
    this.#ctl = ctl;
    this.#o = o;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => { void this.#tick(); }, this.#o.refreshMs ?? 1000);
    this.#timer.unref();
  }

  stop(): void { if (this.#timer) clearInterval(this.#timer); }

  /** why the last read of the membership table failed, if it did. */
  get error(): string | undefined { return this.#lastError; }

  get nodes(): NodeRow[] { return [...this.#byOrdinal.values()]; }
  get live(): NodeRow[] { return this.nodes.filter((n) => n.state === 'up'); }

  refresh(): Promise<void> {
    this.#refreshing ??= this.#ctl.nodes().then((rows) => {
      this.#byOrdinal = new Map(rows.map((n) => [n.ordinal, n]));
      this.#lastError = undefined;
    }, (e: unknown) => { this.#lastError = errorMessage(e); }).finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }

  /** The node with this ordinal (read again once when unknown: it may have just joined). */
  async byOrdinal(ordinal: number): Promise<NodeRow | undefined> {
    if (!this.#byOrdinal.has(ordinal)) await this.refresh();
    return this.#byOrdinal.get(ordinal);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const lost = await this.#ctl.detectLost(this.#o.lostAfterMs ?? 5000).catch((e: unknown) => { this.#o.log?.(`cluster: detecting lost nodes: ${errorMessage(e)}`); return []; });
      for (const n of lost) {
        this.#o.log?.(`cluster: node ${n.nodeId} (epoch ${n.epoch}) is lost; ${n.sandboxes.length} sandboxes lost with it`);
        this.#o.onLost?.(n);
      }
      if (++this.#ticks % 10 === 0) {
        const n = await this.#ctl.expireReservations(this.#o.reservationTtlMs ?? 600_000).catch(() => 0);
        if (n) this.#o.log?.(`cluster: ${n} reservations expired unconfirmed`);
      }
      await this.refresh();
    } finally {
      this.#ticking = false;
    }
  }
}
