// The model gateway as sandboxes see it: http://model.praetor.internal/v1 on their egress
// link, for policies with network.modelGateway. The gateway hands each such connection here;
// the sandbox is known from the link it came over (anti-spoofed in nftables), so no token is
// needed inside the sandbox and an agent cannot tag its calls as another sandbox's. Only chat
// completions are served: the rest of the Praetor API stays unreachable from a sandbox.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PraetorError, errorMessage } from '../errors.ts';
import type { EventBus } from '../events/index.ts';
import type { ModelRoute } from '../net/index.ts';
import { parseInput } from '../util/index.ts';
import { ChatBody, openChat, relayChat, upstreamHost, type ModelGatewayOptions } from './model-proxy.ts';

export interface SandboxModelRouteOptions {
  model: ModelGatewayOptions;
  bus: EventBus;
  /** The episode a sandbox serves, if any (calls are tagged with it). */
  episodeOf(sandboxId: string): string | undefined;
  bodyLimit: number;
  /** Calls one sandbox may have in flight (default 16): a looping agent must not run up the upstream's bill for everyone. */
  maxInFlight?: number;
}

const PATHS = new Set(['/v1/chat/completions', '/chat/completions']);

export function sandboxModelRoute(o: SandboxModelRouteOptions): ModelRoute & { close(): void } {
  const sandboxOf = new WeakMap<Socket, string>();
  const inFlight = new Map<string, number>();
  const maxInFlight = o.maxInFlight ?? 16;
  const server = createServer({ requestTimeout: 600_000, headersTimeout: 30_000 }, (req, res) => {
    const sandboxId = sandboxOf.get(req.socket);
    if (!sandboxId) { res.destroy(); return; }
    void serve(sandboxId, req, res).catch((e: unknown) => fail(res, e));
  });

  async function serve(sandboxId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    if (!PATHS.has(path) || req.method !== 'POST') {
      throw new PraetorError('NOT_FOUND', `${req.method} ${path.slice(0, 200)} is not served to sandboxes`, { hint: 'sandboxes reach only POST /v1/chat/completions here' });
    }
    const raw = await readBody(req, o.bodyLimit);
    let json: unknown;
    try { json = JSON.parse(raw.toString('utf8')); } catch (e) {
      throw new PraetorError('BAD_ARGUMENT', `the body is not JSON: ${errorMessage(e)}`, { hint: 'send an OpenAI chat completions request as JSON' });
    }
    const body = parseInput(ChatBody, json, 'body');
    const n = inFlight.get(sandboxId) ?? 0;
    if (n >= maxInFlight) {
      throw new PraetorError('RATE_LIMITED', `this sandbox already has ${n} model calls in flight`, { hint: 'wait for one to finish' });
    }
    inFlight.set(sandboxId, n + 1);
    try {
      const call = await openChat(o.model, body);
      const episodeId = o.episodeOf(sandboxId);
      await relayChat(call, res, o.bus, { sandboxId, via: 'sandbox', ...(episodeId ? { episodeId } : {}) });
    } finally {
      const left = (inFlight.get(sandboxId) ?? 1) - 1;
      if (left > 0) inFlight.set(sandboxId, left); else inFlight.delete(sandboxId);
    }
  }

  return {
    upstreamHost: upstreamHost(o.model),
    serve(sandboxId, sock) {
      sandboxOf.set(sock, sandboxId);
      server.emit('connection', sock);
      sock.resume();
    },
    close() { server.closeAllConnections(); },
  };
}

/** OpenAI clients read errors as { error: { message, type, code } }. */
function fail(res: ServerResponse, e: unknown): void {
  const pe = e instanceof PraetorError ? e : new PraetorError('INTERNAL', errorMessage(e));
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(pe.httpStatus, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: pe.hint ? `${pe.message} (${pe.hint})` : pe.message, type: 'praetor_error', code: pe.code } }));
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []; let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new PraetorError('TOO_LARGE', `the body is over ${limit} bytes`, { hint: 'send a smaller request' }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
