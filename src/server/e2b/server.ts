// The E2B-compatible API on its own port: E2B's control plane and envd on one plain-HTTP origin,
// so a client sets E2B_API_URL and E2B_SANDBOX_URL to the same URL and E2B_API_KEY to a Praetor
// token. Two kinds of caller, told apart by E2B's own header:
//   - control plane (no E2b-Sandbox-Id): X-API-KEY (or Bearer) is a Praetor token;
//   - envd (E2b-Sandbox-Id, or an envd path): X-Access-Token is the sandbox's own access token
//     from create/connect, never an API key (the SDK sends none there). The sandbox id selects
//     the sandbox, the token proves the caller got it from the control plane.
// Both are rate limited per Praetor token with the main API's limiter. Errors are E2B's
// `{code, message}`; Connect RPCs answer Connect errors.
import { Code, ConnectError, createContextKey, createContextValues, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Server as TlsServer, TlsOptions } from 'node:tls';
import { PraetorError, errorMessage, isPraetorError } from '../../errors.ts';
import type { Principal } from '../auth.ts';
import type { ServerCore } from '../core.ts';
import type { RateLimiter } from '../rate-limit.ts';
import { durableReplies } from '../routes/durable-replies.ts';
import { controlPlaneRoutes } from './control-plane.ts';
import { e2bErrorBody, notSupported, statusOf } from './errors.ts';
import { fileRoutes } from './files-http.ts';
import { filesystemService } from './filesystem-service.ts';
import { Filesystem } from './gen/filesystem/filesystem_pb.js';
import { Process } from './gen/process/process_pb.js';
import { processService } from './process-service.ts';
import { E2bRegistry, type E2bSandbox } from './registry.ts';

export interface E2bOptions {
  /** port of the E2B API (0: any free one). */
  port: number;
  /** listen address (default: the main API's). */
  host?: string | undefined;
  /** template name → Praetor image; `base` maps to `host` unless given. */
  templates?: Record<string, string> | undefined;
  /** cap on the interval between keepalive events on command streams (default: the client's, 50 s). */
  keepaliveMs?: number | undefined;
  /**
   * A cluster node's E2B port: a create's X-Praetor-Reservation header names the id the control
   * replica reserved (the node's sandbox id source checks it against the reservation table).
   */
  reservations?: boolean | undefined;
}

export interface E2bServer { url: string; app: FastifyInstance; registry: E2bRegistry; close(): Promise<void> }

const RPC_PREFIXES = ['/process.Process/', '/filesystem.Filesystem/'];
const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

function apiKeyOf(req: FastifyRequest): string | undefined {
  const key = first(req.headers['x-api-key']);
  if (key) return key.trim();
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(first(req.headers.authorization) ?? '');
  return m?.[1];
}

/** Fastify's own 4xx (bad JSON, wrong content type, too large) as Praetor errors. */
function asPraetor(err: unknown): PraetorError {
  if (isPraetorError(err)) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e?.statusCode === 413 || e?.code === 'FST_REQ_FILE_TOO_LARGE' || e?.code === 'FST_FILES_LIMIT') return new PraetorError('TOO_LARGE', 'request body is over the size limit', { hint: 'send less, or start the server with a larger --body-limit' });
  if (e?.statusCode === 415) return new PraetorError('UNSUPPORTED_MEDIA_TYPE', `unsupported content type: ${e.message ?? ''}`, { hint: 'send application/json' });
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new PraetorError('BAD_ARGUMENT', `malformed request: ${e.message ?? e.code}`, { hint: 'send a valid JSON body with Content-Type: application/json' });
  return new PraetorError('INTERNAL', 'internal error', { cause: err, hint: 'see the server log' });
}

/**
 * `tls`: serve HTTPS with these options, `guard` run on the server before it listens (a cluster
 * node passes its mutual TLS link's, so its E2B port admits control replicas only, like its API).
 */
export async function startE2bServer(core: ServerCore, o: E2bOptions & { host: string; bodyLimit: number; limiter: RateLimiter; log?: (m: string) => void; tls?: { options: TlsOptions; guard?: (server: TlsServer) => void } }): Promise<E2bServer> {
  const log = o.log ?? (() => {});
  const registry = new E2bRegistry(core.bus);
  const app = Fastify({ bodyLimit: o.bodyLimit, logger: false, forceCloseConnections: true, return503OnClosing: true, routerOptions: { maxParamLength: 512 }, ...(o.tls ? { https: o.tls.options } : {}) }) as unknown as FastifyInstance;
  o.tls?.guard?.(app.server as unknown as TlsServer);
  const principals = new WeakMap<FastifyRequest, Principal>();
  const records = new WeakMap<IncomingMessage | FastifyRequest, E2bSandbox>();
  const kRecord = createContextKey<E2bSandbox | undefined>(undefined, { description: 'the E2B sandbox of an envd call' });
  const kWait = createContextKey<number>(0, { description: 'seconds this token must wait (rate limit)' });
  const waits = new WeakMap<IncomingMessage, number>();
  const recordOfCtx = (ctx: HandlerContext) => {
    // A rate-limited RPC fails as Connect's resource_exhausted (the SDK's RateLimitError); an
    // HTTP 429 would read as "unavailable" to a Connect client, i.e. a sandbox timeout.
    const wait = ctx.values.get(kWait);
    if (wait > 0) throw new ConnectError(`too many requests for this token; retry after ${wait} s`, Code.ResourceExhausted);
    const r = ctx.values.get(kRecord);
    if (!r) throw new PraetorError('INTERNAL', 'envd call without a sandbox', { hint: 'report this as a bug' });
    return r;
  };
  // Nothing is acknowledged before the records that trace it are durable (../routes/durable-replies.ts).
  const durable = () => core.durable();
  const rpc = connectNodeAdapter({
    routes: (router) => {
      router.service(Process, processService({ registry, recordOf: recordOfCtx, keepaliveMs: o.keepaliveMs, durable }));
      router.service(Filesystem, filesystemService({ recordOf: recordOfCtx, durable }));
    },
    contextValues: (req) => createContextValues().set(kRecord, records.get(req as IncomingMessage)).set(kWait, waits.get(req as IncomingMessage) ?? 0),
  });
  const limit = (p: Principal) => {
    const wait = o.limiter.take(p.tokenId);
    if (wait > 0) throw Object.assign(new PraetorError('RATE_LIMITED', 'too many requests for this token', { hint: `retry after ${wait} s` }), { retryAfter: wait });
  };

  try {
    // Multi-file writes: many parts, and paths kept as the parts' filenames (busboy's
    // preservePath; it would otherwise cut them to their base names).
    await app.register(fastifyMultipart, { preservePath: true, limits: { fileSize: o.bodyLimit, files: 256, fields: 16, fieldSize: 64 * 1024 } });
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      const rpcPath = RPC_PREFIXES.some((p) => path.startsWith(p));
      const sandboxId = first(req.headers['e2b-sandbox-id']);
      const accessToken = first(req.headers['x-access-token']);
      if (sandboxId !== undefined || accessToken !== undefined || rpcPath || path === '/files') {
        const { record, ok } = registry.byAccessToken(sandboxId, accessToken);
        if (!record) {
          // E2B's proxy answers 502 for a sandbox that is not running: the SDK's isRunning()
          // reads it as "not running", and Connect clients as Unavailable.
          const which = sandboxId !== undefined ? `sandbox ${JSON.stringify(sandboxId.slice(0, 80))}` : 'the sandbox of this access token';
          return reply.status(502).send({ sandboxId: sandboxId ?? null, code: 502, message: `${which} was not found: it was killed, timed out, or never existed` });
        }
        if (path === '/health') return;
        if (!ok) throw new PraetorError('UNAUTHORIZED', `invalid access token for sandbox ${record.id}`, { hint: 'send the envdAccessToken returned by create or connect in X-Access-Token' });
        if (rpcPath) {
          records.set(req.raw, record);
          waits.set(req.raw, o.limiter.take(record.principal.tokenId));
          reply.hijack();
          rpc(req.raw, reply.raw);
          return;
        }
        limit(record.principal);
        records.set(req, record);
        return;
      }
      if (path === '/health') return;
      const token = apiKeyOf(req);
      const p = token ? core.tokens.verify(token) : undefined;
      if (!p) throw new PraetorError('UNAUTHORIZED', token ? 'invalid API key' : 'no API key', { hint: 'set E2B_API_KEY to a Praetor token (`praetor token create --tenant NAME`); it is sent as X-API-KEY' });
      limit(p);
      const reserved = req.headers['x-praetor-reservation'];
      principals.set(req, o.reservations && typeof reserved === 'string' ? { ...p, reservedId: reserved } : p);
    });

    app.setErrorHandler((err, req, reply) => {
      const pe = asPraetor(err);
      if (pe.code === 'INTERNAL') log(`e2b: internal error on ${req.method} ${req.url.split('?')[0]}: ${err instanceof Error ? err.stack : errorMessage(err)}`);
      const retry = (err as { retryAfter?: number }).retryAfter;
      if (retry) void reply.header('retry-after', String(retry));
      const status = statusOf(pe);
      return reply.status(status).send(e2bErrorBody(pe, status));
    });
    durableReplies(app, { durable, skip: (path) => path === '/health', shape: (_req, pe) => { const status = statusOf(pe); return { status, body: e2bErrorBody(pe, status) }; } });
    app.setNotFoundHandler((req, reply) => {
      const pe = notSupported(`${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`);
      return reply.status(501).send(e2bErrorBody(pe, 501));
    });

    app.get('/health', async (req, reply) => (req.headers['e2b-sandbox-id'] !== undefined || req.headers['x-access-token'] !== undefined ? reply.status(204).send() : { ok: !core.ledgerError }));
    const principalOf = (req: FastifyRequest) => {
      const p = principals.get(req);
      if (!p) throw new PraetorError('UNAUTHORIZED', 'no API key', { hint: 'set E2B_API_KEY' });
      return p;
    };
    controlPlaneRoutes(app, { core, registry, principalOf, templates: { base: 'host', ...(o.templates ?? {}) } });
    fileRoutes(app, {
      recordOf: (req) => {
        const r = records.get(req);
        if (!r) throw new PraetorError('BAD_ARGUMENT', 'envd call without E2b-Sandbox-Id', { hint: 'send the sandbox id in E2b-Sandbox-Id' });
        return r;
      },
    });

    const address = await app.listen({ host: o.host, port: o.port });
    let closing: Promise<void> | undefined;
    return {
      url: address.replace('[::1]', 'localhost'), app, registry,
      close: () => closing ??= (async () => { await app.close().catch(() => {}); registry.close(); })(),
    };
  } catch (e) {
    await app.close().catch(() => {});
    registry.close();
    throw e;
  }
}
