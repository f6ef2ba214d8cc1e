import { newId, nowNs } from '../util/index.ts';
import type { EventInput, PraetorEvent } from './schema.ts';

export type Listener = (e: PraetorEvent) => void;

/**
 * The one event stream. Synchronous fan-out on purpose: containment latency is measured from
 * the event's ts, and a queue between sensor and rule engine would only add to it. A listener
 * that throws must not silence the others, so errors are collected and reported, not raised.
 *
 * Causal order: rules and the guard publish from inside a listener (an alert while the rule
 * engine sees its cause). Delivering that nested event at once would hand it to the listeners
 * registered after the engine (episodes, dashboard, ledger readers, metrics) before the event
 * that caused it, and a trace built from their view would show effects before causes. So a
 * publish made during a fan-out is stamped (id, ts) and returned at once, and delivered when the
 * current event has reached every listener: still inside the outermost publish, so nothing waits
 * on a timer, and every subscriber sees every event in one order.
 */
export class EventBus {
  readonly #listeners = new Set<Listener>();
  readonly #onListenerError: (err: unknown, e: PraetorEvent) => void;
  readonly #pending: PraetorEvent[] = [];
  #delivering = false;
  #seq = 0;
  readonly #prefix = newId('ev', 4);

  constructor(opts: { onListenerError?: (err: unknown, e: PraetorEvent) => void } = {}) {
    this.#onListenerError = opts.onListenerError ?? ((err) => {
      process.emitWarning(`event listener failed: ${String(err)}`);
    });
  }

  subscribe(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stamps id and ts (unless given) and delivers to every listener, causes first; returns the event. */
  publish(input: EventInput): PraetorEvent {
    const e = { ...input, id: `${this.#prefix}-${++this.#seq}`, ts: input.ts ?? nowNs() } as PraetorEvent;
    this.#pending.push(e);
    if (this.#delivering) return e;
    this.#delivering = true;
    try {
      // FIFO: an event published by a listener waits for its cause to finish fanning out.
      for (let next = this.#pending.shift(); next; next = this.#pending.shift()) this.#fanOut(next);
    } finally {
      this.#delivering = false;
    }
    return e;
  }

  #fanOut(e: PraetorEvent): void {
    for (const fn of this.#listeners) {
      try { fn(e); } catch (err) { this.#onListenerError(err, e); }
    }
  }
}
