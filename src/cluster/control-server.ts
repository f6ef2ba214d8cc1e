// `praetor serve --role control`: a stateless API replica, active-active behind any load
// balancer. It runs no sandbox and no sensor and needs no root: it authenticates the caller
// (401 before anything is forwarded; the tenant for quotas), places creates
// (ClusterControl.place), and proxies every call about a sandbox or episode to the node its id
// names, following the route table in routes.ts. Everything it knows is in PostgreSQL or on the
// nodes, so losing a replica loses nothing: the next call goes to another.
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { existsSync } from 'node:fs';
import { join as join_ } from 'node:path';
import pg from 'pg';
import type WebSocket from 'ws';
import { PraetorError, errorMessage, isPraetorError, notFound } from '../errors.ts';
import { TokenStore, asPraetorError, e2bNotSupported, presentedToken, sendError, VERSION, DEFAULT_BODY_LIMIT, type Principal } from '../server/index.ts';
import { Tenants } from '../config/index.ts';
import { ClusterControl } from './control.ts';
import { e2bRoutes, isE2bPath, isEnvdCall, sendE2bError } from './control-e2b.ts';
import { NodeDirectory } from './node-directory.ts';
import { nodeLink, type NodeLink, type NodeLinkOptions } from './node-link.ts';
import { forward, forwardHeaders, holdFrames, lost, pipeWebSocket, responseHeaders, type Forwarded } from './proxy.ts';
import { ROUTES, type IdAt, type RouteRule } from './routes.ts';
import { ordinalOfId, type NodeRow } from './schema.ts';
import { fanIn, fanOut, splitBatch } from './control-fanout.ts';
import { CA_FILES } from './pki-ca.ts';
import { startJoinServer, type JoinServer } from './pki-join-server.ts';

export interface ControlOptions {
  cluster: string;
  /** where the shared token store (server/tokens.json) and tenants file live. */
  stateDir: string;
  host?: string;
  port?: number;
  bodyLimit?: number;
  lostAfterMs?: number;
  /** how this replica reaches nodes: mutual TLS with its control identity, or --insecure-cluster. */
  link: NodeLinkOptions;
  /**
   * The join endpoint (POST /cluster/v1/join) on a port of its own, served when the link is
   * mutual TLS and the identity directory also holds the CA key (ca-key.pem): this replica then
   * signs joining nodes' certificates.
   */
  join?: { host?: string; port: number };
  /** a node pool's bootstrap join token, registered by the join endpoint (see pki-join-tokens.ts). */
  bootstrap?: { token: string; maxJoins: number; ttlMs: number } | undefined;
  log?: (msg: string) => void;
}

export interface ControlServer { url: string; joinUrl: string | undefined; control: ClusterControl; directory: NodeDirectory; close(): Promise<void> }

const AUTH_HEADERS = ['authorization', 'x-api-key', 'x-key', 'xrl-authorization'];

export async function startControl(o: ControlOptions): Promise<ControlServer> {
  const log = o.log ?? (() => {});
  // The link first: a replica whose control certificate is unusable fails here, before it
  // touches the database or accepts a call.
  const link = nodeLink({ ...o.link, log });
  const ctl = await ClusterControl.open({ url: o.cluster }).catch((e: unknown) => { link.close(); throw e; });
  const dir = new NodeDirectory(ctl, { ...(o.lostAfterMs !== undefined ? { lostAfterMs: o.lostAfterMs } : {}), log });
  let join: JoinServer | undefined;
  let joinPool: pg.Pool | undefined;
  const tokens = new TokenStore(o.stateDir);
  const tenants = Tenants.load(o.stateDir);
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({ bodyLimit, logger: false, forceCloseConnections: true, return503OnClosing: true, routerOptions: { maxParamLength: 512 } });
  try {
    await dir.start();
    await app.register(fastifyWebsocket, { options: { maxPayload: bodyLimit } });
    // Bodies travel to the node as they came: parsed here only to find an id.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

    app.addHook('onRequest', async (req) => {
      const path = req.url.split('?')[0]!;
      if (path === '/healthz') return;
      // envd calls carry the sandbox's access token, which the node that issued it checks.
      if (isEnvdCall(req) || (path === '/health' && req.headers['x-access-token'] === undefined)) return;
      const token = presentedToken(req.headers);
      const p = token ? tokens.verify(token) : undefined;
      if (!p) throw new PraetorError('UNAUTHORIZED', token ? 'invalid token' : 'no token', { hint: 'send Authorization: Bearer TOKEN (or X-API-Key for ROCK routes); create one with `praetor token create --tenant NAME`' });
      (req as FastifyRequest & { principal?: Principal }).principal = p;
    });
    app.setErrorHandler((err, req, reply) => {
      const pe = asPraetorError(err);
      if (pe.code === 'INTERNAL') log(`internal error on ${req.method} ${req.url.split('?')[0]}: ${err instanceof Error ? err.stack : errorMessage(err)}`);
      return isE2bPath(req.url.split('?')[0]!) ? sendE2bError(req, reply, pe) : sendError(req, reply, pe);
    });
    app.setNotFoundHandler((req, reply) => {
      const path = req.url.split('?')[0]!;
      if (isE2bPath(path)) return sendE2bError(req, reply, e2bNotSupported(`${req.method} ${path.slice(0, 200)}`));
      return sendError(req, reply, new PraetorError('NOT_FOUND', `no route ${req.method} ${path.slice(0, 200)} on a control replica`, { hint: 'see /openapi.json' }));
    });
    app.get('/healthz', async (_req, reply) => {
      const ok = dir.error === undefined;
      return reply.status(ok ? 200 : 503).send({ ok, version: VERSION, role: 'control', nodes: { up: dir.live.length, total: dir.nodes.length }, ...(ok ? {} : { error: dir.error }) });
    });

    const h: Handlers = { ctl, dir, link, tenants };
    for (const r of ROUTES) {
      if (r.websocket) app.get(r.path, { websocket: true }, (socket, req) => { void wsRoute(h, r, socket, req); });
      else app.route({ method: r.method, url: r.path, handler: (req, reply) => httpRoute(h, r, req, reply) });
    }
    // The E2B API on this port too: E2B_API_URL and E2B_SANDBOX_URL name the replica.
    e2bRoutes(app, { ctl, dir, link, tenants, nodeFor: (id) => nodeFor(h, id), principalOf });
    const address = await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 7070 });
    const signs = o.join && o.link.mode === 'mtls' && existsSync(join_(o.link.dir, CA_FILES.key));
    if (o.bootstrap && !signs) {
      throw new PraetorError('BAD_ARGUMENT', 'a bootstrap join token was given, and this replica serves no join endpoint (it needs mutual TLS and the CA key, ca-key.pem, in its --cluster-tls directory)', { hint: 'put ca-key.pem beside the control identity, or drop --bootstrap-token-file' });
    }
    if (signs && o.link.mode === 'mtls' && o.join) {
      joinPool = new pg.Pool({ connectionString: o.cluster, max: 2, connectionTimeoutMillis: 5000 });
      joinPool.on('error', () => undefined);
      join = await startJoinServer({ pool: joinPool, caDir: o.link.dir, identityDir: o.link.dir, identity: link.identity, host: o.join.host ?? o.host ?? '127.0.0.1', port: o.join.port, log, ...(o.bootstrap ? { bootstrap: o.bootstrap } : {}) });
    }
    let closing: Promise<void> | undefined;
    return {
      url: address.replace('[::1]', 'localhost'), joinUrl: join?.url, control: ctl, directory: dir,
      close: () => closing ??= shutdown(),
    };
  } catch (e) {
    await shutdown();
    throw e;
  }

  async function shutdown(): Promise<void> {
    dir.stop();
    await join?.close().catch(() => undefined);
    await joinPool?.end().catch(() => undefined);
    await app.close().catch(() => undefined);
    link.close();
    await ctl.close().catch(() => undefined);
  }
}

interface Handlers { ctl: ClusterControl; dir: NodeDirectory; link: NodeLink; tenants: Tenants }

const principalOf = (req: FastifyRequest): Principal => (req as FastifyRequest & { principal?: Principal }).principal!;
const rawBody = (req: FastifyRequest): Buffer | undefined => (Buffer.isBuffer(req.body) ? req.body : undefined);

function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const b = rawBody(req);
  if (!b || b.length === 0) return {};
  try {
    const v: unknown = JSON.parse(b.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {};
  } catch (e) {
    throw new PraetorError('BAD_ARGUMENT', `malformed request: the body is not JSON (${errorMessage(e)})`, { hint: 'send a valid JSON body with Content-Type: application/json' });
  }
}

/** A multipart form field's value, read from the raw body (ROCK's upload names its sandbox so). */
function multipartField(req: FastifyRequest, name: string): string | undefined {
  const b = rawBody(req);
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(String(req.headers['content-type'] ?? ''));
  if (!b || !m) return undefined;
  const boundary = `--${m[1] ?? m[2]}`;
  for (const part of b.toString('latin1').split(boundary)) {
    const head = part.indexOf('\r\n\r\n');
    if (head < 0) continue;
    if (new RegExp(`name="${name}"`).test(part.slice(0, head)) && !/filename=/.test(part.slice(0, head))) return part.slice(head + 4).replace(/\r\n$/, '').trim();
  }
  return undefined;
}

function idOf(req: FastifyRequest, at: IdAt): string | undefined {
  const pick = (v: unknown) => (typeof v === 'string' ? v.trim() : undefined);
  if ('param' in at) return pick((req.params as Record<string, unknown>)[at.param]);
  if ('query' in at) return pick((req.query as Record<string, unknown>)[at.query]);
  if ('body' in at) return pick(jsonBody(req)[at.body]);
  if ('multipart' in at) return multipartField(req, at.multipart);
  return pick(req.headers[at.header]);
}

/** The live node an id names; NOT_FOUND for an id no node could have made, SANDBOX_LOST for a lost node's. */
async function nodeFor(h: Handlers, id: string | undefined): Promise<NodeRow> {
  const ordinal = id === undefined ? undefined : ordinalOfId(id);
  let node = ordinal === undefined ? undefined : await h.dir.byOrdinal(ordinal);
  // The cache is up to a second old: a node that came back meanwhile is up again (its new
  // epoch then answers for what it has), so read once more before answering lost.
  if (node && node.state !== 'up') { await h.dir.refresh(); node = await h.dir.byOrdinal(ordinal!); }
  const what = id?.startsWith('ep-') ? 'episode' : 'sandbox';
  if (!node) throw notFound(what, (id ?? '').slice(0, 80));
  if (node.state !== 'up') throw lost(`${what} ${id}`, `its node ${node.nodeId} is ${node.state}`);
  return node;
}

function anyLive(h: Handlers): NodeRow {
  const live = h.dir.live;
  if (live.length === 0) throw new PraetorError('CLUSTER_FULL', 'no node is up', { hint: 'start nodes (`praetor serve --role node`), or check `praetor nodes`' });
  return live[Math.floor(Math.random() * live.length)]!;
}

async function send(reply: FastifyReply, f: Forwarded): Promise<FastifyReply> {
  return reply.code(f.status).headers(responseHeaders(f.headers)).send(f.res);
}

async function httpRoute(h: Handlers, r: RouteRule, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const base = { method: req.method, path: req.url, body: rawBody(req) };
  if (r.kind === 'place') return place(h, r, req, reply);
  if (r.kind === 'fanout') return reply.send(await fanOut(h.link, h.dir.live, { ...base, headers: forwardHeaders(req.headers) }, r.key));
  if (r.kind === 'batch') return reply.send(await splitBatch(h.link, (id) => nodeFor(h, id), jsonBody(req), { ...base, headers: forwardHeaders(req.headers) }));
  let node: NodeRow;
  let id: string | undefined;
  if (r.kind === 'id') {
    id = idOf(req, r.id);
    node = id === undefined && r.optional ? anyLive(h)
      : r.unknownToAny ? await nodeFor(h, id).catch((e: unknown) => { if (isPraetorError(e) && (e.code === 'NOT_FOUND' || e.code === 'SANDBOX_LOST')) return anyLive(h); throw e; })
      : await nodeFor(h, id);
  } else node = anyLive(h);
  const what = `${id?.startsWith('ep-') ? 'episode' : 'sandbox'} ${id ?? ''}`.trim();
  let f: Forwarded;
  try {
    f = await forward(h.link, node, { ...base, headers: forwardHeaders(req.headers), what });
  } catch (e) {
    // A node that restarted elsewhere (a new address in a new epoch) is not the one that died:
    // nothing reached the dead process, so the call goes to the live one once.
    await h.dir.refresh();
    const now = h.dir.nodes.find((n) => n.nodeId === node.nodeId);
    if (!now || now.state !== 'up' || now.address === node.address) throw e;
    f = await forward(h.link, now, { ...base, headers: forwardHeaders(req.headers), what });
  }
  // The node no longer knows it: if the catalog says lost (the node came back in a new
  // epoch), say so rather than a bare 404.
  if (f.status === 404 && id?.startsWith('sb-')) {
    const st = await h.ctl.sandboxState(id).catch(() => undefined);
    if (st?.state === 'lost') { f.res.resume(); throw lost(`sandbox ${id}`, `its node ${st.nodeId} was lost`); }
  }
  return send(reply, f);
}

/** Reserve, forward with the reserved id, confirm or release; a node that does not answer is skipped. */
async function place(h: Handlers, r: Extract<RouteRule, { kind: 'place' }>, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = principalOf(req);
  const want = r.want(jsonBody(req));
  const exclude: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const at = await h.ctl.place(p.tenant, h.tenants.get(p.tenant), want, { exclude });
    let f: Forwarded;
    try {
      f = await forward(h.link, at, { method: req.method, path: req.url, body: rawBody(req), headers: forwardHeaders(req.headers, { 'x-praetor-reservation': at.sandboxId }), what: `node ${at.nodeId}` });
    } catch (e) {
      void h.ctl.end(at.sandboxId, `node ${at.nodeId} did not answer the create`).catch(() => undefined);
      exclude.push(at.nodeId);
      if (attempt < 2) continue;
      throw e;
    }
    if (f.status >= 400) void h.ctl.end(at.sandboxId, `the node refused the create (${f.status})`).catch(() => undefined);
    return send(reply, f);
  }
}

async function wsRoute(h: Handlers, r: RouteRule, socket: WebSocket, req: FastifyRequest): Promise<void> {
  const headers: Record<string, string> = {};
  for (const k of AUTH_HEADERS) { const v = req.headers[k]; if (typeof v === 'string') headers[k] = v; }
  if (r.kind === 'fanin') { fanIn(socket, h.link, h.dir.live, req.url, headers); return; }
  const early = holdFrames(socket);
  try {
    const id = r.kind === 'id' ? idOf(req, r.id) : undefined;
    const node = await nodeFor(h, id);
    early.release();
    pipeWebSocket(socket, h.link, node, req.url, headers, `sandbox ${id}`, early.frames);
  } catch (e) {
    early.release();
    socket.send(JSON.stringify({ type: 'error', error: asPraetorError(e).toJSON() }));
    socket.close(1008, 'error');
  }
}
