// The HTTP + WebSocket server. One Fastify instance; authentication, rate limiting and error
// shaping are hooks here, each resource's routes live in routes/. Errors always leave as a
// typed 4xx/5xx with a stable code: a malformed or hostile request never crashes the server
// and never gets a stack trace back (threat: input-driven crashes taking every tenant down).
import fastifyMultipart from '@fastify/multipart';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Server as TlsServer, TlsOptions } from 'node:tls';
import { PraetorError, isPraetorError, errorMessage } from '../errors.ts';
import { EpisodeService } from '../episodes/index.ts';
import type { Principal } from './auth.ts';
import { DEFAULT_BODY_LIMIT, ServerCore, type CoreOptions } from './core.ts';
import { RouteRegistry, type Ctx } from './http.ts';
import { openApiDocument } from './openapi.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { episodeRoutes } from './routes/episodes.ts';
import { eventRoutes } from './routes/events-ws.ts';
import { fileRoutes } from './routes/files.ts';
import { gemRoutes } from './routes/gem.ts';
import { mcpRoutes } from './routes/mcp.ts';
import { Metrics, metricsRoutes } from './routes/metrics.ts';
import { modelGatewayRoutes } from './routes/model-gateway.ts';
import { rockRoutes } from './routes/rock.ts';
import { sandboxRoutes } from './routes/sandboxes.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { execWsRoutes } from './routes/exec-ws.ts';
import { dashboardRoutes, isDashboardOpenPath } from './routes/dashboard.ts';
import { durableReplies, errorReply } from './routes/durable-replies.ts';
import { startE2bServer, type E2bOptions, type E2bServer } from './e2b/index.ts';

export const VERSION = '0.1.0';
const OPEN_PATHS = new Set(['/healthz', '/metrics', '/openapi.json']);

export interface ServeOptions extends CoreOptions {
  host?: string;
  port?: number;
  rateLimit?: RateLimitOptions;
  /** how long an episode whose sandbox ended stays readable (default 15 min). */
  episodeRetentionMs?: number;
  /** the E2B-compatible API (control plane + envd) on its own port; off when absent. */
  e2b?: E2bOptions;
  /**
   * Cluster node: a create's X-Praetor-Reservation header names the id the control plane
   * reserved (checked by `sandboxIds` before use); episode ids come from `episodeIds`.
   */
  clusterNode?: { episodeIds: () => string };
  /**
   * HTTPS instead of HTTP (a cluster node's mutual TLS link), on the E2B port too. `guard` runs
   * on each TLS server before it listens, so it sees every connection before any HTTP parsing.
   */
  tls?: { options: TlsOptions; guard?: (server: TlsServer) => void };
}

export interface PraetorServer {
  url: string;
  app: FastifyInstance;
  core: ServerCore;
  episodes: EpisodeService;
  /** the E2B-compatible API, when started. */
  e2b?: E2bServer;
  close(): Promise<void>;
}

/** ROCK's and GEM's routes answer failures in ROCK's envelope; ours in {error:{code,…}}. */
export function isRockPath(url: string): boolean {
  return url.startsWith('/apis/');
}

/** The presented token: Bearer, ROCK's X-Key / X-API-Key, or ROCK SDK's XRL-Authorization. */
export function presentedToken(h: FastifyRequest['headers']): string | undefined {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const raw = first(h.authorization) ?? first(h['x-api-key']) ?? first(h['x-key']) ?? first(h['xrl-authorization']);
  if (raw === undefined) return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(raw);
  if (m) return m[1];
  // Basic auth carries the token as the password (or the user): ROCK's RockEnv sends no
  // headers, but httpx turns a base URL like http://x:TOKEN@host into this header.
  const b = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(raw);
  if (b) {
    const text = Buffer.from(b[1]!, 'base64').toString('utf8');
    const i = text.indexOf(':');
    return (i < 0 ? text : text.slice(i + 1) || text.slice(0, i)) || undefined;
  }
  return raw.trim() || undefined;
}

/** The one error body: ROCK's envelope on ROCK's and GEM's paths, {error:{code,…}} elsewhere. */
export function sendError(req: FastifyRequest, reply: FastifyReply, pe: PraetorError): FastifyReply {
  const r = errorReply(req.url, pe);
  return reply.status(r.status).send(r.body);
}

export function asPraetorError(err: unknown): PraetorError {
  if (isPraetorError(err)) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e?.statusCode === 413 || e?.code === 'FST_REQ_FILE_TOO_LARGE') return new PraetorError('TOO_LARGE', 'request body is over the size limit', { hint: 'send less, or start the server with a larger --body-limit' });
  if (e?.statusCode === 415) return new PraetorError('UNSUPPORTED_MEDIA_TYPE', `unsupported content type: ${e.message ?? ''}`, { hint: 'send application/json' });
  if (e?.statusCode === 404) return new PraetorError('NOT_FOUND', e.message ?? 'not found', { hint: 'see /openapi.json' });
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new PraetorError('BAD_ARGUMENT', `malformed request: ${e.message ?? e.code}`, { hint: 'send a valid JSON body with Content-Type: application/json' });
  }
  return new PraetorError('INTERNAL', 'internal error', { cause: err, hint: 'see the server log' });
}

export async function startServer(o: ServeOptions): Promise<PraetorServer> {
  const core = await ServerCore.open(o);
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // One instance type for both: the routes use only what HTTP and HTTPS servers share.
  const app = Fastify({ bodyLimit, logger: false, forceCloseConnections: true, return503OnClosing: true, routerOptions: { maxParamLength: 512 }, ...(o.tls ? { https: o.tls.options } : {}) }) as unknown as FastifyInstance;
  o.tls?.guard?.(app.server as unknown as TlsServer);
  const registry = new RouteRegistry();
  const ctx: Ctx = { core, registry, bodyLimit };
  const limiter = new RateLimiter(o.rateLimit ?? { perSecond: 200, burst: 400 });
  const metrics = new Metrics(core);
  const episodes = new EpisodeService(core, { retentionMs: o.episodeRetentionMs, ...(o.clusterNode ? { newId: o.clusterNode.episodeIds } : {}) });
  const log = o.log ?? (() => {});
  let e2b: E2bServer | undefined;

  try {
    await app.register(fastifyWebsocket, { options: { maxPayload: bodyLimit } });
    await app.register(fastifyMultipart, { limits: { fileSize: bodyLimit, files: 1, fields: 16, fieldSize: 64 * 1024 } });

    app.addHook('onRequest', async (req) => {
      const path = req.url.split('?')[0]!;
      if (OPEN_PATHS.has(path) || isDashboardOpenPath(path)) return;
      const token = presentedToken(req.headers);
      let p: Principal | undefined = token ? core.tokens.verify(token) : undefined;
      if (!p) {
        throw new PraetorError('UNAUTHORIZED', token ? 'invalid token' : 'no token', { hint: 'send Authorization: Bearer TOKEN (or X-API-Key for ROCK routes); create one with `praetor token create --tenant NAME`' });
      }
      const wait = limiter.take(p.tokenId);
      if (wait > 0) throw Object.assign(new PraetorError('RATE_LIMITED', 'too many requests for this token', { hint: `retry after ${wait} s` }), { retryAfter: wait });
      const reserved = req.headers['x-praetor-reservation'];
      if (o.clusterNode && typeof reserved === 'string') p = { ...p, reservedId: reserved };
      (req as FastifyRequest & { principal?: Principal }).principal = p;
    });
    app.addHook('onResponse', async (req, reply) => { metrics.observe(req, reply); });

    app.setErrorHandler((err, req, reply) => {
      const pe = asPraetorError(err);
      if (pe.code === 'INTERNAL') log(`internal error on ${req.method} ${req.url.split('?')[0]}: ${err instanceof Error ? err.stack : errorMessage(err)}`);
      const retry = (err as { retryAfter?: number }).retryAfter;
      if (retry) void reply.header('retry-after', String(retry));
      return sendError(req, reply, pe);
    });
    app.setNotFoundHandler((req, reply) => sendError(req, reply, new PraetorError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`, { hint: 'see /openapi.json' })));
    // Nothing is acknowledged before the records that trace it are durable (routes/durable-replies.ts).
    durableReplies(app, { durable: () => core.durable(), skip: (path) => OPEN_PATHS.has(path) || isDashboardOpenPath(path) });

    registry.add({ method: 'GET', path: '/healthz', tag: 'meta', summary: 'liveness and ledger health', auth: false });
    app.get('/healthz', async (_req, reply) => {
      const ok = !core.ledgerError;
      return reply.status(ok ? 200 : 503).send({ ok, version: VERSION, sandboxes: core.all.length, ledger: core.ledger ? (ok ? 'ok' : core.ledgerError) : 'off', degraded: core.guard.degraded() });
    });
    registry.add({ method: 'GET', path: '/openapi.json', tag: 'meta', summary: 'this document', auth: false });
    app.get('/openapi.json', async () => openApiDocument(registry, VERSION));

    metricsRoutes(app, ctx, metrics);
    sandboxRoutes(app, ctx);
    sessionRoutes(app, ctx);
    fileRoutes(app, ctx);
    execWsRoutes(app, ctx);
    eventRoutes(app, ctx);
    rockRoutes(app, ctx);
    gemRoutes(app, ctx, episodes);
    episodeRoutes(app, ctx, episodes);
    mcpRoutes(app, ctx, episodes);
    modelGatewayRoutes(app, ctx, o.model, episodes);
    dashboardRoutes(app, ctx);

    const address = await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 7070 });
    const url = address.replace('[::1]', 'localhost');
    // A TLS server (a cluster node's mutual TLS link) serves E2B over the same TLS and guard: no plain port beside it.
    e2b = o.e2b ? await startE2bServer(core, { ...o.e2b, host: o.e2b.host ?? o.host ?? '127.0.0.1', bodyLimit, limiter, log, ...(o.tls ? { tls: o.tls } : {}) }) : undefined;
    let closing: Promise<void> | undefined;
    return {
      url, app, core, episodes, ...(e2b ? { e2b } : {}),
      close: () => closing ??= (async () => {
        await e2b?.close();
        await app.close().catch(() => {});
        await episodes.close();
        await core.close();
      })(),
    };
  } catch (e) {
    await e2b?.close();
    await app.close().catch(() => {});
    await core.close();
    throw e;
  }
}
