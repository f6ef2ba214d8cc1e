// The E2B API through a control replica, on the replica's own port: an E2B client sets
// E2B_API_URL and E2B_SANDBOX_URL to the replica and needs no node's address. A create is placed
// like any other (best-of-K over the nodes that serve E2B, quota in the same transaction) and
// forwarded with the reserved id; every later call is forwarded to the node the sandbox id
// names, on that node's E2B port, over the same mutual TLS node link as /v1 (the node's E2B
// port admits control certificates only):
//   - the control plane (/sandboxes…) by the :id in its path, authenticated here (X-API-KEY is a
//     Praetor token) and again on the node;
//   - envd (Connect RPCs, /files, /health) by the E2b-Sandbox-Id header. The sandbox's access
//     token is checked by the node that issued it, not here: the replica forwards it unread, so
//     it holds no power of its own over a sandbox. Streams (a command's output) are piped as the
//     node writes them.
// Listings merge every E2B node's answer; paging (v2) merges each node's first page after the
// cursor, which holds the merged first page (the cursor is (startedAt, id), valid on any node).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PraetorError, notFound } from '../errors.ts';
import { e2bErrorBody, e2bNotSupported, e2bStatusOf, type Principal } from '../server/index.ts';
import type { Tenants } from '../config/index.ts';
import type { ClusterControl } from './control.ts';
import type { NodeDirectory } from './node-directory.ts';
import type { NodeLink, NodeTarget } from './node-link.ts';
import { forward, forwardHeaders, readAll, responseHeaders, type Forwarded } from './proxy.ts';
import type { NodeRow } from './schema.ts';

const RPC_PREFIXES = ['/process.Process/', '/filesystem.Filesystem/'];
const E2B_PREFIXES = ['/sandboxes', '/v2/', '/snapshots', '/templates', '/volumes', '/files', '/health', ...RPC_PREFIXES];
/** What an E2B create reserves: the node's sandbox defaults (E2B's create names no resources). */
const E2B_WANT = { cpus: 1, memoryBytes: 2 ** 30 };
const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** Whether a path is E2B's, so its failures take E2B's shape. */
export function isE2bPath(path: string): boolean {
  return E2B_PREFIXES.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`));
}

/** An envd call (as the node's E2B server tells them apart): authenticated by the node, with the sandbox's access token. */
export function isEnvdCall(req: FastifyRequest): boolean {
  const path = req.url.split('?')[0]!;
  if (!isE2bPath(path)) return false;
  return req.headers['e2b-sandbox-id'] !== undefined || req.headers['x-access-token'] !== undefined || RPC_PREFIXES.some((p) => path.startsWith(p)) || path === '/files';
}

/** A failure on an E2B path, shaped as the node's E2B server shapes it. */
export function sendE2bError(req: FastifyRequest, reply: FastifyReply, pe: PraetorError): FastifyReply {
  if (isEnvdCall(req) && (pe.code === 'NOT_FOUND' || pe.code === 'SANDBOX_LOST')) {
    // As E2B's proxy: 502 for a sandbox that is not running (the SDK's "not running", Connect's Unavailable).
    const id = first(req.headers['e2b-sandbox-id']) ?? null;
    return reply.status(502).send({ sandboxId: id, code: 502, message: pe.hint ? `${pe.message} (${pe.hint})` : pe.message });
  }
  const status = e2bStatusOf(pe);
  return reply.status(status).send(e2bErrorBody(pe, status));
}

export interface E2bRouteDeps {
  ctl: ClusterControl;
  dir: NodeDirectory;
  link: NodeLink;
  tenants: Tenants;
  /** the live node an id names (NOT_FOUND, SANDBOX_LOST otherwise). */
  nodeFor: (id: string | undefined) => Promise<NodeRow>;
  principalOf: (req: FastifyRequest) => Principal;
}

const rawBody = (req: FastifyRequest): Buffer | undefined => (Buffer.isBuffer(req.body) ? req.body : undefined);

/** The node's E2B port as a link target (same node id, so the same certificate check). */
function e2bTarget(n: { nodeId: string; e2bAddress: string | undefined }, id: string): NodeTarget {
  if (!n.e2bAddress) throw notFound('sandbox', id.slice(0, 80));
  return { nodeId: n.nodeId, address: n.e2bAddress };
}

async function send(reply: FastifyReply, f: Forwarded): Promise<FastifyReply> {
  return reply.code(f.status).headers(responseHeaders(f.headers)).send(f.res);
}

export function e2bRoutes(app: FastifyInstance, d: E2bRouteDeps): void {
  const live = () => d.dir.live.filter((n) => n.e2bAddress !== undefined);
  const anyNode = () => {
    const l = live();
    if (l.length === 0) throw new PraetorError('CLUSTER_FULL', 'no node serving the E2B API is up', { hint: 'start nodes with --e2b-port PORT, or check `praetor nodes`' });
    return l[Math.floor(Math.random() * l.length)]!;
  };
  const to = async (req: FastifyRequest, reply: FastifyReply, target: NodeTarget, what: string, extra: Record<string, string> = {}) =>
    send(reply, await forward(d.link, target, { method: req.method, path: req.url, headers: forwardHeaders(req.headers, extra), body: rawBody(req), what }));
  const byId = async (req: FastifyRequest, reply: FastifyReply, id: string) => to(req, reply, e2bTarget(await d.nodeFor(id), id), `sandbox ${id}`);

  // Create: reserve on a node that serves E2B, forward with the reserved id, release on failure.
  const create = async (req: FastifyRequest, reply: FastifyReply) => {
    const p = d.principalOf(req);
    const exclude: string[] = [];
    for (let attempt = 0; ; attempt++) {
      const at = await d.ctl.place(p.tenant, d.tenants.get(p.tenant), E2B_WANT, { exclude, e2b: true });
      let f: Forwarded;
      try {
        f = await forward(d.link, e2bTarget(at, at.sandboxId), { method: req.method, path: req.url, body: rawBody(req), headers: forwardHeaders(req.headers, { 'x-praetor-reservation': at.sandboxId }), what: `node ${at.nodeId}` });
      } catch (e) {
        void d.ctl.end(at.sandboxId, `node ${at.nodeId} did not answer the create`).catch(() => undefined);
        exclude.push(at.nodeId);
        if (attempt < 2) continue;
        throw e;
      }
      if (f.status >= 400) void d.ctl.end(at.sandboxId, `the node refused the create (${f.status})`).catch(() => undefined);
      return send(reply, f);
    }
  };
  app.post('/sandboxes', create);
  app.post('/v2/sandboxes', create);

  // Listings: every E2B node's, merged (a node that does not answer drops out, named in a header).
  const gather = async (req: FastifyRequest) => {
    const partial: string[] = [];
    const answers = await Promise.all(live().map(async (n) => {
      try {
        const f = await forward(d.link, e2bTarget(n, ''), { method: 'GET', path: req.url, headers: forwardHeaders(req.headers), body: undefined, what: `node ${n.nodeId}` });
        const body = await readAll(f);
        if (f.status !== 200) {
          // A refusal every node would give (a bad query, a bad key) is the caller's answer.
          if (f.status < 500) throw Object.assign(new PraetorError('BAD_ARGUMENT', 'refused'), { forwarded: { status: f.status, body } });
          partial.push(n.nodeId);
          return undefined;
        }
        return { items: JSON.parse(body.toString()) as Listed[], next: first(f.headers['x-next-token']), total: Number(first(f.headers['x-total-running']) ?? 0) };
      } catch (e) {
        if ((e as { forwarded?: unknown }).forwarded) throw e;
        partial.push(n.nodeId);
        return undefined;
      }
    }));
    return { answers: answers.filter((a) => a !== undefined), partial: partial.sort() };
  };
  const refused = (reply: FastifyReply, e: unknown) => {
    const f = (e as { forwarded?: { status: number; body: Buffer } }).forwarded;
    if (!f) throw e;
    return reply.status(f.status).header('content-type', 'application/json; charset=utf-8').send(f.body);
  };
  app.get('/sandboxes', async (req, reply) => {
    let g;
    try { g = await gather(req); } catch (e) { return refused(reply, e); }
    if (g.partial.length) void reply.header('x-praetor-partial', g.partial.join(','));
    return reply.send(g.answers.flatMap((a) => a.items));
  });
  app.get('/v2/sandboxes', async (req, reply) => {
    let g;
    try { g = await gather(req); } catch (e) { return refused(reply, e); }
    const q = req.query as { order?: string; limit?: string };
    const dir = q.order === 'asc' ? 1 : -1;
    const limit = Math.min(100, Math.max(1, Number(q.limit ?? 100) || 100));
    const all = g.answers.flatMap((a) => a.items).sort((a, b) => dir * (Date.parse(a.startedAt) - Date.parse(b.startedAt)) || dir * a.sandboxID.localeCompare(b.sandboxID));
    const page = all.slice(0, limit);
    const more = all.length > limit || g.answers.some((a) => a.next !== undefined);
    if (more && page.length) void reply.header('x-next-token', Buffer.from(JSON.stringify([Date.parse(page.at(-1)!.startedAt), page.at(-1)!.sandboxID])).toString('base64url'));
    if (g.partial.length) void reply.header('x-praetor-partial', g.partial.join(','));
    return reply.header('x-total-running', String(g.answers.reduce((s, a) => s + a.total, 0))).send(page);
  });
  // Not sandbox-specific: any E2B node answers (what Praetor does not build, in E2B's words).
  app.get('/sandboxes/metrics', async (req, reply) => to(req, reply, e2bTarget(anyNode(), ''), 'the E2B API'));
  app.get('/snapshots', async (req, reply) => to(req, reply, e2bTarget(anyNode(), ''), 'the E2B API'));

  // About one sandbox: the node its id names.
  const idParam = (req: FastifyRequest) => String((req.params as { id?: string }).id ?? '');
  for (const url of ['/sandboxes/:id', '/sandboxes/:id/*', '/v2/sandboxes/:id/*']) {
    app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url, handler: (req, reply) => byId(req, reply, idParam(req)) });
  }

  // envd: the sandbox E2b-Sandbox-Id names; its access token is for the node to check.
  const envd = async (req: FastifyRequest, reply: FastifyReply) => {
    // Older SDKs send only the access token on /files and /health: it names its sandbox.
    const id = first(req.headers['e2b-sandbox-id']) ?? /^e2bat_(sb-[a-z0-9-]{1,80})\./.exec(first(req.headers['x-access-token']) ?? '')?.[1];
    if (id === undefined) {
      if (req.url.split('?')[0] === '/health' && req.headers['x-access-token'] === undefined) return reply.send({ ok: d.dir.error === undefined });
      throw new PraetorError('NOT_FOUND', 'this envd call names no sandbox', { hint: 'send the sandbox id in E2b-Sandbox-Id (the e2b SDK 2.x does): a control replica routes envd calls by it' });
    }
    return byId(req, reply, id.trim());
  };
  app.get('/health', envd);
  app.get('/files', envd);
  app.post('/files', envd);
  for (const p of RPC_PREFIXES) app.post(`${p}*`, envd);

  // Anything else on an E2B path is not built, as a node would say (never a bare 404, which the SDK may read as "gone").
  for (const url of ['/v2/*', '/templates', '/templates/*', '/volumes', '/volumes/*']) {
    app.route({ method: ['GET', 'POST', 'PUT', 'DELETE'], url, handler: async (req) => { throw e2bNotSupported(`${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`); } });
  }
}

interface Listed { sandboxID: string; startedAt: string }

