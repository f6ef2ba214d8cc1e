// HTTP/1: the Host header must be the name the connection was allowed for (fronting); bodies up
// to 64 KiB are read before anything is forwarded, so a JSON-RPC transaction or a getwork
// mining call inside a POST is seen. WebSocket upgrades to chisel's subprotocol are tunnels.
import { classifyJson } from './json-rpc-methods.ts';
import { BODY_LIMIT, MORE, NO, type HttpHead, type SniffResult, type Sniffer } from './types.ts';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'];
const HEADER_LIMIT = 32 * 1024;

export type { HttpHead };

/** Parses a request head; 'more' while incomplete, null if these bytes are not an HTTP request. */
export function parseRequestHead(buf: Buffer): HttpHead | 'more' | null {
  const firstSpace = buf.indexOf(0x20);
  const probe = buf.subarray(0, firstSpace >= 0 ? firstSpace : Math.min(buf.length, 8)).toString('latin1');
  if (firstSpace < 0) return METHODS.some((m) => m.startsWith(probe)) && buf.length < 8 ? 'more' : null;
  if (!METHODS.includes(probe)) return null;
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    const lineEnd = buf.indexOf('\r\n');
    if (lineEnd >= 0 && !/^\S+ \S+ HTTP\/1\.[01]$/.test(buf.subarray(0, lineEnd).toString('latin1'))) return null;
    return buf.length > HEADER_LIMIT ? null : 'more';
  }
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^(\S+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0]!);
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c <= 0) return null;
    const k = l.slice(0, c).trim().toLowerCase(); const v = l.slice(c + 1).trim();
    // Two Host headers are a classic way to make the gateway and the server disagree.
    if (k === 'host' && headers.has('host')) return null;
    headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v);
  }
  return { method: m[1]!, target: m[2]!, version: m[3]!, headers, headEnd: end + 4 };
}

/**
 * The request's host: CONNECT's authority-form target, the authority of an absolute-form target,
 * else the Host header. Threat: `CONNECT elsewhere:443` with `Host: allowed` sent to an allowed
 * host that proxies; the target is where the tunnel goes, so it is what is judged.
 */
export function requestHost(h: HttpHead): string | undefined {
  const abs = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(h.target);
  const host = h.method === 'CONNECT' ? h.target : abs ? abs[1]!.replace(/^.*@/, '') : h.headers.get('host');
  return host?.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
}

export const httpSniffer: Sniffer = {
  name: 'http',
  directions: ['client'],
  sniff(buf): SniffResult {
    const head = parseRequestHead(buf);
    if (head === 'more') return MORE;
    if (head === null) return NO;
    const host = requestHost(head);
    const base = { state: 'match' as const, httpHead: head, ...(host ? { host } : {}) };
    const proto = (head.headers.get('sec-websocket-protocol') ?? '').toLowerCase();
    if (/chisel/.test(proto)) return { ...base, protocol: 'chisel', detail: `websocket subprotocol ${proto}` };
    if (head.headers.has('x-stratum')) return { ...base, protocol: 'stratum', detail: 'X-Stratum header' };
    // Body: wait for it (bounded) so its first bytes are judged before any are forwarded.
    const te = head.headers.get('transfer-encoding')?.toLowerCase();
    const cl = Number(head.headers.get('content-length') ?? 0);
    const bodyBytes = buf.length - head.headEnd;
    // `Expect: 100-continue`: the client sends no body until the server answers (curl does so
    // for bodies over 1 MiB and waits a second for it). Waiting here for the body would stall
    // every such upload by the client's timeout; the head is judged now, and the layer inspector
    // holds and judges the body's first bytes when they come, before forwarding them.
    if (bodyBytes === 0 && (te?.includes('chunked') || cl > 0) && head.headers.get('expect')?.toLowerCase() === '100-continue') {
      return { ...base, protocol: 'http', detail: `${head.method} ${head.target.slice(0, 200)} (expects 100-continue)`, awaitsBody: true };
    }
    let body: Buffer | null = null;
    if (te?.includes('chunked')) {
      const raw = buf.subarray(head.headEnd);
      const done = raw.indexOf('0\r\n\r\n') >= 0;
      if (!done && bodyBytes < BODY_LIMIT) return MORE;
      body = dechunk(raw);
    } else if (cl > 0) {
      if (bodyBytes < Math.min(cl, BODY_LIMIT)) return MORE;
      body = buf.subarray(head.headEnd, head.headEnd + Math.min(cl, BODY_LIMIT));
    }
    if (body && body.length > 0) {
      const j = classifyJson(body, true);
      if (j.state === 'match') return { ...base, protocol: j.kind, ...(j.method ? { detail: `${head.method} ${head.target} method ${j.method}` } : {}) };
    }
    return { ...base, protocol: 'http', detail: `${head.method} ${head.target.slice(0, 200)}` };
  },
};

function dechunk(raw: Buffer): Buffer {
  const out: Buffer[] = []; let p = 0;
  while (p < raw.length) {
    const eol = raw.indexOf('\r\n', p);
    if (eol < 0) break;
    const size = parseInt(raw.subarray(p, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    out.push(raw.subarray(eol + 2, Math.min(raw.length, eol + 2 + size)));
    p = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
