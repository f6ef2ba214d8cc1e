import { EventBus } from '../events/index.ts';
import type { EventInput, PraetorEvent } from '../events/index.ts';

/**
 * The bus as the kernel backends see it: every event they publish goes to the real bus, and
 * then to `tap` (the pipe-graph scanner), which needs the sensor's own execs and connects.
 * A tap, not a bus listener: sensors produce events and consume none, and a listener would
 * put every event of every producer through one more filter.
 */
export class TapBus extends EventBus {
  readonly #inner: EventBus;
  readonly #tap: (e: PraetorEvent) => void;
  constructor(inner: EventBus, tap: (e: PraetorEvent) => void) {
    super();
    this.#inner = inner;
    this.#tap = tap;
  }
  override publish(input: EventInput): PraetorEvent {
    const e = this.#inner.publish(input);
    try { this.#tap(e); } catch { /* a tap failure must not cost the event */ }
    return e;
  }
  override subscribe(fn: (e: PraetorEvent) => void): () => void { return this.#inner.subscribe(fn); }
}
