// Shared HTTP plumbing: every route is declared once with its zod schemas, which both validate
// the request (unknown fields and wrong types are 400s that name the field) and feed the
// OpenAPI document, so the document cannot drift from what the server accepts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import type { Principal } from './auth.ts';
import type { ServerCore } from './core.ts';

/** What a WebSocket may hold unsent for a slow reader before the server stops feeding it. */
export const MAX_WS_BUFFERED = 8 * 2 ** 20;

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDoc {
  method: Method;
  /** Fastify path, `:id` style. */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodType;
  /** response schema for 200 (documentation and the live-traffic test). */
  response?: z.ZodType;
  /** statuses besides 200 this route answers with. */
  errors?: number[];
  auth?: boolean;
  websocket?: boolean;
  /** body is multipart/form-data (ROCK upload). */
  multipart?: boolean;
}

export class RouteRegistry {
  readonly routes: RouteDoc[] = [];
  add(r: RouteDoc): void { this.routes.push(r); }
}

export interface Ctx {
  core: ServerCore;
  registry: RouteRegistry;
  bodyLimit: number;
}

export { parseInput, zodError } from '../util/index.ts';

/** The authenticated principal (set by the auth hook; routes without auth never call this). */
export function principal(req: FastifyRequest): Principal {
  const p = (req as FastifyRequest & { principal?: Principal }).principal;
  if (!p) throw new PraetorError('UNAUTHORIZED', 'no token', { hint: 'send Authorization: Bearer TOKEN (create one with `praetor token create`)' });
  return p;
}

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> | unknown;

/** Registers a route and its documentation together. */
export function route(app: FastifyInstance, ctx: Ctx, doc: Omit<RouteDoc, 'auth'> & { auth?: boolean }, handler: Handler): void {
  ctx.registry.add({ auth: true, ...doc });
  app.route({ method: doc.method, url: doc.path, handler: async (req, reply) => handler(req, reply) });
}

/** A zod object with .describe() on each field is the house style; this keeps the calls short. */
export const d = <T extends z.ZodType>(t: T, text: string): T => t.describe(text) as T;
