// A cluster node's sandbox ids: the one a control replica reserved for the request (its
// X-Praetor-Reservation header), checked against the reservation table before use, or, for a
// create that starts on the node itself (GEM's reset makes a fresh sandbox), a reservation on
// this node taken in the same transaction as the tenant's cluster-wide quota. Every id names
// this node's ordinal, so any control replica routes calls about it without a lookup.
// Ends are reported so the capacity and quota return (ClusterControl.end).
import { errorMessage, PraetorError } from '../errors.ts';
import type { Principal, SandboxIdSource } from '../server/index.ts';
import type { TenantSettings, Usage } from '../config/index.ts';
import type { ClusterControl } from './control.ts';
import { nodeOrdinalOf } from './schema.ts';

export interface NodeIdentity { nodeId: string; epoch: number; ordinal: number; fenced: boolean }

export class NodeSandboxIds implements SandboxIdSource {
  readonly #ctl: ClusterControl;
  readonly #me: () => NodeIdentity | undefined;
  readonly #settingsOf: (tenant: string) => TenantSettings;
  readonly #log: (msg: string) => void;
  /** principals (one per request) whose reservation a create already used. */
  readonly #used = new WeakSet<Principal>();

  readonly #onUnreserved: (id: string) => void;
  /** catalog writes (confirm, end) not yet answered: a reply waits for them (settled). */
  readonly #writes = new Set<Promise<unknown>>();

  constructor(ctl: ClusterControl, me: () => NodeIdentity | undefined, settingsOf: (tenant: string) => TenantSettings, log: (msg: string) => void, onUnreserved: (id: string) => void) {
    this.#onUnreserved = onUnreserved;
    this.#ctl = ctl;
    this.#me = me;
    this.#settingsOf = settingsOf;
    this.#log = log;
  }

  async claim(p: Principal, want: Usage): Promise<string> {
    const me = this.#me();
    if (!me) throw new PraetorError('LEDGER_UNAVAILABLE', 'this node has not joined the cluster yet', { hint: 'retry in a moment' });
    // Fenced: the database is out of reach, so nothing new may start unrecorded.
    if (me.fenced) throw new PraetorError('LEDGER_UNAVAILABLE', 'this node is fenced: it cannot reach the cluster database', { hint: 'create the sandbox through a control replica; it places it on a live node' });
    if (p.reservedId !== undefined && !this.#used.has(p)) {
      this.#used.add(p);
      const id = p.reservedId;
      if (nodeOrdinalOf(id) !== me.ordinal || !(await this.#ctl.holdsReservation(id, me, p.tenant))) {
        throw new PraetorError('FORBIDDEN', `sandbox id ${id.slice(0, 80)} is not reserved for tenant ${p.tenant} on node ${me.nodeId}`, { hint: 'create sandboxes through a control replica' });
      }
      return id;
    }
    return (await this.#ctl.place(p.tenant, this.#settingsOf(p.tenant), { cpus: want.cpus, memoryBytes: want.memoryBytes }, { only: me.nodeId })).sandboxId;
  }

  confirm(id: string): void {
    this.#track(this.#ctl.confirm(id).then((ok) => {
      // Its reservation expired or its node was declared lost meanwhile: the cluster counts it
      // nowhere, so it must not run (threat: a sandbox outside every quota and every listing).
      if (!ok) { this.#log(`cluster: ${id} has no reservation any more: destroying it`); this.#onUnreserved(id); }
    }, (e: unknown) => this.#log(`cluster: confirming ${id}: ${errorMessage(e)}`)));
  }

  ended(id: string, reason: string): void {
    this.#track(this.#ctl.end(id, reason.slice(0, 500)).catch((e: unknown) => this.#log(`cluster: recording the end of ${id}: ${errorMessage(e)} (the node's next epoch reclaims it)`)));
  }

  /**
   * Resolves once every catalog write started so far is answered (committed, or failed and
   * logged; the pool's query timeout bounds it). A kill's reply waits for it, so a client that
   * saw the kill succeed finds the sandbox ended in the catalog, its quota back, from any replica.
   */
  async settled(): Promise<void> {
    if (this.#writes.size) await Promise.all([...this.#writes]);
  }

  #track(p: Promise<unknown>): void {
    this.#writes.add(p);
    void p.finally(() => this.#writes.delete(p));
  }
}
