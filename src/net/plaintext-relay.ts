// Relays decrypted bytes from one TLS socket to another (the response direction of an
// intercepted connection, after its first bytes were judged) without a fresh buffer per TLS
// record. Why: Node hands each 16 KiB record to JS in a newly allocated ArrayBuffer; at a few
// hundred MB/s that external memory starts a major GC several times a second (measured: 20
// majors in 6 s of bulk, V8's GC threads ~22 % of the gateway's CPU on a 2-core host). Here the
// TLS layer decrypts straight into slabs this relay owns (Node's `onread` user buffer, set on the
// wrap after the handshake), and every record that arrived in one event-loop turn leaves in one
// write: one SSL_write and one send instead of one per record, and no copy to join them.
// Nothing about inspection changes: this direction was already relayed unjudged after its first
// bytes (see tls-intercept.ts), and every byte still passes through this process.
import net from 'node:net';
import type tls from 'node:tls';

/** Slab size: what one flush can carry at most; about a turn's worth of records at full speed. */
const SLAB = 256 * 1024;
/** The first slab: most responses are small, and a connection's slab must not cost a bulk slab's memory. */
const FIRST_SLAB = 32 * 1024;
/** Room a read must have (TLS hands over at most one 16 KiB record per read). */
const READ_ROOM = 16 * 1024;
/** Free slabs kept per relay (back-pressure bounds how many are in flight). */
const KEEP_FREE = 2;

interface UserBufferSymbols { buffer: symbol; callback: symbol; generator: symbol }

/**
 * Node keeps a socket's `onread` buffer and callback under symbols that `tls.connect` sets only
 * when it creates the socket itself (not with `socket:`, which the gateway needs: its upstream
 * TCP connection is dialled while the client's first bytes are judged). They are read off a
 * probe socket made with `onread`; a Node without them gets the plain relay (same bytes, more GC).
 */
function findUserBufferSymbols(): UserBufferSymbols | null {
  const probe = new net.Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } });
  const by = new Map(Object.getOwnPropertySymbols(probe).map((s) => [s.description, s]));
  probe.destroy();
  const buffer = by.get('kBuffer'); const callback = by.get('kBufferCb'); const generator = by.get('kBufferGen');
  return buffer && callback && generator ? { buffer, callback, generator } : null;
}
const SYMBOLS = findUserBufferSymbols();

/** True when slab relaying is available on this Node (pinned by a test, so an upgrade that breaks it is seen). */
export const slabRelayAvailable = (): boolean => SYMBOLS !== null;

export interface PlaintextRelay {
  /** Sends what was read so far; call before ending dst. */
  flush(): void;
  readonly mode: 'slab' | 'stream';
}

/**
 * Copies src's decrypted bytes to dst until src ends, with back-pressure (src stops reading
 * while dst is over its high-water mark). `count` sees every relayed byte. Call it from src's
 * first 'data' handler (or before any data): bytes src already buffered keep the stream path.
 */
export function relayPlaintext(src: tls.TLSSocket, dst: tls.TLSSocket, count: (n: number) => void): PlaintextRelay {
  const handle = (src as unknown as { _handle?: { useUserBuffer?: (b: Buffer) => void } | null })._handle;
  if (!SYMBOLS || !handle?.useUserBuffer || src.readableLength > 0 || src.destroyed) return streamRelay(src, dst, count);
  const free: Buffer[] = [];
  const inFlight = new Map<Buffer, number>();
  let slab: Buffer = Buffer.allocUnsafeSlow(FIRST_SLAB); let start = 0; let off = 0;
  let scheduled: NodeJS.Immediate | undefined;
  const release = (s: Buffer) => {
    const n = (inFlight.get(s) ?? 1) - 1;
    if (n > 0) { inFlight.set(s, n); return; }
    inFlight.delete(s);
    if (s !== slab && s.length === SLAB && free.length < KEEP_FREE) free.push(s);
  };
  const flush = () => {
    if (scheduled) { clearImmediate(scheduled); scheduled = undefined; }
    if (off > start) {
      if (dst.destroyed) { src.destroy(); return; }
      const s = slab;
      inFlight.set(s, (inFlight.get(s) ?? 0) + 1);
      // The view is not reused until its write completed (release): TLS may hold it queued.
      if (!dst.write(s.subarray(start, off), () => release(s))) src.pause();
      start = off;
    }
    if (slab.length - off < READ_ROOM) {
      const old = slab;
      slab = free.pop() ?? Buffer.allocUnsafeSlow(SLAB); start = 0; off = 0;
      if (!inFlight.has(old) && old.length === SLAB && free.length < KEEP_FREE) free.push(old);
    }
  };
  const s = src as unknown as Record<symbol, unknown>;
  s[SYMBOLS.buffer] = slab.subarray(off, off + READ_ROOM);
  // Called by Node with the bytes it decrypted into the view it was given last.
  s[SYMBOLS.callback] = (n: number) => {
    off += n; count(n);
    if (slab.length - off < READ_ROOM) flush();
    else scheduled ??= setImmediate(flush);
    return true;
  };
  s[SYMBOLS.generator] = () => slab.subarray(off);
  handle.useUserBuffer(s[SYMBOLS.buffer] as Buffer);
  dst.on('drain', () => src.resume());
  return { flush, mode: 'slab' };
}

/** The stream path: one 'data' event per record, dst corked until the loop turn ends. */
function streamRelay(src: tls.TLSSocket, dst: tls.TLSSocket, count: (n: number) => void): PlaintextRelay {
  let corked: NodeJS.Immediate | undefined;
  const uncork = () => { corked = undefined; dst.uncork(); };
  src.on('data', (d: Buffer) => {
    count(d.length);
    corked ??= (dst.cork(), setImmediate(uncork));
    if (!dst.write(d)) src.pause();
  });
  dst.on('drain', () => src.resume());
  return { flush: () => { if (corked) { clearImmediate(corked); uncork(); } }, mode: 'stream' };
}
