// Judges one direction (client → server) of a byte stream layer by layer: the stream's first
// bytes are named by the same sniffers as a raw connection; HTTP is judged request by request
// (fronting, L7 rules, bodies), a WebSocket upgrade turns the rest into frames whose unmasked
// payloads are named again, CONNECT's inner stream is sniffed afresh. Every verdict names its
// layer path (tls>http>websocket>stratum). Threat: a miner, tunnel or stolen token wrapped in a
// protocol the gateway allows. Nothing is forwarded before it was judged; with egress tokens, a
// tail that could still begin a token is held until the next bytes clear it.
import { Transform, type TransformCallback } from 'node:stream';
import { classify, parseRequestHead, type HttpHead } from './protocols/index.ts';
import { BODY_LIMIT } from './protocols/types.ts';
import { parseFrameHeader, unmask } from './protocols/websocket.ts';
import { describeHit, type TokenHit, type TokenSet, type ViewScanner } from './token-scanner.ts';

export interface LayerVerdict { rule: string; reason: string; protocol: string; layers: string[]; host?: string; respond?: 403 }
export interface LayerHooks {
  /** A protocol named at this layer path; null lets it pass. */
  judgeProtocol(protocol: string, layers: string[], detail?: string): LayerVerdict | null;
  /** One HTTP request head (fronting, L7 method/path rules); null lets it pass. */
  judgeRequest(head: HttpHead, layers: string[]): LayerVerdict | null;
  /** The head bytes to forward (credential brokering injects a header here). */
  rewriteHead(head: HttpHead, raw: Buffer): Buffer;
  onDeny(v: LayerVerdict): void;
  /** The deepest layer path seen so far, for the flow's record. */
  onLayers(layers: string[], protocol: string, detail?: string): void;
}

type St =
  | { k: 'sniff'; layers: string[] }
  | { k: 'http'; layers: string[] }
  | { k: 'body'; layers: string[]; remaining: number }
  | { k: 'chunked'; layers: string[]; phase: 'size' | 'data' | 'crlf' | 'trailer'; remaining: number }
  | { k: 'ws'; layers: string[] }
  | { k: 'wsPayload'; layers: string[]; remaining: number; mask: Buffer | null; off: number }
  | { k: 'raw'; layers: string[] }
  /** A head that expects 100-continue was forwarded; its body's first bytes are judged before they go. */
  | { k: 'expect'; layers: string[]; head: HttpHead; headRaw: Buffer };

const SNIFF_WAIT_MS = 3000;
const HOLD_MS = 200;
const WS_SNIFF = 4096;

/** Where the bytes of an inner view (unmasked payload, de-chunked body) sit in the output. */
class ViewTrack {
  segs: Array<{ abs: number; len: number }> = [];
  readonly scan: ViewScanner; readonly keep: number;
  constructor(scan: ViewScanner, keep: number) { this.scan = scan; this.keep = keep; }
  add(abs: number, len: number): void {
    this.segs.push({ abs, len });
    let total = 0;
    for (let i = this.segs.length - 1; i >= 0; i--) { total += this.segs[i]!.len; if (total > this.keep) { this.segs.splice(0, i); break; } }
  }
  /** Absolute output offset from which to hold, or null. */
  holdFrom(): number | null {
    let p = this.scan.pendingPrefix();
    if (p === 0) return null;
    for (let i = this.segs.length - 1; i >= 0; i--) {
      const s = this.segs[i]!;
      if (p <= s.len) return s.abs + s.len - p;
      p -= s.len;
    }
    return this.segs[0]?.abs ?? null;
  }
}

export class LayerInspector extends Transform {
  #in: Buffer = Buffer.alloc(0);
  #st: St;
  #out: Buffer[] = []; #outBase = 0; #outLen = 0;
  #dead = false;
  #sniffTimer: NodeJS.Timeout | undefined; #sniffFinal = false;
  #holdTimer: NodeJS.Timeout | undefined;
  readonly #hooks: LayerHooks; readonly #tokens: TokenSet | null;
  readonly #stream: ViewScanner | null;
  readonly #views = new Map<string, ViewTrack>();
  readonly #nested: boolean;
  requests = 0;

  #onOutput: (() => void) | undefined;

  /**
   * base: the layers already around this stream (e.g. ['tls']); nested: TLS found below another
   * layer is cut (it cannot be opened here); onOutput: called once, before the first judged byte
   * is released.
   */
  constructor(base: string[], hooks: LayerHooks, tokens: TokenSet | null, o: { nested?: boolean; onOutput?: () => void } = {}) {
    super();
    this.#st = { k: 'sniff', layers: base };
    this.#hooks = hooks; this.#tokens = tokens; this.#nested = o.nested ?? true; this.#onOutput = o.onOutput;
    this.#stream = tokens?.scanner('stream') ?? null;
  }

  get dead(): boolean { return this.#dead; }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.#dead) { cb(); return; }
    this.#in = this.#in.length ? Buffer.concat([this.#in, chunk]) : chunk;
    this.#drain(false);
    this.#release(false);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    clearTimeout(this.#sniffTimer); clearTimeout(this.#holdTimer);
    if (!this.#dead) { this.#drain(true); this.#release(true); }
    cb();
  }

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    clearTimeout(this.#sniffTimer); clearTimeout(this.#holdTimer);
    cb(e);
  }

  #deny(v: LayerVerdict): void {
    if (this.#dead) return;
    // What was judged before the denied part (an allowed first request on a keep-alive
    // connection) still goes; a token hit keeps everything it had not released.
    if (v.rule !== 'egress-token') this.#release(false);
    this.#dead = true; this.#out = []; this.#outLen = 0; this.#in = Buffer.alloc(0);
    clearTimeout(this.#sniffTimer); clearTimeout(this.#holdTimer);
    this.#hooks.onDeny(v);
  }

  #tokenHit(h: TokenHit, layers: string[]): void {
    this.#deny({ rule: 'egress-token', reason: describeHit(h, layers), protocol: layers.at(-1) ?? 'unknown', layers });
  }

  /** Appends judged bytes to the output (not yet released) and scans them as the raw stream. */
  #emit(b: Buffer, layers: string[]): number {
    const abs = this.#outBase + this.#outLen;
    if (b.length === 0) return abs;
    this.#out.push(b); this.#outLen += b.length;
    const h = this.#stream?.feed(b);
    if (h) { this.#tokenHit(h, layers); return abs; }
    // The same bytes without line breaks: `base64` wraps its output at 76 columns, which would
    // split an encoded token across lines.
    // Line breaks are found with indexOf (memchr), each kind's next position kept, not by a
    // byte-by-byte loop in JS: a binary upload is full of them.
    if (this.#tokens) {
      let lf = b.indexOf(0x0a); let cr = b.indexOf(0x0d);
      if (lf < 0 && cr < 0) { this.#view('unwrapped', b, abs, layers); return abs; }
      let start = 0;
      while (!this.#dead) {
        if (lf >= 0 && lf < start) lf = b.indexOf(0x0a, start);
        if (cr >= 0 && cr < start) cr = b.indexOf(0x0d, start);
        const i = lf < 0 ? (cr < 0 ? b.length : cr) : (cr < 0 ? lf : Math.min(lf, cr));
        if (i > start) this.#view('unwrapped', b.subarray(start, i), abs + start, layers);
        if (i >= b.length) break;
        start = i + 1;
      }
    }
    return abs;
  }

  #view(name: string, plain: Buffer, abs: number, layers: string[]): void {
    if (!this.#tokens || plain.length === 0) return;
    let v = this.#views.get(name);
    if (!v) { v = new ViewTrack(this.#tokens.scanner(name), this.#tokens.maxLen); this.#views.set(name, v); }
    v.add(abs, plain.length);
    const h = v.scan.feed(plain);
    if (h) this.#tokenHit(h, layers);
  }

  /** Forwards what is judged, holding back a tail that could still begin a token. */
  #release(force: boolean): void {
    if (this.#dead || this.#outLen === 0) return;
    let upTo = this.#outBase + this.#outLen;
    if (!force && this.#tokens) {
      upTo -= Math.min(this.#outLen, this.#stream!.pendingPrefix());
      for (const v of this.#views.values()) { const f = v.holdFrom(); if (f !== null) upTo = Math.min(upTo, f); }
    }
    let n = upTo - this.#outBase;
    if (n > 0) {
      if (this.#onOutput) { const f = this.#onOutput; this.#onOutput = undefined; f(); }
      const all = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
      this.push(all.subarray(0, n));
      const rest = all.subarray(n);
      this.#out = rest.length ? [rest] : []; this.#outBase += n; this.#outLen = rest.length;
    }
    n = this.#outLen;
    clearTimeout(this.#holdTimer);
    // A held tail is released after a pause: the client is waiting on it, and without more
    // bytes it cannot become a token (a later completion is still caught by the carries).
    if (n > 0) { this.#holdTimer = setTimeout(() => this.#release(true), HOLD_MS); this.#holdTimer.unref(); }
  }

  #waitSniff(): void {
    if (this.#sniffTimer) return;
    this.#sniffTimer = setTimeout(() => { this.#sniffFinal = true; this.#drain(false); this.#release(false); }, SNIFF_WAIT_MS);
    this.#sniffTimer.unref();
  }

  #judged(): void { clearTimeout(this.#sniffTimer); this.#sniffTimer = undefined; this.#sniffFinal = false; }

  #drain(final: boolean): void {
    while (!this.#dead && this.#in.length > 0) {
      const s = this.#st;
      const fin = final || this.#sniffFinal;
      if (s.k === 'raw') { const b = this.#in; this.#in = Buffer.alloc(0); this.#emit(b, s.layers); return; }
      if (s.k === 'sniff') { if (!this.#sniff(s, fin)) return; continue; }
      if (s.k === 'http') { if (!this.#request(s, fin)) return; continue; }
      if (s.k === 'expect') { if (!this.#expectedBody(s, fin)) return; continue; }
      if (s.k === 'body') {
        const n = Math.min(s.remaining, this.#in.length);
        this.#emit(this.#in.subarray(0, n), s.layers); this.#in = this.#in.subarray(n); s.remaining -= n;
        if (s.remaining === 0) this.#st = { k: 'http', layers: s.layers };
        continue;
      }
      if (s.k === 'chunked') { if (!this.#chunked(s)) return; continue; }
      if (s.k === 'ws') { if (!this.#frame(s, fin)) return; continue; }
      if (s.k === 'wsPayload') {
        const n = Math.min(s.remaining, this.#in.length);
        const raw = this.#in.subarray(0, n); this.#in = this.#in.subarray(n);
        const abs = this.#emit(raw, s.layers);
        this.#view('websocket', s.mask ? unmask(raw, s.mask, s.off) : raw, abs, s.layers);
        s.off += n; s.remaining -= n;
        if (s.remaining === 0) this.#st = { k: 'ws', layers: s.layers };
        continue;
      }
    }
  }

  /** The first bytes of a (possibly inner) stream: name the protocol, then judge it. */
  #sniff(s: Extract<St, { k: 'sniff' }>, fin: boolean): boolean {
    const cls = classify(this.#in, 'client', fin);
    if (cls.state === 'more') { this.#waitSniff(); return false; }
    const streamedBody = cls.protocol === 'incomplete' && (() => { const h = parseRequestHead(this.#in); return h !== null && h !== 'more'; })();
    // (a streamed body keeps the wait's end for the request judge that follows)
    if (!streamedBody) this.#judged();
    if (cls.httpHead || streamedBody) { this.#st = { k: 'http', layers: [...s.layers, 'http'] }; return true; }
    let protocol = cls.protocol;
    if (protocol === 'unknown' && this.#in.subarray(0, 14).toString('latin1') === 'PRI * HTTP/2.0') protocol = 'http2';
    const layers = [...s.layers, protocol];
    this.#hooks.onLayers(layers, protocol, cls.detail);
    if (protocol === 'incomplete') { this.#deny({ rule: 'inspection', reason: `handshake incomplete within the inspection window at ${layers.join('>')}`, protocol, layers }); return false; }
    // Fail closed: TLS below another layer (inside intercepted TLS, after CONNECT or an Upgrade)
    // cannot be opened here and would carry anything unseen (a miner or tunnel through an
    // allowed host that proxies). TLS as the stream's own first layer is a protocol like others.
    if (protocol === 'tls' && this.#nested && s.layers.length > 0) { this.#deny({ rule: 'inspection', reason: `TLS inside ${s.layers.join('>')} cannot be inspected (nested TLS)`, protocol, layers }); return false; }
    if (protocol === 'http2') { this.#deny({ rule: 'inspection', reason: `HTTP/2 inside ${s.layers.join('>')} is not inspected; the gateway offers only http/1.1`, protocol, layers }); return false; }
    const v = this.#hooks.judgeProtocol(protocol, layers, cls.detail);
    if (v) { this.#deny(v); return false; }
    this.#st = { k: 'raw', layers };
    return true;
  }

  #request(s: Extract<St, { k: 'http' }>, fin: boolean): boolean {
    let cls = classify(this.#in, 'client', fin);
    if (cls.state === 'more') {
      if (this.#in.length > BODY_LIMIT + 64 * 1024) { this.#deny({ rule: 'inspection', reason: 'request head too large', protocol: 'http', layers: s.layers }); return false; }
      this.#waitSniff(); return false;
    }
    this.#judged();
    const head = cls.httpHead ?? parseRequestHead(this.#in);
    // A complete head whose body is still arriving (a streamed, chunked upload) when the wait
    // ends is judged as HTTP on the head and the body bytes seen so far, not denied.
    if (cls.protocol === 'incomplete' && head !== null && head !== 'more') cls = { state: 'done', protocol: 'http', httpHead: head, detail: 'body still arriving when judged' };
    if (head === null || head === 'more') {
      this.#deny({ rule: 'inspection', reason: `not an HTTP request on an HTTP connection (${cls.protocol}) at ${s.layers.join('>')}`, protocol: cls.protocol, layers: [...s.layers, cls.protocol] });
      return false;
    }
    const layers = cls.protocol === 'http' ? s.layers : [...s.layers, cls.protocol];
    this.#hooks.onLayers(layers, cls.protocol, cls.detail);
    const v = this.#hooks.judgeProtocol(cls.protocol, layers, cls.detail) ?? this.#hooks.judgeRequest(head, layers);
    if (v) { this.#deny(v); return false; }
    this.requests++;
    let raw = this.#in.subarray(0, head.headEnd); this.#in = this.#in.subarray(head.headEnd);
    const upgrade = /upgrade/i.test(head.headers.get('connection') ?? '') ? (head.headers.get('upgrade') ?? '').toLowerCase() : '';
    // No WebSocket extension is offered upstream: compressed frames (permessage-deflate) could
    // not be read, so the server is never given the chance to negotiate one.
    if (upgrade === 'websocket' && head.headers.has('sec-websocket-extensions')) raw = withoutHeader(raw, 'sec-websocket-extensions');
    this.#emit(this.#hooks.rewriteHead(head, raw), layers);
    if (cls.awaitsBody) { this.#st = { k: 'expect', layers, head, headRaw: Buffer.from(raw) }; return true; }
    this.#afterHead(head, layers, upgrade);
    return true;
  }

  /** The body of a head that expected 100-continue: judged with its head, as the sniffers would have. */
  #expectedBody(s: Extract<St, { k: 'expect' }>, fin: boolean): boolean {
    const cls = classify(Buffer.concat([s.headRaw, this.#in]), 'client', fin);
    if (cls.state === 'more') {
      if (this.#in.length > BODY_LIMIT + 64 * 1024) { this.#deny({ rule: 'inspection', reason: 'request body not judged in time', protocol: 'http', layers: s.layers }); return false; }
      this.#waitSniff(); return false;
    }
    this.#judged();
    // 'incomplete': a body still streaming when the wait ends is judged on what came (as in #request).
    if (cls.protocol !== 'http' && cls.protocol !== 'incomplete') {
      const layers = [...s.layers, cls.protocol];
      this.#hooks.onLayers(layers, cls.protocol, cls.detail);
      const v = this.#hooks.judgeProtocol(cls.protocol, layers, cls.detail);
      if (v) { this.#deny(v); return false; }
    }
    this.#afterHead(s.head, s.layers, '');
    return true;
  }

  /** What follows a forwarded head: a tunnel, WebSocket frames, another upgrade, or a body. */
  #afterHead(head: HttpHead, layers: string[], upgrade: string): void {
    const s = { layers };
    const te = head.headers.get('transfer-encoding')?.toLowerCase() ?? '';
    const cl = Number(head.headers.get('content-length') ?? 0);
    this.#st = { k: 'http', layers };
    if (head.method === 'CONNECT') this.#st = { k: 'sniff', layers: [...s.layers, 'connect'] };
    else if (upgrade === 'websocket') { this.#st = { k: 'ws', layers: [...s.layers, 'websocket'] }; this.#hooks.onLayers(this.#st.layers, 'websocket'); }
    else if (upgrade) this.#st = { k: 'sniff', layers: [...s.layers, upgrade.replace(/[^a-z0-9.+-]/g, '').slice(0, 20) || 'upgrade'] };
    else if (te.includes('chunked')) this.#st = { k: 'chunked', layers: s.layers, phase: 'size', remaining: 0 };
    else if (cl > 0) this.#st = { k: 'body', layers: s.layers, remaining: cl };
  }

  #chunked(s: Extract<St, { k: 'chunked' }>): boolean {
    if (s.phase === 'data') {
      const n = Math.min(s.remaining, this.#in.length);
      const b = this.#in.subarray(0, n); this.#in = this.#in.subarray(n); s.remaining -= n;
      this.#view('body', b, this.#emit(b, s.layers), s.layers);
      if (s.remaining === 0) s.phase = 'crlf';
      return true;
    }
    const eol = this.#in.indexOf('\r\n');
    if (eol < 0) {
      if (this.#in.length > 4096) this.#deny({ rule: 'inspection', reason: 'bad chunked framing', protocol: 'http', layers: s.layers });
      return false;
    }
    const line = this.#in.subarray(0, eol).toString('latin1');
    this.#emit(this.#in.subarray(0, eol + 2), s.layers); this.#in = this.#in.subarray(eol + 2);
    if (s.phase === 'crlf') { s.phase = 'size'; return true; }
    if (s.phase === 'trailer') { if (line === '') this.#st = { k: 'http', layers: s.layers }; return true; }
    const size = parseInt(line.split(';')[0]!, 16);
    if (!Number.isFinite(size) || size < 0) { this.#deny({ rule: 'inspection', reason: 'bad chunk size', protocol: 'http', layers: s.layers }); return false; }
    if (size === 0) s.phase = 'trailer'; else { s.phase = 'data'; s.remaining = size; }
    return true;
  }

  /** One WebSocket frame header (+ the first bytes of a new message, judged before forwarding). */
  #frame(s: Extract<St, { k: 'ws' }>, fin: boolean): boolean {
    const h = parseFrameHeader(this.#in);
    if (h === 'more') return false;
    if (h === null) { this.#deny({ rule: 'inspection', reason: 'malformed WebSocket frame', protocol: 'websocket', layers: s.layers }); return false; }
    const newMessage = h.opcode === 1 || h.opcode === 2;
    if (newMessage) {
      const want = Math.min(h.length, WS_SNIFF);
      if (this.#in.length < h.headerLen + want && !fin) { this.#waitSniff(); return false; }
      this.#judged();
      const avail = this.#in.subarray(h.headerLen, h.headerLen + want);
      const payload = h.mask ? unmask(avail, h.mask, 0) : avail;
      const cls = classify(payload, 'client', true);
      if (cls.state === 'done' && cls.protocol !== 'unknown' && cls.protocol !== 'incomplete') {
        const layers = [...s.layers, cls.protocol];
        this.#hooks.onLayers(layers, cls.protocol, cls.detail);
        const v = this.#hooks.judgeProtocol(cls.protocol, layers, cls.detail);
        if (v) { this.#deny(v); return false; }
      }
    }
    this.#emit(this.#in.subarray(0, h.headerLen), s.layers);
    this.#in = this.#in.subarray(h.headerLen);
    this.#st = { k: 'wsPayload', layers: s.layers, remaining: h.length, mask: h.mask, off: 0 };
    if (h.length === 0) this.#st = { k: 'ws', layers: s.layers };
    return true;
  }
}

/** The head without one header (its lines), framing untouched. */
function withoutHeader(raw: Buffer, name: string): Buffer {
  const lines = raw.toString('latin1').split('\r\n');
  return Buffer.from(lines.filter((l, i) => i === 0 || l.slice(0, Math.max(0, l.indexOf(':'))).trim().toLowerCase() !== name).join('\r\n'), 'latin1');
}
