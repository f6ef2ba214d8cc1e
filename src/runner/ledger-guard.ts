// The ledger as a guardrail (issue 17 §6), one code path for `praetor run` and the server: every
// event on the bus is recorded, and when the ledger cannot write, nothing runs unrecorded.
//   - new sandboxes are refused (check(), admit());
//   - running sandboxes are frozen at once, verified by reading the cgroup's frozen state (one
//     that cannot be frozen is destroyed);
//   - events keep coming (the freeze itself, samples, the API): they wait in a bounded outage
//     queue, with the events the failed ledger had taken but never made durable, and are recorded
//     when a reopened ledger accepts them (or written to a local file if the guard closes first);
//   - the ledger is reopened every retryMs; once it writes again the queue is recorded, then the
//     frozen sandboxes are resumed: a sandbox never runs while its record cannot be kept;
//   - after graceMs down, the frozen sandboxes are destroyed: an outage does not hold the host's
//     memory and GPUs forever.
// Every step is an event (ledger.unavailable, ledger.hold, ledger.recovered).
// Threat: an agent (or a fault) that fills the ledger's disk would otherwise get to act unobserved.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { openLedger, type Ledger } from '../audit/index.ts';
import { PraetorError, errorMessage, isPraetorError } from '../errors.ts';
import type { EventBus, EventInput, PraetorEvent } from '../events/index.ts';
import type { Sandbox } from '../sandbox/index.ts';

export interface LedgerGuardOptions {
  bus: EventBus;
  stateDir: string;
  /** SQLite path or postgres:// URL, as ledgerAt() splits it; {} for the default path. */
  at: { path?: string; url?: string };
  /** the sandboxes to hold while the ledger is down. */
  sandboxes: () => Iterable<Sandbox>;
  /** how long frozen sandboxes wait for the ledger before they are destroyed (default 5 min). */
  graceMs?: number;
  /** how often a down ledger is reopened (default 1 s). */
  retryMs?: number;
  /** events kept for a down ledger; beyond, they are counted as dropped (default 200,000). */
  maxQueue?: number;
  log?: (msg: string) => void;
}

export const DEFAULT_LEDGER_GRACE_MS = 5 * 60_000;
const HOST = 'host';

/** Whether the sandbox's cgroup reads frozen, on whichever freezer Cgroup.freeze uses. */
export function cgroupFrozen(sb: Sandbox): boolean {
  try {
    const u = sb.cgroup.unifiedDir;
    if (u && existsSync(`${u}/cgroup.freeze`)) return /^frozen 1$/m.test(readFileSync(`${u}/cgroup.events`, 'utf8'));
    const f = sb.cgroup.v1('freezer');
    return f ? readFileSync(`${f}/freezer.state`, 'utf8').trim() === 'FROZEN' : false;
  } catch { return false; }
}

type State = 'up' | 'down' | 'recovering';

export class LedgerGuard {
  readonly #o: LedgerGuardOptions & { graceMs: number; retryMs: number; maxQueue: number };
  #state: State = 'up';
  #ledger: Ledger | undefined;
  #error: PraetorError | undefined;
  #downAt = 0;
  /** events appended to #ledger and not yet acknowledged durable: #inflight[i] is append #base+i. */
  #inflight: PraetorEvent[] = [];
  #base = 0;
  #queue: PraetorEvent[] = [];
  #dropped = 0;
  readonly #held = new Map<string, Sandbox>();
  readonly #containedDuringOutage = new Set<string>();
  #retry: NodeJS.Timeout | undefined;
  #grace: NodeJS.Timeout | undefined;
  #unsubscribe: () => void = () => {};
  #closed = false;
  #recovering: Promise<void> | undefined;

  private constructor(o: LedgerGuardOptions) {
    this.#o = { ...o, graceMs: o.graceMs ?? DEFAULT_LEDGER_GRACE_MS, retryMs: o.retryMs ?? 1000, maxQueue: o.maxQueue ?? 200_000 };
  }

  /** Opens the ledger and records the bus into it; throws LEDGER_UNAVAILABLE when it cannot write. */
  static async open(o: LedgerGuardOptions): Promise<LedgerGuard> {
    const g = new LedgerGuard(o);
    g.#ledger = await g.#openLedger();
    g.#unsubscribe = o.bus.subscribe((e) => g.#record(e));
    return g;
  }

  /** The current ledger (the failed one while down: its location stays readable). */
  get ledger(): Ledger | undefined { return this.#ledger; }
  /** Why the ledger cannot record, while it cannot. */
  get error(): string | undefined { return this.#state === 'up' ? undefined : this.#error?.message; }
  /** Sandboxes frozen because the ledger is down. */
  get held(): string[] { return [...this.#held.keys()]; }

  /** Throws LEDGER_UNAVAILABLE while the ledger is down: nothing new starts unrecorded. */
  check(): void {
    if (this.#state === 'up') return;
    throw new PraetorError('LEDGER_UNAVAILABLE', `the ledger cannot record: ${this.#error?.message ?? 'unknown error'}`, {
      hint: 'fix the ledger storage (disk space, permissions, database); running sandboxes stay frozen until it records again, and are destroyed after the grace period',
    });
  }

  /** A sandbox that starts while the ledger is down is refused (the caller destroys it). */
  admit(_sb: Sandbox): void { this.check(); }

  flush(): Promise<void> {
    if (this.#state !== 'up' || !this.#ledger) return Promise.reject(this.#error);
    return this.#ledger.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    clearInterval(this.#retry);
    clearTimeout(this.#grace);
    // A reopen in flight must finish (and close what it opened) before the owner removes the state.
    await this.#recovering;
    if (this.#state === 'up') { await this.#ledger?.close(); return; }
    // Down at shutdown: what the ledger never got is kept on local disk, not lost in silence.
    const lost = [...this.#unacked(), ...this.#queue];
    await this.#ledger?.close().catch(() => {});
    if (lost.length > 0) this.#writeFallback(lost);
  }

  #openLedger(): Promise<Ledger> {
    return openLedger({ ...this.#o.at, stateDir: this.#o.stateDir, onError: (e) => this.#down(e) });
  }

  #record(e: PraetorEvent): void {
    if (this.#closed) return;
    if (this.#state !== 'up' || !this.#ledger) {
      if (e.kind === 'containment') this.#containedDuringOutage.add(e.sandboxId);
      this.#enqueue(e);
      return;
    }
    try { this.#ledger.append(e); } catch (err) {
      this.#down(err);
      this.#enqueue(e);
      return;
    }
    this.#inflight.push(e);
    const k = this.#ledger.acknowledged - this.#base;
    if (k > 0) { this.#inflight.splice(0, k); this.#base += k; }
  }

  #enqueue(e: PraetorEvent): void {
    if (this.#queue.length < this.#o.maxQueue) this.#queue.push(e);
    else this.#dropped++;
  }

  #unacked(): PraetorEvent[] {
    const done = Math.max(0, (this.#ledger?.acknowledged ?? 0) - this.#base);
    return this.#inflight.slice(done);
  }

  #publish(e: EventInput): void { this.#o.bus.publish(e); }

  #down(err: unknown): void {
    if (this.#state !== 'up' || this.#closed) return;
    this.#state = 'down';
    this.#error = isPraetorError(err) ? err : new PraetorError('LEDGER_UNAVAILABLE', `ledger write failed: ${errorMessage(err)}`, { hint: 'check the ledger storage', cause: err });
    this.#downAt = Date.now();
    // What the failed ledger took but never made durable goes first: recorded after recovery.
    this.#queue.unshift(...this.#unacked());
    this.#inflight = [];
    this.#base = 0;
    this.#o.log?.(`ledger down (${this.#error.message}): freezing running sandboxes; destroying them in ${Math.round(this.#o.graceMs / 1000)} s unless it recovers`);
    this.#publish({ kind: 'ledger.unavailable', sandboxId: HOST, reason: this.#error.message, graceMs: this.#o.graceMs });
    for (const sb of this.#o.sandboxes()) void this.#hold(sb);
    this.#grace = setTimeout(() => void this.#expire(), this.#o.graceMs);
    this.#retry = setInterval(() => { this.#recovering ??= this.#tryRecover().finally(() => { this.#recovering = undefined; }); }, this.#o.retryMs);
  }

  /** Freezes asynchronously (the freeze is confirmed by the kernel's frozen state, with a deadline). */
  async #hold(sb: Sandbox): Promise<void> {
    if (sb.state !== 'running' || this.#held.has(sb.id)) return;
    // Frozen already (containment holds it, or an owner paused it): not ours to thaw later.
    if (cgroupFrozen(sb)) return;
    let error: string | undefined;
    try { await sb.pause(); } catch (e) { error = errorMessage(e); }
    const ok = error === undefined && cgroupFrozen(sb);
    this.#publish({ kind: 'ledger.hold', sandboxId: sb.id, action: 'freeze', ok, ...(ok ? {} : { error: error ?? 'the cgroup does not read frozen' }) });
    if (ok) {
      this.#held.set(sb.id, sb);
      sb.onEnded(() => this.#held.delete(sb.id));
      return;
    }
    // Escalate: a sandbox that cannot be frozen cannot run unrecorded either.
    void this.#destroy(sb, 'the ledger is down and the sandbox could not be frozen (fail closed)');
  }

  async #destroy(sb: Sandbox, reason: string): Promise<void> {
    let error: string | undefined;
    try { await sb.destroy(reason); } catch (e) { error = errorMessage(e); }
    this.#publish({ kind: 'ledger.hold', sandboxId: sb.id, action: 'destroy', ok: error === undefined && sb.state === 'destroyed', ...(error ? { error } : {}) });
  }

  async #expire(): Promise<void> {
    if (this.#state === 'up' || this.#closed) return;
    const reason = `the ledger was down for more than ${Math.round(this.#o.graceMs / 1000)} s (fail closed)`;
    this.#o.log?.(`ledger still down: ${reason}; destroying ${this.#held.size} frozen sandbox(es)`);
    const victims = new Map(this.#held);
    for (const sb of this.#o.sandboxes()) if (sb.state !== 'destroyed') victims.set(sb.id, sb);
    this.#held.clear();
    await Promise.all([...victims.values()].map((sb) => this.#destroy(sb, reason)));
  }

  async #tryRecover(): Promise<void> {
    if (this.#state !== 'down' || this.#closed) return;
    this.#state = 'recovering';
    let l: Ledger | undefined;
    try {
      // The failed ledger holds the writer lock: release it before reopening the same store.
      await this.#ledger?.close().catch(() => {});
      l = await this.#openLedger();
      // Events arriving meanwhile land behind these in the queue; only the recorded ones leave it.
      const replay = this.#queue.length;
      for (let i = 0; i < replay; i++) l.append(this.#queue[i]!);
      await l.flush();
      this.#queue.splice(0, replay);
      this.#ledger = l;
      this.#base = l.acknowledged;
      this.#inflight = [];
      this.#state = 'up';
      for (const e of this.#queue.splice(0)) this.#record(e);
      clearInterval(this.#retry);
      clearTimeout(this.#grace);
      const downMs = Date.now() - this.#downAt;
      this.#o.log?.(`ledger recovered after ${Math.round(downMs / 1000)} s: ${replay} events recorded late; resuming ${this.#held.size} sandbox(es)`);
      this.#publish({ kind: 'ledger.recovered', sandboxId: HOST, downMs, replayed: replay, dropped: this.#dropped });
      this.#dropped = 0;
      const held = [...this.#held.values()];
      this.#held.clear();
      await Promise.all(held.map((sb) => this.#resume(sb)));
      this.#containedDuringOutage.clear();
    } catch {
      // Still down: try again at the next tick (the queue is intact).
      if (l && this.#ledger !== l) await l.close().catch(() => {});
      if (this.#state === 'recovering') this.#state = 'down';
    }
  }

  async #resume(sb: Sandbox): Promise<void> {
    // Contained while frozen (a verdict on what it did before): its owner decides, not recovery.
    if (sb.state !== 'paused' || this.#containedDuringOutage.has(sb.id)) return;
    let error: string | undefined;
    try { await sb.resume(); } catch (e) { error = errorMessage(e); }
    const ok = error === undefined && !cgroupFrozen(sb);
    this.#publish({ kind: 'ledger.hold', sandboxId: sb.id, action: 'resume', ok, ...(ok ? {} : { error: error ?? 'the cgroup still reads frozen' }) });
  }

  #writeFallback(events: PraetorEvent[]): void {
    const dir = `${this.#o.stateDir}/audit`;
    const file = `${dir}/ledger-outage-${Date.now()}.jsonl`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
      this.#o.log?.(`ledger down at shutdown: ${events.length} unrecorded events written to ${file}`);
    } catch (e) {
      this.#o.log?.(`ledger down at shutdown: ${events.length} events could not be kept (${errorMessage(e)})`);
    }
  }
}
