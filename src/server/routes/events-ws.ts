// WebSocket event streams: per sandbox (/v1/sandboxes/{id}/events) and per tenant (/v1/events).
// A tenant's stream carries only events of its own sandboxes. A slow reader gets a `dropped`
// notice instead of unbounded buffering (threat: one stuck client exhausting server memory).
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { PraetorEvent } from '../../events/index.ts';
import { MAX_WS_BUFFERED, parseInput, principal, type Ctx } from '../http.ts';

const KindsQuery = z.object({ kinds: z.string().max(2000).optional().describe('comma-separated event kinds to receive (default all)') }).strict();

function pipe(socket: WebSocket, bus: Ctx['core']['bus'], accept: (e: PraetorEvent) => boolean, kinds: Set<string> | undefined): void {
  let dropped = 0;
  const unsub = bus.subscribe((e) => {
    if (kinds && !kinds.has(e.kind)) return;
    if (!accept(e)) return;
    if (socket.bufferedAmount > MAX_WS_BUFFERED) { dropped++; return; }
    if (dropped > 0) { socket.send(JSON.stringify({ kind: 'stream.dropped', count: dropped })); dropped = 0; }
    socket.send(JSON.stringify(e));
  });
  socket.on('close', unsub);
  socket.on('error', unsub);
  socket.on('message', () => { /* the stream is one-way; input is ignored */ });
}

export function eventRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { core } = ctx;
  ctx.registry.add({ method: 'GET', path: '/v1/sandboxes/:id/events', tag: 'events', summary: 'WebSocket: live events of one sandbox (JSON text frames)', query: KindsQuery, websocket: true, errors: [404] });
  app.get('/v1/sandboxes/:id/events', { websocket: true }, (socket, req) => {
    try {
      const e = core.sandbox(principal(req), String((req.params as { id?: string }).id ?? ''));
      const q = parseInput(KindsQuery, req.query, 'query');
      pipe(socket, core.bus, (ev) => ev.sandboxId === e.sb.id, q.kinds ? new Set(q.kinds.split(',')) : undefined);
      socket.send(JSON.stringify({ kind: 'stream.open', sandboxId: e.sb.id }));
    } catch (err) {
      socket.close(4404, String((err as Error).message).slice(0, 120));
    }
  });
  ctx.registry.add({ method: 'GET', path: '/v1/events', tag: 'events', summary: 'WebSocket: live events of every sandbox of the tenant (admin: all)', query: KindsQuery, websocket: true });
  app.get('/v1/events', { websocket: true }, (socket, req) => {
    try {
      const p = principal(req);
      const q = parseInput(KindsQuery, req.query, 'query');
      pipe(socket, core.bus, (ev) => p.admin || core.tenantOf(ev.sandboxId) === p.tenant, q.kinds ? new Set(q.kinds.split(',')) : undefined);
      socket.send(JSON.stringify({ kind: 'stream.open', tenant: p.tenant }));
    } catch (err) {
      socket.close(4400, String((err as Error).message).slice(0, 120));
    }
  });
}
