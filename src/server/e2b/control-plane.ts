// E2B's control plane (the subset of spec/openapi.yml the SDK's Sandbox class calls): create
// (POST /sandboxes and /v2/sandboxes), list (GET /sandboxes, /v2/sandboxes with paging), get,
// kill, timeout, connect, refreshes. A sandbox created here is an ordinary Praetor sandbox made
// by ServerCore.createSandbox: the tenant's quotas, policy, sensors, rules, containment and
// ledger apply exactly as on the native API. What E2B offers and Praetor does not build (pause,
// snapshots, fork, volumes, MCP, IAM, egress proxies) answers 501 with E2B's error shape.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PraetorError, isPraetorError } from '../../errors.ts';
import type { Principal } from '../auth.ts';
import type { ServerCore } from '../core.ts';
import { zodError } from '../http.ts';
import { E2B_HOME } from './envd-user.ts';
import { notSupported } from './errors.ts';
import { narrowNetwork } from './network.ts';
import { DEFAULT_TIMEOUT_S, type E2bRegistry, type E2bSandbox } from './registry.ts';

/** The envd version Praetor speaks: file metadata (0.6.2) and newer watch options are refused by the SDK itself. */
export const ENVD_VERSION = '0.5.7';

const Network = z.object({
  allowOut: z.array(z.string().max(260)).max(256).optional().describe('destinations (CIDR, address, domain) E2B would allow'),
  denyOut: z.array(z.string().max(64)).max(256).optional().describe('CIDRs or addresses E2B would deny'),
  allowPublicTraffic: z.boolean().optional().describe('ingress to sandbox URLs; Praetor serves no ingress, so it has nothing to open'),
  egressProxy: z.unknown().optional(), rules: z.unknown().optional(), maskRequestHost: z.unknown().optional(), httpsPorts: z.unknown().optional(),
}).strict();

// Every field current SDKs send (2.8 to 2.51) and the OpenAPI's NewSandbox; anything else is an
// error naming it (fail closed: an unknown egress knob must not be silently dropped).
const NewSandbox = z.object({
  templateID: z.string().min(1).max(200).describe('template: a Praetor image, or a name mapped by --e2b-template'),
  timeout: z.number().int().min(0).optional().describe('lifetime in seconds from now'),
  metadata: z.record(z.string().max(256), z.string().max(4096)).optional().describe('free-form metadata'),
  envVars: z.record(z.string().max(256), z.string().max(1 << 16)).optional().describe('environment for every command'),
  allow_internet_access: z.boolean().optional().describe('false: no egress (narrows the tenant\'s policy; true never widens it)'),
  network: Network.optional(),
  secure: z.boolean().optional().describe('envd calls always need the access token in Praetor'),
  autoPause: z.boolean().optional(), autoPauseMemory: z.boolean().optional(), autoResume: z.unknown().optional(),
  mcp: z.unknown().optional(), iam: z.unknown().optional(), volumeMounts: z.unknown().optional(),
}).strict();
const Timeout = z.object({ timeout: z.number().int().min(0).describe('seconds from now') }).strict();
const ConnectBody = z.object({ timeout: z.number().int().min(0).optional(), memory: z.boolean().optional() }).strict();
const Refresh = z.object({ duration: z.number().int().min(0).max(3600).optional() }).strict();
const ListQuery = z.object({
  metadata: z.string().max(8192).optional(), state: z.string().max(64).optional(), order: z.enum(['asc', 'desc']).optional(),
  startedAfter: z.string().max(64).optional(), template: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(), nextToken: z.string().max(512).optional(),
}).strict();

function parse<S extends z.ZodType>(s: S, data: unknown, where: string): z.infer<S> {
  const r = s.safeParse(data ?? (where === 'query' ? {} : undefined));
  if (r.success) return r.data;
  throw zodError(r.error, where, data);
}

export interface ControlPlaneOptions {
  core: ServerCore;
  registry: E2bRegistry;
  principalOf: (req: FastifyRequest) => Principal;
  /** template name → Praetor image; `base` (E2B's default template) maps to `host` unless set. */
  templates: Record<string, string>;
}

const iso = (ms: number) => new Date(ms).toISOString();
const mib = (b: number) => Math.round(b / 2 ** 20);

function stateOf(r: E2bSandbox): 'running' | 'paused' { return r.entry.sb.state === 'paused' ? 'paused' : 'running'; }

function listed(r: E2bSandbox) {
  const s = r.entry.sb.spec;
  return {
    templateID: r.templateId, sandboxID: r.id, clientID: 'praetor', startedAt: iso(r.startedAt), endAt: iso(r.endAt),
    cpuCount: Math.max(1, Math.ceil(s.cpus)), memoryMB: mib(s.memoryBytes), diskSizeMB: mib(s.diskBytes),
    metadata: r.metadata, state: stateOf(r), envdVersion: ENVD_VERSION, volumeMounts: [],
  };
}

function created(r: E2bSandbox, accessToken: string) {
  return { templateID: r.templateId, sandboxID: r.id, clientID: 'praetor', envdVersion: ENVD_VERSION, envdAccessToken: accessToken, trafficAccessToken: null, domain: null };
}

/** Cursor over (startedAt, id): stable under creates and deletes between pages. */
const cursor = { enc: (r: E2bSandbox) => Buffer.from(JSON.stringify([r.startedAt, r.id])).toString('base64url'),
  dec: (t: string): [number, string] => {
    try { const v = JSON.parse(Buffer.from(t, 'base64url').toString()); if (typeof v[0] === 'number' && typeof v[1] === 'string') return v; } catch { /* below */ }
    throw new PraetorError('BAD_ARGUMENT', 'nextToken is not a token this server issued', { hint: 'pass the X-Next-Token header of the previous page unchanged' });
  } };

export function controlPlaneRoutes(app: FastifyInstance, o: ControlPlaneOptions): void {
  const { core, registry } = o;
  const mine = (req: FastifyRequest): E2bSandbox => {
    const id = String((req.params as { id?: string }).id ?? '');
    const r = registry.get(o.principalOf(req), id);
    if (!r) throw new PraetorError('NOT_FOUND', `sandbox ${JSON.stringify(id.slice(0, 80))} not found`, { hint: 'list yours with Sandbox.list(); killed and timed-out sandboxes are gone' });
    return r;
  };
  // Accessing a sandbox counts as use for the tenant's idle reaper, as on the native API.
  const touch = (req: FastifyRequest, r: E2bSandbox) => { core.sandbox(o.principalOf(req), r.id); };

  const create = async (req: FastifyRequest, reply: FastifyReply) => {
    const p = o.principalOf(req);
    const b = parse(NewSandbox, req.body, 'body');
    if (b.autoPause || b.autoResume) throw notSupported('autoPause / autoResume (pausing sandboxes)');
    if (b.mcp !== undefined) throw notSupported('the MCP gateway option (mcp)');
    if (b.iam !== undefined) throw notSupported('workload identity tokens (iam)');
    if (b.volumeMounts !== undefined) throw notSupported('volume mounts');
    const net = b.network;
    if (net && (net.egressProxy !== undefined || net.rules !== undefined || net.maskRequestHost !== undefined || net.httpsPorts !== undefined)) {
      throw notSupported('network.egressProxy / rules / maskRequestHost / httpsPorts', 'Praetor\'s egress gateway enforces the tenant\'s policy; use allowOut/denyOut to narrow it');
    }
    const image = o.templates[b.templateID] ?? b.templateID;
    // The ceiling is what this sandbox would get without E2B options: the tenant's policy, else the server's.
    const tenantPolicy = core.tenants.get(p.tenant).policy;
    const ceiling = tenantPolicy?.network ?? core.guard.policy?.network;
    const narrowed = narrowNetwork(ceiling, { allowInternetAccess: b.allow_internet_access, allowOut: net?.allowOut, denyOut: net?.denyOut });
    const labels: Record<string, string> = { 'e2b.template': b.templateID.slice(0, 200) };
    let entry;
    try {
      entry = await core.createSandbox(p, { image, cwd: E2B_HOME, env: b.envVars ?? {}, labels }, {
        phase: 'agent', ...(narrowed ? { policy: { ...(tenantPolicy ?? core.guard.policy ?? {}), network: narrowed } } : {}),
      });
    } catch (e) {
      if (isPraetorError(e) && e.code === 'UNKNOWN_IMAGE') {
        throw new PraetorError('UNKNOWN_IMAGE', `no template ${JSON.stringify(b.templateID)} on this server (image ${JSON.stringify(image)})`, { hint: `import an image as ${JSON.stringify(image)} with \`praetor image import PATH --name ${image}\`, or map the template with \`praetor serve --e2b-template ${b.templateID}=IMAGE\`` });
      }
      throw e;
    }
    const { record, accessToken } = registry.add({
      entry, principal: p, templateId: b.templateID, image, metadata: b.metadata ?? {},
      allowInternetAccess: b.allow_internet_access ?? null,
      network: net ? { allowOut: net.allowOut, denyOut: net.denyOut } : undefined,
    }, b.timeout ?? DEFAULT_TIMEOUT_S);
    return reply.status(201).send(created(record, accessToken));
  };
  app.post('/sandboxes', create);
  app.post('/v2/sandboxes', create);

  const list = (req: FastifyRequest, paged: boolean) => {
    const q = parse(ListQuery, req.query, 'query');
    let rs = registry.list(o.principalOf(req));
    if (q.metadata) {
      const want = [...new URLSearchParams(q.metadata)].map(([k, v]) => [decodeURIComponent(k), decodeURIComponent(v)] as const);
      rs = rs.filter((r) => want.every(([k, v]) => r.metadata[k] === v));
    }
    if (q.state) { const states = q.state.split(','); rs = rs.filter((r) => states.includes(stateOf(r))); }
    if (q.template) rs = rs.filter((r) => r.templateId === q.template);
    if (q.startedAfter) { const t = Date.parse(q.startedAfter); if (Number.isNaN(t)) throw new PraetorError('BAD_ARGUMENT', 'startedAfter is not a date-time', { hint: 'send an ISO 8601 time' }); rs = rs.filter((r) => r.startedAt >= t); }
    const dir = q.order === 'asc' ? 1 : -1;
    rs.sort((a, b) => dir * (a.startedAt - b.startedAt) || dir * a.id.localeCompare(b.id));
    if (!paged) return { items: rs.map(listed), next: undefined, total: rs.length };
    if (q.nextToken) {
      const [t, id] = cursor.dec(q.nextToken);
      rs = rs.filter((r) => dir * (r.startedAt - t) > 0 || (r.startedAt === t && dir * r.id.localeCompare(id) > 0));
    }
    const limit = q.limit ?? 100;
    const page = rs.slice(0, limit);
    return { items: page.map(listed), next: rs.length > limit ? cursor.enc(page.at(-1)!) : undefined, total: rs.length };
  };
  app.get('/sandboxes', async (req) => list(req, false).items);
  app.get('/v2/sandboxes', async (req, reply) => {
    const l = list(req, true);
    if (l.next) void reply.header('x-next-token', l.next);
    return reply.header('x-total-running', String(registry.list(o.principalOf(req)).length)).send(l.items);
  });

  app.get('/sandboxes/:id', async (req) => {
    const r = mine(req);
    touch(req, r);
    return {
      ...listed(r), envdAccessToken: r.accessToken, allowInternetAccess: r.allowInternetAccess, domain: null,
      ...(r.network ? { network: { ...(r.network.allowOut ? { allowOut: r.network.allowOut } : {}), ...(r.network.denyOut ? { denyOut: r.network.denyOut } : {}) } } : {}),
      lifecycle: { onTimeout: 'kill', autoResume: false },
    };
  });
  app.delete('/sandboxes/:id', async (req, reply) => {
    const r = mine(req);
    await core.destroy(o.principalOf(req), r.id, 'killed through the E2B API');
    return reply.status(204).send();
  });
  app.post('/sandboxes/:id/timeout', async (req, reply) => {
    const r = mine(req);
    registry.setTimeout(r, parse(Timeout, req.body, 'body').timeout);
    touch(req, r);
    return reply.status(204).send();
  });
  app.post('/sandboxes/:id/refreshes', async (req, reply) => {
    const r = mine(req);
    const d = parse(Refresh, req.body ?? {}, 'body').duration ?? 60;
    if (Date.now() + d * 1000 > r.endAt) registry.setTimeout(r, d);
    touch(req, r);
    return reply.status(204).send();
  });
  // Connect returns the sandbox with its access token; like E2B it only ever extends the TTL.
  const connect = async (req: FastifyRequest) => {
    const r = mine(req);
    const b = parse(ConnectBody, req.body ?? {}, 'body');
    if (r.entry.sb.state === 'paused') throw notSupported('resuming a paused sandbox');
    if (b.timeout !== undefined && Date.now() + b.timeout * 1000 > r.endAt) registry.setTimeout(r, b.timeout);
    touch(req, r);
    return created(r, r.accessToken);
  };
  app.post('/sandboxes/:id/connect', connect);
  app.post('/v2/sandboxes/:id/connect', connect);

  app.get('/sandboxes/:id/metrics', async (req) => {
    const r = mine(req);
    const u = r.entry.sb.usage();
    const s = r.entry.sb.spec;
    const upMs = Math.max(1, Date.now() - r.startedAt);
    return [{ timestamp: iso(Date.now()), timestampUnix: Math.floor(Date.now() / 1000), cpuCount: Math.max(1, Math.ceil(s.cpus)),
      cpuUsedPct: Math.round((u.cpuMs / upMs / s.cpus) * 10000) / 100, memUsed: u.memBytes, memTotal: s.memoryBytes, memCache: 0, diskUsed: 0, diskTotal: s.diskBytes }];
  });

  // Named so the SDK's callers get a sentence about the feature, not just a route.
  for (const [method, url, what] of [
    ['POST', '/sandboxes/:id/pause', 'pausing a sandbox'], ['POST', '/sandboxes/:id/resume', 'resuming a sandbox'],
    ['POST', '/sandboxes/:id/snapshots', 'snapshots'], ['GET', '/snapshots', 'snapshots'], ['POST', '/sandboxes/:id/fork', 'forking a sandbox'],
    ['PUT', '/sandboxes/:id/network', 'changing the network of a running sandbox (Sandbox.updateNetwork)'],
    ['GET', '/sandboxes/:id/logs', 'sandbox logs (read the ledger: praetor trace)'], ['GET', '/v2/sandboxes/:id/logs', 'sandbox logs (read the ledger: praetor trace)'],
    ['GET', '/sandboxes/metrics', 'metrics for many sandboxes at once'],
  ] as const) {
    app.route({ method, url, handler: async (req) => { if (url.includes(':id')) mine(req); throw notSupported(what); } });
  }
}
