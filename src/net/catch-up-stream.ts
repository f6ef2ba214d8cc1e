// Holds a sandbox's outbound bytes until the kernel sensor has reported everything that
// happened before they arrived (src/sensors/sensor-catch-up.ts says why and how). Chunks keep
// their order and pass as soon as the sensor catches up (≤ one 10 ms tick, typically); a
// sensor that does not catch up within the bound fails the stream closed: the bytes never leave.
import { Transform, type TransformCallback } from 'node:stream';

export type CatchUp = (ns: bigint, timeoutMs: number) => Promise<boolean>;

/** How long outbound bytes may wait for the sensor before the flow is cut. */
export const CATCH_UP_TIMEOUT_MS = 2000;

export class CatchUpError extends Error {}

/** Bytes held at most before the writer is made to wait (back-pressure). */
const MAX_HELD = 1 << 20;

/**
 * Each chunk is stamped when it arrives and released once the sensor is past its stamp. Not one
 * wait per chunk in turn: a chunk stamped only after the one before it was released would need
 * a tick of its own, capping an upload at a chunk per 10 ms; stamped on arrival, every chunk
 * that came before a tick leaves with it.
 */
export class CatchUpStream extends Transform {
  readonly #catchUp: CatchUp;
  readonly #held: Array<{ at: bigint; chunk: Buffer }> = [];
  #heldBytes = 0;
  #waiting = false;
  #writer: TransformCallback | undefined;
  #flushed: TransformCallback | undefined;

  constructor(catchUp: CatchUp) {
    super();
    this.#catchUp = catchUp;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#held.push({ at: process.hrtime.bigint(), chunk });
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < MAX_HELD) cb(); else this.#writer = cb;
    this.#release();
  }

  override _flush(cb: TransformCallback): void {
    if (this.#held.length === 0) cb(); else this.#flushed = cb;
  }

  #release(): void {
    const head = this.#held[0];
    if (this.#waiting || !head || this.destroyed) return;
    this.#waiting = true;
    this.#catchUp(head.at, CATCH_UP_TIMEOUT_MS).then((ok) => {
      this.#waiting = false;
      if (!ok) { this.destroy(new CatchUpError(`the kernel sensor did not report up to these bytes within ${CATCH_UP_TIMEOUT_MS} ms; not forwarded unjudged`)); return; }
      this.#held.shift();
      this.#heldBytes -= head.chunk.length;
      this.push(head.chunk);
      if (this.#writer && this.#heldBytes < MAX_HELD) { const w = this.#writer; this.#writer = undefined; w(); }
      if (this.#held.length === 0 && this.#flushed) { const f = this.#flushed; this.#flushed = undefined; f(); }
      this.#release();
    }, (e: unknown) => { this.#waiting = false; this.destroy(e as Error); });
  }
}

/**
 * What to write a sandbox's outbound bytes into on their way to `dst`: dst itself without a
 * sensor to wait for, else a CatchUpStream piped into it (its error: the flow is to be cut).
 */
export function catchUpInto<W extends NodeJS.WritableStream>(dst: W, catchUp: CatchUp | undefined, onError: (e: Error) => void): W | CatchUpStream {
  if (!catchUp) return dst;
  const hold = new CatchUpStream(catchUp);
  hold.on('error', onError);
  hold.pipe(dst);
  return hold;
}
