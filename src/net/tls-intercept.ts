// TLS interception for an allowed destination: the gateway answers the sandbox's ClientHello
// with a leaf minted by the Praetor CA for the SNI, opens its own TLS to the real server
// (verified against the host trust store plus network.upstreamCa), and runs the decrypted
// client stream through the layer inspector before re-encrypting it upstream. Threat: a miner,
// tunnel or stolen credential inside TLS to an allowed host. Fail closed: a client that refuses
// the certificate (pinning) or an upstream that does not verify ends the connection, with an
// event that says which.
import type net from 'node:net';
import tls from 'node:tls';
import { classify } from './protocols/index.ts';
import { isIPv4 } from './ip.ts';
import { LayerInspector, type LayerHooks, type LayerVerdict } from './layer-inspector.ts';
import type { InterceptCa } from './tls-ca.ts';
import type { TokenSet } from './token-scanner.ts';

export interface InterceptResult {
  deny?: { rule: string; reason: string; protocol: string; layers: string[] };
  bytesOut: number; bytesIn: number;
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
  handshakeTimeoutMs: number;
  /** Lets the flow cut this connection (isolate, phase switch). */
  setCut(cut: (rule: string, reason: string) => void): void;
}

export function interceptTls(j: InterceptJob): Promise<InterceptResult> {
  return new Promise((resolve) => {
    let bytesOut = 0; let bytesIn = 0; let settled = false;
    let cts: tls.TLSSocket | undefined; let uts: tls.TLSSocket | undefined;
    const finish = (deny?: InterceptResult['deny'], respond?: string) => {
      if (settled) return; settled = true;
      clearTimeout(timer);
      if (deny) {
        uts?.destroy(); j.up.destroy();
        if (respond && cts && !cts.destroyed) { cts.end(respond); setTimeout(() => { cts?.destroy(); j.client.destroy(); }, 1000).unref(); }
        else { cts?.destroy(); j.client.resetAndDestroy(); }
      }
      resolve({ ...(deny ? { deny } : {}), bytesOut, bytesIn });
    };
    const deny = (v: LayerVerdict) => finish(
      { rule: v.rule, reason: v.reason, protocol: v.protocol, layers: v.layers },
      v.respond === 403 ? forbidden(v.reason) : undefined,
    );
    j.setCut((rule, reason) => finish({ rule, reason, protocol: 'tls', layers: ['tls'] }));
    const timer = setTimeout(() => finish({ rule: 'tls-inspection', reason: 'TLS handshake with the sandbox or the upstream did not finish in time', protocol: 'tls', layers: ['tls'] }), j.handshakeTimeoutMs);
    timer.unref();

    const name = j.sni ?? j.dstIp;
    // Upstream first (it is the slower side); the client's handshake runs meanwhile.
    uts = tls.connect({
      socket: j.up, host: name, ...(j.sni && !isIPv4(j.sni) ? { servername: j.sni } : {}),
      secureContext: j.upstream, ALPNProtocols: ['http/1.1'],
    });
    let upReady = false; let clientReady = false;
    uts.once('secureConnect', () => { upReady = true; if (clientReady) start(); });
    uts.on('error', (e) => {
      if (!upReady) finish({ rule: 'tls-upstream', reason: `upstream certificate of ${name} not trusted or TLS failed: ${e.message} (trust the server's CA with network.upstreamCa)`, protocol: 'tls', layers: ['tls'] });
      else finish();
    });
    j.ca.contextFor(name).then((ctx) => {
      if (settled) return;
      // Unread bytes go back to the socket: TLSSocket feeds a wrapped socket's buffer to TLS first.
      j.client.unshift(j.first);
      cts = new tls.TLSSocket(j.client, { isServer: true, secureContext: ctx, ALPNProtocols: ['http/1.1'] });
      cts.once('secure', () => { clientReady = true; if (upReady) start(); });
      cts.on('error', (e) => {
        if (!clientReady) finish({ rule: 'tls-inspection', reason: `the sandbox's client refused the inspection certificate for ${name} (it pins certificates or does not trust the Praetor CA): ${e.message}`, protocol: 'tls', layers: ['tls'] });
        else finish();
      });
    }, (e: Error) => finish({ rule: 'tls-inspection', reason: `cannot mint a certificate for ${name}: ${e.message}`, protocol: 'tls', layers: ['tls'] }));

    const start = () => {
      if (settled || !cts || !uts) return;
      clearTimeout(timer);
      const c = cts; const u = uts;
      const ins = new LayerInspector(['tls'], { ...j.hooks, onDeny: deny }, j.tokens);
      ins.on('data', (d: Buffer) => { bytesOut += d.length; });
      c.pipe(ins).pipe(u);
      u.once('data', (chunk: Buffer) => {
        // A server of a gated protocol (a pool pushing jobs) is stopped before it reaches the sandbox.
        if (!(chunk.length >= 7 && chunk.toString('latin1', 0, 7) === 'HTTP/1.')) {
          const s = classify(chunk, 'server', true);
          if (s.state === 'done' && s.protocol !== 'unknown' && s.protocol !== 'incomplete') {
            const v = j.judgeServer(s.protocol, ['tls', s.protocol], s.detail);
            if (v) { deny(v); return; }
          }
        }
        bytesIn += chunk.length;
        c.write(chunk);
        u.on('data', (d: Buffer) => { bytesIn += d.length; });
        u.pipe(c);
      });
      let ends = 0;
      const ended = () => { if (++ends === 2) finish(); };
      c.once('close', () => { u.end(); setTimeout(() => u.destroy(), 30_000).unref(); ended(); });
      u.once('close', () => { if (!c.writableEnded) c.end(); setTimeout(() => c.destroy(), 30_000).unref(); ended(); });
      u.once('end', () => { if (!c.writableEnded) c.end(); });
    };
  });
}

function forbidden(reason: string): string {
  const body = `praetor: ${reason}\n`;
  return `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
