// One intercepted TCP connection from a sandbox: decide on the destination, read the first
// bytes and name the protocol, decide again (protocol gates, SNI/Host fronting), and only then
// forward. A denied protocol's first bytes never leave (an allowed destination may have been
// dialled meanwhile, and is closed having carried zero payload bytes; a denied destination is
// never dialled). Server-speaks-first protocols are judged on the server's first bytes before
// any of them reach the sandbox.
import net from 'node:net';
import type { EventBus } from '../events/index.ts';
import { nowNs } from '../util/index.ts';
import type { Decision, PhaseMatcher } from './policy-matcher.ts';
import { classify } from './protocols/index.ts';
import { connectionHooks, type SandboxInspection } from './inspection.ts';
import { LayerInspector, type LayerVerdict } from './layer-inspector.ts';
import { interceptTls } from './tls-intercept.ts';
import { sniffSocket } from './sniff-stream.ts';
import { catchUpInto, type CatchUp } from './catch-up-stream.ts';
import { quiesce, type SpliceEngine } from './splice-engine.ts';

export interface SandboxCtx {
  readonly id: string;
  matcher(): PhaseMatcher;
  boundNames(ip: string): string[];
  isolated(): boolean;
  /** A containment in progress (SandboxNet.containing): new connections are cut at once. */
  containing?(): { rule: string; reason: string } | undefined;
  readonly flows: Set<FlowHandle>;
  /** Owner of a sandbox socket, best effort (see pid-lookup.ts). */
  pidOf?(proto: 'tcp', local: { ip: string; port: number }, remote: { ip: string; port: number }): Promise<number | undefined>;
  /** TLS interception, egress tokens and brokered secrets for this sandbox (absent: none). */
  readonly inspection?: SandboxInspection;
  /** The kernel sensor's catch-up (sensor-catch-up.ts): outbound bytes wait for it. Absent: no sensor. */
  readonly catchUp?: CatchUp;
}
export interface FlowHandle {
  readonly dstIp: string; readonly dstPort: number; readonly names: string[]; protocol: string;
  /** when the gateway accepted it (wall-clock ns, the events' clock) */
  readonly openedAt: number;
  /** The sandbox side has sent its FIN: no more bytes can come from it (the flow is finishing). */
  readonly sandboxEnded: boolean;
  cut(rule: string, reason: string): void;
}

export interface FlowTiming { silentMs: number; totalMs: number; connectTimeoutMs: number; preconnect: boolean }
/** Bytes a flow moves back to the sandbox before its copying is handed to splice(2). */
export const SPLICE_AFTER = 256 * 1024;
export const DEFAULT_TIMING: FlowTiming = { silentMs: 150, totalMs: 3000, connectTimeoutMs: 10_000, preconnect: true };

interface FlowOpts { bus: EventBus; timing: FlowTiming; names?: string[]; prebuffer?: Buffer; via?: string; splice?: SpliceEngine | null }

export async function handleFlow(client: net.Socket, dst: { ip: string; port: number }, sb: SandboxCtx, o: FlowOpts): Promise<void> {
  const names = o.names ?? sb.boundNames(dst.ip);
  let protocol = 'unknown'; let sni: string | undefined; let host: string | undefined; let detail: string | undefined;
  let final: Decision | null = null; let upstream: net.Socket | null = null; let published = false;
  // The layer path of the verdict (tls>http>websocket>stratum); absent: just [protocol].
  let layers: string[] | undefined;
  // Plaintext byte counts of an intercepted flow (the raw sockets' counters no longer apply).
  let counted: { out: number; in: number } | undefined;
  let interceptCut: ((rule: string, reason: string) => void) | undefined;
  // Bytes moved by the kernel after the hand-over to the splice engine, and its flow id.
  const spliced = { out: 0, in: 0, id: 0 };
  // Set once the splice engine has let go of the sockets (they are Node's again).
  let spliceDone = false;
  const handle: FlowHandle = {
    dstIp: dst.ip, dstPort: dst.port, names, openedAt: nowNs(),
    get protocol() { return protocol; }, set protocol(p) { protocol = p; },
    get sandboxEnded() { return client.readableEnded; },
    cut(rule, reason) {
      final = { allow: false, rule, reason };
      if (interceptCut) { interceptCut(rule, reason); return; }
      // A spliced flow's sockets belong to the engine until it lets go; it then closes them.
      if (spliced.id && o.splice && !spliceDone) { o.splice.cut(spliced.id); return; }
      upstream?.destroy(); client.resetAndDestroy();
    },
  };
  // Who in the sandbox opened this connection (the sandbox's socket must still exist). The lookup costs a few dozen /proc reads, so it runs where it matters: at once for a denial
  // (who tried to reach the pool), and for an allowed flow only once it has lived a second
  // (tunnels, long transfers). Short allowed flows are correlated through net.connect events.
  let pid: number | undefined;
  let pidP: Promise<void> = Promise.resolve();
  const lookupPid = (capMs = 25) => {
    if (!sb.pidOf || !client.remoteAddress || !client.remotePort || pidStarted) return;
    pidStarted = true;
    pidP = Promise.race([
      sb.pidOf('tcp', { ip: client.remoteAddress.replace(/^::ffff:/, ''), port: client.remotePort }, dst).then((p) => { pid = p; }, () => {}),
      new Promise<void>((r) => setTimeout(r, capMs).unref()),
    ]);
  };
  let pidStarted = false;
  const publish = (d: Decision) => {
    if (published) return; published = true;
    sb.flows.delete(handle);
    void pidP.then(() => emit(d));
  };
  const emit = (d: Decision) => {
    o.bus.publish({
      kind: 'net.flow', sandboxId: sb.id, ...(pid !== undefined ? { pid } : {}), dstIp: dst.ip, dstPort: dst.port,
      ...(d.domain ?? names[0] ? { domain: d.domain ?? names[0]! } : {}), ...(sni ? { sni } : {}), ...(host ? { host } : {}),
      protocol, layers: layers ?? [protocol],
      bytesOut: counted ? counted.out : (upstream?.bytesWritten ?? 0) + spliced.out, bytesIn: counted ? counted.in : (upstream ? client.bytesWritten : 0) + spliced.in,
      decision: d.allow ? 'allow' : 'deny', rule: d.rule,
      ...(d.reason ?? detail ? { reason: [d.reason, detail, o.via].filter(Boolean).join('; ') } : {}),
    });
  };
  // A denied connection is reset only after its owner was looked up (bounded): the reset
  // closes the sandbox's socket, and with it the trail to the process. Nothing is forwarded
  // meanwhile.
  const deny = (d: Decision) => {
    final = d; upstream?.destroy(); lookupPid(100);
    void pidP.then(() => client.resetAndDestroy());
    publish(d);
  };
  client.on('error', () => {});
  sb.flows.add(handle);

  if (sb.isolated()) return deny({ allow: false, rule: 'isolated', reason: 'sandbox isolated' });
  const containing = sb.containing?.();
  if (containing) return deny({ allow: false, ...containing });
  let m = sb.matcher();
  const dest = m.connect(dst.ip, dst.port, names);

  // An allowed destination is dialled while the first bytes are judged (saves a round trip of
  // setup latency): the destination was allowed, and if the protocol is not, the connection is
  // closed having carried zero payload bytes. A denied destination is never dialled.
  let upConnected: Promise<Error | null> | undefined;
  const openUpstream = (): net.Socket => {
    const u = net.connect({ host: dst.ip, port: dst.port, noDelay: true });
    u.setTimeout(o.timing.connectTimeoutMs, () => u.destroy(new Error('connect timed out')));
    upConnected = new Promise<Error | null>((resolve) => {
      u.once('connect', () => { u.setTimeout(0); resolve(null); });
      u.once('error', (e) => resolve(e));
      u.once('close', () => resolve(new Error('closed')));
    });
    upstream = u;
    return u;
  };
  if (dest.allow && o.timing.preconnect) openUpstream();

  // Read the client's first bytes (nothing forwarded). For a denied destination this only
  // names the protocol for the record, briefly.
  const sniffed = o.prebuffer
    ? { silent: false as const, buf: o.prebuffer, ended: false, cls: classify(o.prebuffer, 'client', true) as Extract<ReturnType<typeof classify>, { state: 'done' }> }
    : await sniffSocket(client, 'client', dest.allow ? o.timing : { silentMs: Math.min(o.timing.silentMs, 150), totalMs: 300 });
  if (final) return publish(final); // cut while sniffing
  if (!sniffed.silent) ({ protocol, sni, host, detail } = { protocol: sniffed.cls.protocol, sni: sniffed.cls.sni, host: sniffed.cls.host, detail: sniffed.cls.detail });
  if (!dest.allow) return deny(dest);
  m = sb.matcher(); // the phase may have switched while we waited
  let d: Decision = m.connect(dst.ip, dst.port, names);
  if (!d.allow) return deny(d);
  if (!sniffed.silent) {
    if (protocol === 'incomplete') return deny({ allow: false, rule: 'inspection', reason: 'handshake incomplete within the inspection window' });
    const p = m.protocol(protocol);
    if (!p.allow) return deny({ ...p, ...(d.domain ? { domain: d.domain } : {}) });
    for (const n of [sni, host]) {
      if (n === undefined) continue;
      const h = m.hostName(n, dst.port, d, names);
      if (!h.allow) return deny(h);
      d = h;
    }
  }

  const up = upstream ?? openUpstream();
  const connected = await upConnected!;
  if (final) { up.destroy(); return publish(final); }
  if (connected) { client.resetAndDestroy(); return publish({ ...d, reason: `upstream: ${connected.message}` }); }
  up.on('error', () => {}); // the client socket was accepted with noDelay already
  const insp = sb.inspection;
  const conn = connectionHooks({ matcher: sb.matcher, d, port: dst.port, names, insp });
  // TLS to a destination whose rule inspects it: terminated here, judged decrypted. Also when
  // the ClientHello comes late (after the server-first silence): a client that waits before its
  // handshake must not slip past interception.
  let intercepting = false;
  const intercepts = (p: string) => p === 'tls' && d.inspect === 'tls' && !!insp?.ca && !!insp.upstream;
  const runIntercept = async (first: Buffer, hello: { sni?: string }): Promise<void> => {
    intercepting = true; layers = ['tls'];
    // Who owns it is looked up as for other flows: for a denial, and for a flow that lives a
    // second (a tunnel, a long transfer); a short allowed exchange is correlated through the
    // kernel sensor's net.connect, not by a /proc scan on every HTTPS request.
    const longLived = setTimeout(() => lookupPid(), 1000); longLived.unref();
    const r = await interceptTls({
      client, up, first, ...(hello.sni ? { sni: hello.sni } : {}), dstIp: dst.ip, ca: insp!.ca!, upstream: insp!.upstream!,
      hooks: { ...conn.hooks, onLayers: (l) => { if (l.length >= (layers?.length ?? 0)) layers = l; } },
      judgeServer: conn.judgeServer, tokens: conn.tokens, handshakeTimeoutMs: o.timing.connectTimeoutMs, ...(insp!.sessions ? { sessions: insp!.sessions } : {}),
      setCut: (fn) => { interceptCut = fn; }, ...(sb.catchUp ? { catchUp: sb.catchUp } : {}),
    });
    counted = { out: r.bytesOut, in: r.bytesIn };
    if (r.note) detail = [detail, r.note].filter(Boolean).join('; ');
    if (r.deny) { final ??= { allow: false, rule: r.deny.rule, reason: r.deny.reason, ...(d.domain ? { domain: d.domain } : {}) }; layers = r.deny.layers; protocol = r.deny.protocol; }
    if (!final && (layers?.length ?? 0) < 2 && r.bytesOut === 0) layers = ['tls'];
    clearTimeout(longLived);
    if (final) lookupPid(100);
    await pidP;
    publish(final ?? d);
  };
  if (!sniffed.silent && intercepts(protocol)) return runIntercept(sniffed.buf, { ...(sni ? { sni } : {}) });
  // HTTP keeps being judged request by request (keep-alive fronting, later transactions);
  // other protocols are judged on their first bytes only.
  const firstHead = sniffed.silent ? undefined : sniffed.cls.httpHead;
  let httpFlow = firstHead !== undefined && ['http', 'jsonrpc', 'jsonrpc-tx', 'stratum'].includes(protocol);
  let halfSpliced = false;
  client.on('close', () => {
    if (intercepting) return;
    if (spliced.id && !spliceDone) { o.splice!.cut(spliced.id); return; } // up is closed after the engine lets go
    up.destroy();
  });
  up.on('close', () => {
    if (intercepting) return;
    // Let the sandbox read what was already sent; an abandoned client is reaped later.
    if (halfSpliced && !final) setTimeout(() => client.destroy(), 30_000).unref();
    else if (final) client.resetAndDestroy();
    else if (client.writableFinished || client.destroyed) client.destroy();
    else { client.end(); setTimeout(() => client.destroy(), 30_000).unref(); }
    publish(final ?? d);
  });

  const toUpstream = (first: Buffer, ended: boolean) => {
    // Outbound bytes wait for the kernel sensor to catch up to their arrival (a credential read
    // just before them makes its values egress tokens, or cuts this flow, first).
    const out = catchUpInto(up, sb.catchUp, (e) => { if (!final) handle.cut('sensor-catch-up', e.message); });
    if (!httpFlow && !conn.tokens) {
      if (first.length > 0) out.write(first);
      if (ended) out.end(); else client.pipe(out);
      return;
    }
    // HTTP, and any flow with egress tokens, runs through the layer inspector: request by
    // request (keep-alive fronting, later transactions, L7 rules, brokered headers), WebSocket
    // payloads after an upgrade, CONNECT's inner stream; tokens held back until cleared.
    const ins = new LayerInspector([], {
      ...conn.hooks,
      onLayers: (l) => { if (l.length > (layers?.length ?? 1)) layers = l; },
      onDeny: (v: LayerVerdict) => {
        protocol = v.protocol; layers = v.layers; if (v.host) host = v.host;
        if (httpFlow && v.layers.length <= 2 && v.rule !== 'egress-token') detail = `request ${ins.requests + 1} on the connection`;
        if (v.respond === 403) {
          // L7 denial: the client gets an answer that names the rule, then the connection ends.
          final = { allow: false, rule: v.rule, reason: v.reason };
          up.destroy();
          const body = `praetor: ${v.reason}\n`;
          client.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
          setTimeout(() => client.destroy(), 1000).unref();
          return;
        }
        handle.cut(v.rule, v.reason);
      },
    }, conn.tokens, { nested: d.inspect === 'tls' }); // passthrough rules accept unread TLS (documented risk)
    ins.on('error', (e) => { if (!final) handle.cut('inspection', e.message); });
    ins.pipe(out);
    if (first.length > 0) ins.write(first);
    if (ended) ins.end(); else client.pipe(ins);
  };

  const startClientPipe = async () => {
    if (sniffed.silent && !sniffed.ended) {
      // Server spoke first (or nobody did): the client's first bytes are still judged before
      // they are forwarded, so waiting for a harmless banner does not smuggle a miner login.
      const late = await sniffSocket(client, 'client', { silentMs: 30_000, totalMs: 33_000 });
      if (final) return;
      if (!late.silent) {
        const denied = judgeLate(late.cls);
        if (denied) { handle.cut(denied.rule, denied.reason ?? 'denied'); return; }
      }
      if (!late.silent && intercepts(late.cls.protocol)) {
        // The server stayed silent and the client now starts TLS: the server-first reader
        // must not see the upstream's handshake bytes.
        up.removeAllListeners('data'); up.pause();
        await runIntercept(late.buf, { ...(late.cls.sni ? { sni: late.cls.sni } : {}) });
        return;
      }
      // A late HTTP client is inspected like any other (WebSocket payloads, L7 rules, tokens).
      if (!late.silent && late.cls.httpHead !== undefined) httpFlow = true;
      toUpstream(late.buf, late.ended);
      return;
    }
    toUpstream(sniffed.buf, sniffed.ended);
  };
  // The client's first bytes after a silence are judged whatever the server's banner named the
  // flow. Threat: an allowed SSH (or other server-first) banner must not wave through a stratum
  // login or tunnel handshake the client sends next; nor may a late TLS/HTTP client name a
  // fronted host. Returns the denial, or null.
  const judgeLate = (cls: { protocol: string; sni?: string; host?: string; detail?: string }): Decision | null => {
    if (protocol === 'unknown') { protocol = cls.protocol; detail = cls.detail; }
    else if (cls.protocol !== protocol) detail = `client then spoke ${cls.protocol}${cls.detail ? ` (${cls.detail})` : ''}`;
    if (cls.sni) sni = cls.sni;
    if (cls.host) host = cls.host;
    if (cls.protocol === 'incomplete') return { allow: false, rule: 'inspection', reason: 'handshake incomplete within the inspection window' };
    const m2 = sb.matcher();
    const p = m2.protocol(cls.protocol);
    if (!p.allow) return p;
    for (const n of [cls.sni, cls.host]) {
      if (n === undefined) continue;
      const h = m2.hostName(n, dst.port, d, names);
      if (!h.allow) return h;
    }
    return null;
  };
  // Server's first bytes: a server banner of a gated protocol (SSH, a pool's push, a tunnel's
  // challenge) is denied before it reaches the sandbox.
  up.once('data', (chunk: Buffer) => {
    // An HTTP status line answering an HTTP request is HTTP: no gated protocol starts that way,
    // and skipping the server-side sniffers keeps them off every web request's first byte.
    const httpAnswer = protocol === 'http' && chunk.length >= 7 && chunk.toString('latin1', 0, 7) === 'HTTP/1.';
    if (!httpAnswer && (sniffed.silent || protocol === 'unknown' || protocol === 'tls' || protocol === 'http')) {
      const s2 = classify(chunk, 'server', true);
      if (s2.state === 'done' && s2.protocol !== 'unknown' && s2.protocol !== 'incomplete') {
        const p = sb.matcher().protocol(s2.protocol);
        if (!p.allow && s2.protocol !== protocol) {
          protocol = s2.protocol; detail = `server spoke ${s2.protocol}${s2.detail ? ` (${s2.detail})` : ''}`;
          final = p; client.resetAndDestroy(); up.destroy(); return;
        }
        if (sniffed.silent) { protocol = s2.protocol; detail = s2.detail; }
      }
    }
    client.write(chunk);
    up.pipe(client);
    const t = setTimeout(() => lookupPid(), 1000); t.unref(); client.once('close', () => clearTimeout(t));
    // Short exchanges stay in Node (a hand-over costs more than it saves); a flow that moves
    // more than SPLICE_AFTER bytes back is handed to the kernel.
    if (o.splice && !sniffed.silent && !sniffed.ended) {
      let seen = chunk.length;
      const count = (d: Buffer) => {
        seen += d.length;
        if (seen < SPLICE_AFTER) return;
        up.off('data', count);
        void handOver(o.splice!);
      };
      up.on('data', count);
    }
  });
  // Judged: from here the kernel moves the bytes (splice). For HTTP only the response
  // direction is spliced; requests keep flowing through the inspector.
  const handOver = async (engine: SpliceEngine) => {
    // The request direction stays in Node wherever it is inspected (HTTP, egress tokens).
    // So does it wherever outbound bytes wait for the kernel sensor.
    const mode = httpFlow || conn.tokens || sb.catchUp ? 'ba' as const : 'both' as const;
    up.unpipe(client);
    if (mode === 'both') client.unpipe(up);
    if (!(await quiesce(client, up, mode)) || final) { if (!final) { client.destroy(); up.destroy(); } else { up.destroy(); client.resetAndDestroy(); } return; }
    const run = engine.run(client, up, mode);
    if (!run) {
      if (mode === 'both') { client.pipe(up); client.resume(); }
      up.pipe(client); up.resume(); return;
    }
    spliced.id = run.id; halfSpliced = mode === 'ba';
    const r = await run.done;
    spliceDone = true;
    spliced.out = r.bytesAB; spliced.in = r.bytesBA;
    up.destroy();
    if (final) client.resetAndDestroy();
    else if (mode === 'both') client.destroy();
  };
  void startClientPipe();
  up.resume();
}
