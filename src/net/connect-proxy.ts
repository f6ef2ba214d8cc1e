// HTTP_PROXY / HTTPS_PROXY for tools that expect a proxy: CONNECT host:port and absolute-form
// requests. The proxy resolves names through the same policy resolver (so the same allow-list,
// rebinding and tunnelling checks apply), then hands the connection to the same inspection as
// transparent traffic, with the requested name as the one SNI/Host must match.
import type net from 'node:net';
import { isIPv4 } from '../util/index.ts';
import { buildQuery, parseMessage } from './dns/codec.ts';
import { answerQuery, type DnsContext, type Upstream } from './dns/resolver.ts';
import { handleFlow, type FlowTiming, type SandboxCtx } from './flow.ts';
import { parseRequestHead, requestHost } from './protocols/index.ts';
import type { EventBus } from '../events/index.ts';
import type { SpliceEngine } from './splice-engine.ts';

const HEAD_LIMIT = 32 * 1024;

export async function handleProxy(client: net.Socket, sb: SandboxCtx, dns: DnsContext, upstream: Upstream, o: { bus: EventBus; timing: FlowTiming; splice?: SpliceEngine | null }): Promise<void> {
  client.on('error', () => {});
  const head = await readHead(client, o.timing.totalMs);
  if (!head) { client.destroy(); return; }
  const { buf } = head;
  const h = parseRequestHead(buf);
  if (h === null || h === 'more') { respond(client, 400, 'bad proxy request'); return; }
  let hostName: string; let port: number;
  if (h.method === 'CONNECT') {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(h.target);
    if (!m) { respond(client, 400, 'CONNECT needs host:port'); return; }
    hostName = m[1]!.toLowerCase(); port = Number(m[2]);
  } else {
    const u = /^http:\/\/([^/:?#]+)(?::(\d+))?/i.exec(h.target);
    if (!u) { respond(client, 400, 'proxy requests need an absolute http:// URL'); return; }
    hostName = requestHost(h)!; port = Number(u[2] ?? 80);
  }
  let ip = hostName; let names: string[] = [];
  if (!isIPv4(hostName)) {
    const raw = await answerQuery(buildQuery(1, hostName, 1), dns, upstream);
    const ans = raw ? parseMessage(raw) : null;
    const a = ans?.answers.find((r) => r.type === 1);
    if (!a) { respond(client, 403, `name ${hostName} is not allowed or did not resolve`); return; }
    ip = a.data as string; names = [hostName];
  }
  const rest = buf.subarray(h.headEnd);
  if (h.method === 'CONNECT') {
    const d = sb.matcher().connect(ip, port, names);
    if (!d.allow) {
      // Same record as a transparent denial; the client gets a 403 instead of a reset.
      o.bus.publish({ kind: 'net.flow', sandboxId: sb.id, dstIp: ip, dstPort: port, ...(names[0] ? { domain: names[0] } : {}),
        protocol: 'unknown', bytesOut: 0, bytesIn: 0, decision: 'deny', rule: d.rule, reason: [d.reason, 'via CONNECT proxy'].filter(Boolean).join('; ') });
      respond(client, 403, d.reason ?? 'denied by policy');
      return;
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (rest.length > 0) client.unshift(rest);
  } else {
    // Absolute-form to origin-form; Proxy-* headers stay here.
    const lines = buf.subarray(0, h.headEnd - 4).toString('latin1').split('\r\n');
    const path = h.target.replace(/^http:\/\/[^/?#]+/i, '') || '/';
    const out = [`${h.method} ${path.startsWith('/') ? path : '/' + path} ${h.version}`,
      ...lines.slice(1).filter((l) => !/^proxy-/i.test(l))];
    client.unshift(Buffer.concat([Buffer.from(out.join('\r\n') + '\r\n\r\n', 'latin1'), rest]));
  }
  await handleFlow(client, { ip, port }, sb, { ...o, names, via: 'via proxy' });
}

function respond(client: net.Socket, status: number, msg: string): void {
  const reason = status === 403 ? 'Forbidden' : 'Bad Request';
  client.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(msg) + 1}\r\n\r\n${msg}\n`);
}

function readHead(sock: net.Socket, timeoutMs: number): Promise<{ buf: Buffer } | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []; let size = 0;
    const done = (r: { buf: Buffer } | null) => { clearTimeout(t); sock.off('data', onData); sock.off('end', onEnd); sock.pause(); resolve(r); };
    const onData = (d: Buffer) => {
      chunks.push(d); size += d.length;
      const buf = Buffer.concat(chunks);
      if (buf.indexOf('\r\n\r\n') >= 0) done({ buf });
      else if (size > HEAD_LIMIT) done(null);
    };
    const onEnd = () => done(null);
    const t = setTimeout(() => done(null), timeoutMs);
    sock.on('data', onData); sock.once('end', onEnd);
    sock.resume();
  });
}
