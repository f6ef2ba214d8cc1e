// A bounded hand-off from callbacks (process output) to an async generator (a Connect stream).
// Bounded because a client that reads slowly must not grow server memory without limit
// (threat: `yes` piped to a stalled stream): `push` reports false past the byte limit.
export class AsyncQueue<T> {
  readonly #items: T[] = [];
  #bytes = 0;
  #waiter: (() => void) | undefined;
  #closed = false;
  readonly #limit: number;

  constructor(limitBytes: number) { this.#limit = limitBytes; }

  push(item: T, bytes = 0): boolean {
    if (this.#closed) return true;
    this.#items.push(item);
    this.#bytes += bytes;
    this.#waiter?.();
    return this.#bytes <= this.#limit;
  }

  close(): void { this.#closed = true; this.#waiter?.(); }

  /** The next item, or undefined once closed and drained; `signal` ends the wait early. */
  async next(signal: AbortSignal, sizeOf: (t: T) => number = () => 0): Promise<T | undefined> {
    while (this.#items.length === 0) {
      if (this.#closed || signal.aborted) return undefined;
      await new Promise<void>((r) => {
        const done = () => { signal.removeEventListener('abort', done); this.#waiter = undefined; r(); };
        this.#waiter = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    const item = this.#items.shift()!;
    this.#bytes -= sizeOf(item);
    return item;
  }
}
