// Keeps judging an HTTP/1 connection after its first request. Keep-alive lets a client send an
// allowed first request and then, on the same connection, one with another Host (fronting) or
// an eth_sendRawTransaction (web3 clients reuse connections). Every request's head and first
// 64 KiB of body are read and judged before a byte of it is forwarded; the rest of a large body
// streams through, framed (Content-Length or chunked) so the next request is found.
import { Transform, type TransformCallback } from 'node:stream';
import { classify, parseRequestHead, type HttpHead } from './protocols/index.ts';
import { BODY_LIMIT } from './protocols/types.ts';

export type RequestVerdict = { allow: true } | { allow: false; rule: string; reason: string; protocol: string; host?: string };
export type Judge = (cls: { protocol: string; host?: string; detail?: string }) => RequestVerdict;

type State =
  | { k: 'head' }
  | { k: 'body'; remaining: number }                 // Content-Length bytes still to pass through
  | { k: 'chunked'; phase: 'size' | 'data' | 'crlf' | 'trailer'; remaining: number; line: string }
  | { k: 'raw' };                                     // after an upgrade/CONNECT: opaque

export class HttpRequestInspector extends Transform {
  #buf: Buffer = Buffer.alloc(0);
  #state: State = { k: 'head' };
  readonly #judge: Judge;
  readonly #onDeny: (v: Extract<RequestVerdict, { allow: false }>) => void;
  requests = 0;

  constructor(judge: Judge, onDeny: (v: Extract<RequestVerdict, { allow: false }>) => void) {
    super();
    this.#judge = judge; this.#onDeny = onDeny;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    try { this.#drain(false); cb(); } catch (e) { cb(e as Error); }
  }

  override _flush(cb: TransformCallback): void {
    try { this.#drain(true); cb(); } catch (e) { cb(e as Error); }
  }

  /**
   * Accepts a first request head that was already judged (by the flow's sniff) without judging
   * it again: returns the head to write now and the rest, which must be written through this
   * stream (body framing, pipelined requests).
   */
  passJudged(first: Buffer, parsed?: HttpHead): { head: Buffer; rest: Buffer } {
    const head = parsed ?? parseRequestHead(first);
    if (head === null || head === 'more') return { head: Buffer.alloc(0), rest: first };
    this.requests++;
    this.#frameAfter(head);
    return { head: first.subarray(0, head.headEnd), rest: first.subarray(head.headEnd) };
  }

  /**
   * Where the bytes after a request head belong: opaque after CONNECT/upgrade, a chunked or
   * Content-Length body, or the next request. One place for the pre-judged first request and
   * later ones, so the two can never frame a body differently (a request smuggled past the
   * inspector inside what it took for a body).
   */
  #frameAfter(head: HttpHead): void {
    const te = head.headers.get('transfer-encoding')?.toLowerCase() ?? '';
    const cl = Number(head.headers.get('content-length') ?? 0);
    if (head.method === 'CONNECT' || /upgrade/i.test(head.headers.get('connection') ?? '')) this.#state = { k: 'raw' };
    else if (te.includes('chunked')) this.#state = { k: 'chunked', phase: 'size', remaining: 0, line: '' };
    else if (cl > 0) this.#state = { k: 'body', remaining: cl };
    else this.#state = { k: 'head' };
  }

  #deny(v: Extract<RequestVerdict, { allow: false }>): never {
    this.#onDeny(v);
    throw new Error(`request denied: ${v.reason}`);
  }

  #drain(final: boolean): void {
    for (;;) {
      const s = this.#state;
      if (this.#buf.length === 0) return;
      if (s.k === 'raw') { this.push(this.#buf); this.#buf = Buffer.alloc(0); return; }
      if (s.k === 'body') {
        const n = Math.min(s.remaining, this.#buf.length);
        this.push(this.#buf.subarray(0, n)); this.#buf = this.#buf.subarray(n); s.remaining -= n;
        if (s.remaining === 0) this.#state = { k: 'head' };
        continue;
      }
      if (s.k === 'chunked') { if (!this.#chunked(s)) return; continue; }
      // A new request: judge head + up to 64 KiB of body before forwarding any of it.
      const cls = classify(this.#buf, 'client', final);
      if (cls.state === 'more') {
        if (this.#buf.length > BODY_LIMIT + 64 * 1024) this.#deny({ allow: false, rule: 'inspection', reason: 'request head too large', protocol: 'http' });
        return;
      }
      const head = cls.httpHead ?? parseRequestHead(this.#buf);
      if (head === null || head === 'more' || cls.protocol === 'unknown' || cls.protocol === 'incomplete') {
        this.#deny({ allow: false, rule: 'inspection', reason: `not an HTTP request on an HTTP connection (${cls.protocol})`, protocol: cls.protocol });
      }
      const v = this.#judge(cls);
      if (!v.allow) this.#deny(v);
      this.requests++;
      this.push(this.#buf.subarray(0, head.headEnd)); this.#buf = this.#buf.subarray(head.headEnd);
      this.#frameAfter(head);
    }
  }

  /** Passes chunked framing through; false when more bytes are needed. */
  #chunked(s: Extract<State, { k: 'chunked' }>): boolean {
    if (s.phase === 'data') {
      const n = Math.min(s.remaining, this.#buf.length);
      this.push(this.#buf.subarray(0, n)); this.#buf = this.#buf.subarray(n); s.remaining -= n;
      if (s.remaining === 0) s.phase = 'crlf';
      return true;
    }
    const eol = this.#buf.indexOf('\r\n');
    if (eol < 0) { if (this.#buf.length > 4096) throw new Error('bad chunked framing'); return false; }
    const line = this.#buf.subarray(0, eol).toString('latin1');
    this.push(this.#buf.subarray(0, eol + 2)); this.#buf = this.#buf.subarray(eol + 2);
    if (s.phase === 'crlf') { s.phase = 'size'; return true; }
    if (s.phase === 'trailer') { if (line === '') this.#state = { k: 'head' }; return true; }
    const size = parseInt(line.split(';')[0]!, 16);
    if (!Number.isFinite(size) || size < 0) throw new Error('bad chunk size');
    if (size === 0) s.phase = 'trailer'; else { s.phase = 'data'; s.remaining = size; }
    return true;
  }
}

