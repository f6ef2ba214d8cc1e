// Forwarding one HTTP call to a node, and one WebSocket both ways. The caller's own
// Authorization (or ROCK's X-API-Key) travels unchanged: the node authenticates it again, so a
// control replica holds no power of its own over a node. Hop-by-hop headers stay behind, and a
// client's X-Praetor-Reservation is dropped (threat: a caller naming an id reserved for someone
// else; the node checks that too). A node that cannot be reached, or dies mid-call, is
// SANDBOX_LOST for the caller: its sandboxes went with it.
import http from 'node:http';
import https from 'node:https';
import { PraetorError, errorMessage } from '../errors.ts';
import WebSocket from 'ws';
import type { NodeLink, NodeTarget } from './node-link.ts';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'content-length',
  'x-praetor-reservation', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept']);

export function forwardHeaders(h: http.IncomingHttpHeaders, extra: Record<string, string> = {}): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return { ...out, ...extra };
}

export function lost(what: string, why: string): PraetorError {
  return new PraetorError('SANDBOX_LOST', `${what} is lost: ${why}`, { hint: 'its node is gone; create a new sandbox (new ones land on live nodes)' });
}

export interface Forwarded { status: number; headers: http.IncomingHttpHeaders; res: http.IncomingMessage }

/**
 * Sends one request to a node; rejects with SANDBOX_LOST when the node cannot be reached, and
 * with the typed TLS error (CERT_WRONG_ROLE, CERT_INVALID, CERT_EXPIRED) when the link refused
 * it: a node that is there but is not who it should be has not lost anything, it is misplaced.
 */
export function forward(link: NodeLink, node: NodeTarget, o: { method: string; path: string; headers: Record<string, string | string[]>; body: Buffer | undefined; what: string }): Promise<Forwarded> {
  return new Promise((resolve, reject) => {
    const { base, agent } = link.target(node);
    const send = base.protocol === 'https:' ? https.request : http.request;
    const req = send({
      protocol: base.protocol, hostname: base.hostname, port: base.port, method: o.method, path: o.path, agent,
      headers: { ...o.headers, ...(o.body ? { 'content-length': String(o.body.length) } : {}) },
    }, (res) => resolve({ status: res.statusCode ?? 502, headers: res.headers, res }));
    req.on('error', (e) => reject(link.explain(e, node) ?? lost(o.what, `its node at ${base.host} did not answer (${errorMessage(e)})`)));
    req.end(o.body);
  });
}

/** Reads a forwarded answer whole (fan-out and batch merge JSON). */
export async function readAll(f: Forwarded): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of f.res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Copies a node's response headers to the caller, less the hop-by-hop ones. */
export function responseHeaders(h: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}

/** A closing code a server may send (1005, 1006 and 1015 are reserved for the stack itself). */
const sendable = (code: number) => (code === 1005 ? 1000 : code === 1006 || code === 1015 || code < 1000 || code > 4999 ? 1011 : code);

/**
 * Joins a caller's WebSocket to one on the node, frames both ways in order. Frames the caller
 * sends before the node's socket opens are held (the exec body comes first, at once). When the
 * node's side breaks without a close frame, the caller gets an error frame (SANDBOX_LOST) first.
 */
export function pipeWebSocket(client: WebSocket, link: NodeLink, node: NodeTarget, path: string, headers: Record<string, string>, what: string, early: Array<{ data: WebSocket.RawData; binary: boolean }> = []): void {
  const { base } = link.target(node);
  const up = new WebSocket(new URL(path, wsUrl(base)).href, link.wsOptions(node, headers));
  const held = early;
  let open = false;
  let failed = false;
  const fail = (why: string | PraetorError) => {
    if (failed || client.readyState !== WebSocket.OPEN) return;
    failed = true;
    client.send(JSON.stringify({ type: 'error', error: (typeof why === 'string' ? lost(what, why) : why).toJSON() }));
    client.close(1011, typeof why === 'string' ? 'sandbox lost' : 'node link refused');
  };
  client.on('message', (data, binary) => {
    if (open) up.send(data, { binary });
    else held.push({ data, binary });
  });
  client.on('close', () => { if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) up.terminate(); });
  client.on('error', () => up.terminate());
  up.on('open', () => {
    open = true;
    for (const m of held.splice(0)) up.send(m.data, { binary: m.binary });
  });
  up.on('message', (data, binary) => { if (client.readyState === WebSocket.OPEN) client.send(data, { binary }); });
  up.on('unexpected-response', (_req, res) => {
    // The node refused the upgrade (401, 404 …): its JSON error becomes one error frame.
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      let error: unknown = { code: 'INTERNAL', message: `the node answered ${res.statusCode}` };
      try { error = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: unknown }).error ?? error; } catch { /* not JSON */ }
      if (client.readyState === WebSocket.OPEN) { client.send(JSON.stringify({ type: 'error', error })); client.close(1008, 'error'); }
    });
  });
  up.on('error', (e) => fail(link.explain(e, node) ?? `its node at ${base.host} did not answer (${errorMessage(e)})`));
  up.on('close', (code, reason) => {
    if (code === 1006) { fail(`the link to its node at ${base.host} broke`); return; }
    if (client.readyState === WebSocket.OPEN) client.close(sendable(code), reason.toString().slice(0, 120));
  });
}

/** ws:// or wss:// for a node's base URL. */
export function wsUrl(base: URL): URL {
  const u = new URL(base.href);
  u.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return u;
}

/** Holds what a caller sends while the control replica is still finding the node (handlers attach late). */
export function holdFrames(client: WebSocket): { frames: Array<{ data: WebSocket.RawData; binary: boolean }>; release(): void } {
  const frames: Array<{ data: WebSocket.RawData; binary: boolean }> = [];
  const onMessage = (data: WebSocket.RawData, binary: boolean) => { frames.push({ data, binary }); };
  client.on('message', onMessage);
  return { frames, release: () => { client.off('message', onMessage); } };
}
