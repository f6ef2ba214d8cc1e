// Holds a sandbox's outbound bytes until the kernel sensor has reported everything that
// happened before they arrived (src/sensors/sensor-catch-up.ts says why and how). Chunks keep
// their order and pass as soon as the sensor catches up (≤ one 10 ms tick, typically); a
// sensor that does not catch up within the bound fails the stream closed: the bytes never leave.
import { Transform, type TransformCallback } from 'node:stream';

export type CatchUp = (ns: bigint, timeoutMs: number) => Promise<boolean>;

/** How long outbound bytes may wait for the sensor before the flow is cut. */
export const CATCH_UP_TIMEOUT_MS = 2000;

export class CatchUpError extends Error {}

export class CatchUpStream extends Transform {
  readonly #catchUp: CatchUp;
  constructor(catchUp: CatchUp) {
    super();
    this.#catchUp = catchUp;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const arrived = process.hrtime.bigint();
    this.#catchUp(arrived, CATCH_UP_TIMEOUT_MS).then((ok) => {
      if (ok) cb(null, chunk);
      else cb(new CatchUpError(`the kernel sensor did not report up to these bytes within ${CATCH_UP_TIMEOUT_MS} ms; not forwarded unjudged`));
    }, (e: unknown) => cb(e as Error));
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
