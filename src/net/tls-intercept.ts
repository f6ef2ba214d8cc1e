// TLS interception for an allowed destination: the gateway answers the sandbox's ClientHello
// with a leaf minted by the Praetor CA for the SNI, opens its own TLS to the real server
// (verified against the host trust store plus network.upstreamCa), and runs the decrypted
// client stream through the layer inspector before re-encrypting it upstream. Threat: a miner,
// tunnel or stolen credential inside TLS to an allowed host. Fail closed: a client that refuses
// the certificate (pinning) or an upstream that does not verify ends the connection, with an
// event that says which.
import type net from 'node:net';
import tls from 'node:tls';
import { classify, parseClientHello } from './protocols/index.ts';
import { isIPv4 } from '../util/index.ts';
import { catchUpInto, type CatchUp } from './catch-up-stream.ts';
import { LayerInspector, type LayerHooks, type LayerVerdict } from './layer-inspector.ts';
import { relayPlaintext, type PlaintextRelay } from './plaintext-relay.ts';
import type { InterceptCa } from './tls-ca.ts';
import type { TokenSet } from './token-scanner.ts';

/** Client silence after its handshake before the upstream is opened anyway (server speaks first). */
const SERVER_FIRST_MS = 150;
/** Bigger reads per callback: bulk transfers cross fewer JS stream turns (two TLS ops each way). */
const HWM = { highWaterMark: 256 * 1024 } as {}; // net.Socket's option; not in TLSSocketOptions' type

export interface InterceptResult {
  deny?: { rule: string; reason: string; protocol: string; layers: string[] };
  bytesOut: number; bytesIn: number;
  /** What the verdict should also say: the client offered HTTP/2 and was given http/1.1. */
  note?: string;
}

export interface InterceptJob {
  client: net.Socket; up: net.Socket;
  /** The ClientHello bytes already read from the client (nothing was forwarded). */
  first: Buffer;
  sni?: string; dstIp: string;
  ca: InterceptCa;
  /** Trusts what the upstream's certificate must chain to. */
  upstream: tls.SecureContext;
  hooks: Pick<LayerHooks, 'judgeProtocol' | 'judgeRequest' | 'rewriteHead' | 'onLayers'>;
  /** Server-side protocol gate (a pool's push inside TLS): the denial, or null. */
  judgeServer(protocol: string, layers: string[], detail?: string): LayerVerdict | null;
  tokens: TokenSet | null;
  /** Upstream session tickets (TLS resumption), shared by this sandbox's connections. */
  sessions?: Map<string, Buffer>;
  handshakeTimeoutMs: number;
  /** Lets the flow cut this connection (isolate, phase switch). */
  setCut(cut: (rule: string, reason: string) => void): void;
  /** Decrypted outbound bytes wait for the kernel sensor (catch-up-stream.ts); absent: no sensor. */
  catchUp?: CatchUp;
}

export function interceptTls(j: InterceptJob): Promise<InterceptResult> {
  return new Promise((resolve) => {
    let bytesOut = 0; let bytesIn = 0; let settled = false; let note: string | undefined;
    let cts: tls.TLSSocket | undefined; let uts: tls.TLSSocket | undefined;
    const finish = (deny?: InterceptResult['deny'], respond?: string) => {
      if (settled) return; settled = true;
      clearTimeout(timer);
      if (deny) {
        uts?.destroy(); j.up.destroy();
        if (respond && cts && !cts.destroyed) { cts.end(respond); setTimeout(() => { cts?.destroy(); j.client.destroy(); }, 1000).unref(); }
        else { cts?.destroy(); j.client.resetAndDestroy(); }
      }
      resolve({ ...(deny ? { deny } : {}), bytesOut, bytesIn, ...(note ? { note } : {}) });
    };
    const deny = (v: LayerVerdict) => finish(
      { rule: v.rule, reason: v.reason, protocol: v.protocol, layers: v.layers },
      v.respond === 403 ? forbidden(v.reason) : undefined,
    );
    j.setCut((rule, reason) => finish({ rule, reason, protocol: 'tls', layers: ['tls'] }));
    const timer = setTimeout(() => finish({ rule: 'tls-inspection', reason: "the sandbox's TLS handshake did not finish in time", protocol: 'tls', layers: ['tls'] }), j.handshakeTimeoutMs);
    timer.unref();

    const name = j.sni ?? j.dstIp;
    const key = `${name}:${j.dstIp}`;
    // The upstream's TLS normally starts only once the client's first bytes were judged (or the
    // client waits for the server), so a denied protocol never makes the real server see so much
    // as a ClientHello from it, and a pinning client never reaches it. Once this sandbox holds a
    // verified session for this name and address (it spoke to this server through the gateway
    // before), the upstream handshake is started during the client's instead: it saves a whole
    // upstream handshake on the first response, and the server learns nothing it did not know
    // (a further connection from the gateway, which then carries only judged bytes, or none).
    const speculate = !!j.sessions?.has(key);
    // Only HTTP/1.1 is read inside intercepted TLS. A client that offers ALPN without http/1.1
    // (HTTP/2 only, or another protocol) would get a handshake alert that reads like pinning;
    // it is refused before the handshake with an event that names what it asked for. Threat:
    // HTTP/2's binary frames and compressed headers would carry requests the HTTP sniffers, L7
    // rules, brokered headers and the WebSocket reader never see. Why not terminate HTTP/2 here:
    // every client that offers h2 also offers http/1.1 (browsers, curl, Go, Python, Node's
    // fetch); a second HTTP stack (HPACK state, streams, flow control, RFC 8441 WebSockets,
    // CONNECT streams) in the process every sandbox's bytes pass through would be a second place
    // for the L7 rules, brokering and token scanning to diverge. A client that offers h2 beside
    // http/1.1 is given http/1.1, and its verdict says so; one that speaks the HTTP/2 preface
    // anyway (prior knowledge) is cut by the layer inspector (tls>http2).
    const hello = parseClientHello(j.first);
    const alpn = hello && hello !== 'more' ? hello.alpn : [];
    if (alpn.length > 0 && !alpn.includes('http/1.1')) {
      const h2 = alpn.includes('h2');
      finish({
        rule: 'tls-inspection', protocol: h2 ? 'http2' : 'tls', layers: h2 ? ['tls', 'http2'] : ['tls'],
        reason: `the sandbox's client offers only ALPN ${alpn.join(',')} to ${name}; intercepted TLS carries http/1.1 only (${h2 ? 'HTTP/2 is not inspected' : 'that protocol is not inspected'}): let the client use http/1.1, or make the rule inspect: passthrough`,
      });
      return;
    }
    const other = alpn.filter((p) => p !== 'http/1.1');
    if (other.length > 0) note = `the client offered ALPN ${alpn.join(',')}; http/1.1 was negotiated (${other.includes('h2') ? 'HTTP/2 is' : `${other.join(',')} ${other.length > 1 ? 'are' : 'is'}`} not inspected, so not offered)`;
    j.ca.contextFor(name).then((ctx) => {
      if (settled) return;
      // Unread bytes go back to the socket: TLSSocket feeds a wrapped socket's buffer to TLS
      // first (and only if nobody resumes the socket before that).
      j.client.unshift(j.first);
      cts = new tls.TLSSocket(j.client, { isServer: true, secureContext: ctx, ALPNProtocols: ['http/1.1'], ...HWM });
      let clientReady = false;
      cts.once('secure', () => { clientReady = true; clearTimeout(timer); startClient(cts!); });
      cts.on('error', (e) => {
        if (!clientReady) finish({ rule: 'tls-inspection', reason: `the sandbox's client refused the inspection certificate for ${name} (it pins certificates or does not trust the Praetor CA): ${e.message}`, protocol: 'tls', layers: ['tls'] });
        else finish();
      });
      // After the client's ServerHello flight has been produced: the upstream ClientHello costs
      // the same thread most of a millisecond, which would otherwise delay the client's handshake.
      if (speculate) setImmediate(startUpstream);
    }, (e: Error) => finish({ rule: 'tls-inspection', reason: `cannot mint a certificate for ${name}: ${e.message}`, protocol: 'tls', layers: ['tls'] }));

    const abandon = () => {
      if (settled) return;
      finish();
      cts?.destroy(); uts?.destroy(); j.up.destroy(); j.client.destroy();
    };
    // go: the client's first bytes were judged (or it stayed silent): bytes may now cross.
    let go: { c: tls.TLSSocket; ins: LayerInspector } | undefined;
    let upReady = false; let wired = false;
    const startClient = (c: tls.TLSSocket) => {
      if (settled) return;
      const ins = new LayerInspector(['tls'], { ...j.hooks, onDeny: deny }, j.tokens, { onOutput: () => openUpstream(c, ins) });
      c.pipe(ins);
      // Server speaks first (or the client waits): open the upstream after a short silence.
      const silence = setTimeout(() => openUpstream(c, ins), SERVER_FIRST_MS); silence.unref();
      // A client gone before its bytes could cross ends the connection; judged bytes already
      // waiting for an upstream handshake in flight still go (fire and forget).
      c.once('close', () => { clearTimeout(silence); if (!wired && !(go && uts)) abandon(); });
      clearSilence = () => clearTimeout(silence);
    };
    let clearSilence = () => {};

    const openUpstream = (c: tls.TLSSocket, ins: LayerInspector) => {
      clearSilence();
      if (go || settled) return;
      go = { c, ins };
      if (!uts) startUpstream(); else if (upReady) wire();
    };

    const startUpstream = () => {
      if (uts || settled) return;
      const hsTimer = setTimeout(() => finish({ rule: 'tls-upstream', reason: `TLS handshake with ${name} did not finish in time`, protocol: 'tls', layers: ['tls'] }), j.handshakeTimeoutMs);
      hsTimer.unref();
      const session = j.sessions?.get(key);
      const u = tls.connect({
        socket: j.up, host: name, ...(j.sni && !isIPv4(j.sni) ? { servername: j.sni } : {}), ...(session ? { session } : {}),
        secureContext: j.upstream, ALPNProtocols: ['http/1.1'], ...HWM,
      });
      uts = u;
      // Only a verified connection's tickets are kept: resuming one skips the certificate. A
      // ticket may arrive before the handshake is reported complete, so it waits for that.
      let ticket: Buffer | undefined;
      const keep = (t: Buffer) => { if (u.authorized && j.sessions && (j.sessions.size < 256 || j.sessions.has(key))) j.sessions.set(key, t); };
      u.on('session', (t: Buffer) => { ticket = t; if (upReady) keep(t); });
      u.on('error', (e) => {
        if (!upReady) finish({ rule: 'tls-upstream', reason: `upstream certificate of ${name} not trusted or TLS failed: ${e.message} (trust the server's CA with network.upstreamCa)`, protocol: 'tls', layers: ['tls'] });
        else if (!wired) abandon();
        else finish();
      });
      u.once('secureConnect', () => {
        upReady = true; clearTimeout(hsTimer);
        if (ticket) keep(ticket);
        if (go) wire();
      });
      // Before go, nothing reads the upstream (a server's early bytes wait in its buffer, to be
      // judged like any first bytes); a server that hangs up meanwhile ends the connection.
      u.once('close', () => { if (!wired) abandon(); });
    };

    // Both sides ready and the client judged: the judged stream goes up, the server's first
    // bytes are judged, then both directions are piped.
    const wire = () => {
      if (wired || settled || !go || !uts) return;
      wired = true;
      const { c, ins } = go; const u = uts;
      ins.on('data', (d: Buffer) => { bytesOut += d.length; });
      ins.pipe(catchUpInto(u, j.catchUp, (e) => finish({ rule: 'sensor-catch-up', reason: e.message, protocol: 'tls', layers: ['tls'] })));
      u.once('data', (chunk: Buffer) => {
        // A server of a gated protocol (a pool pushing jobs) is stopped before it reaches the sandbox.
        if (!(chunk.length >= 7 && chunk.toString('latin1', 0, 7) === 'HTTP/1.')) {
          const sc = classify(chunk, 'server', true);
          if (sc.state === 'done' && sc.protocol !== 'unknown' && sc.protocol !== 'incomplete') {
            const v = j.judgeServer(sc.protocol, ['tls', sc.protocol], sc.detail);
            if (v) { deny(v); return; }
          }
        }
        bytesIn += chunk.length;
        c.write(chunk);
        relayed = relayPlaintext(u, c, (n) => { bytesIn += n; });
      });
      // What the relay read but has not written yet leaves before the client's side is ended.
      let relayed: PlaintextRelay | undefined;
      const endClient = () => { relayed?.flush(); if (!c.writableEnded) c.end(); };
      let ends = 0;
      const ended = () => { if (++ends === 2) finish(); };
      if (c.destroyed) ended(); else c.once('close', () => { u.end(); setTimeout(() => u.destroy(), 30_000).unref(); ended(); });
      if (u.destroyed) ended(); else u.once('close', () => { endClient(); setTimeout(() => c.destroy(), 30_000).unref(); ended(); });
      u.once('end', endClient);
    };
  });
}

function forbidden(reason: string): string {
  const body = `praetor: ${reason}\n`;
  return `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
