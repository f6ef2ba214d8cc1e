// What a control replica does with each call, as data: which routes create (and so place a
// reservation first), which are about one sandbox or episode (and where its id is: a path
// parameter, a query field, a JSON body field such as ROCK's `sandbox_id`, a multipart field,
// a header), which fan out to every node and merge, and which any node may answer. A route
// missing here is a 404 at the control plane: nothing reaches a node that was not meant to.
import { ROCK_SANDBOX_BASE } from '../server/index.ts';
import { parseSize } from '../util/index.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Where the id of the sandbox or episode a call is about sits in the request. */
export type IdAt =
  | { param: string }
  | { query: string }
  | { body: string }
  | { multipart: string }
  | { header: string };

export interface Want { cpus: number; memoryBytes: number }

export type RouteRule = { method: Method; path: string; websocket?: boolean } & (
  /** a create: reserve on a node (best-of-K, quota), then forward with the reserved id. */
  | { kind: 'place'; want: (body: Record<string, unknown>) => Want }
  /** a call about one sandbox or episode: proxied to the node its id names. */
  | { kind: 'id'; id: IdAt; /** no id (or a header left out): any live node answers. */ optional?: boolean;
      /** an id no live node holds still goes to a node, which answers as for any unknown id (ROCK's idempotent delete). */ unknownToAny?: boolean }
  /** every live node answers; the arrays under `key` are merged. */
  | { kind: 'fanout'; key: string }
  /** batch step: split by node, forwarded, results put back in order. */
  | { kind: 'batch' }
  /** WebSocket fed by every live node (the tenant's event stream). */
  | { kind: 'fanin' }
  /** nothing sandbox-specific: any live node answers. */
  | { kind: 'any' });

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
const size = (v: unknown, name: string): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' ? parseSize(v, name) : undefined;
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {});

/** The node's defaults (sandbox spec: 1 CPU, 1 GiB) where the request names none. */
const v1Want = (b: Record<string, unknown>): Want => ({ cpus: num(b.cpus) ?? 1, memoryBytes: size(b.memory, 'memory') ?? 2 ** 30 });
/** ROCK's start: limit_cpus or cpus (default 2), memory (default 8g), as routes/rock.ts reads them. */
const rockWant = (b: Record<string, unknown>): Want => ({ cpus: num(b.limit_cpus) ?? num(b.cpus) ?? 2, memoryBytes: size(b.memory ?? '8g', 'memory')! });

const R = ROCK_SANDBOX_BASE;
const GEM = '/apis/v1/envs/gem';
const sb = (path: string, method: Method = 'POST'): RouteRule => ({ method, path: `/v1/sandboxes/:id${path}`, kind: 'id', id: { param: 'id' } });
const ep = (path: string, method: Method = 'POST'): RouteRule => ({ method, path: `/v1/episodes/:id${path}`, kind: 'id', id: { param: 'id' } });
const rockBody = (name: string): RouteRule => ({ method: 'POST', path: `${R}/${name}`, kind: 'id', id: { body: 'sandbox_id' } });
const rockQuery = (name: string): RouteRule => ({ method: 'GET', path: `${R}/${name}`, kind: 'id', id: { query: 'sandbox_id' } });
const gemBody = (name: string): RouteRule => ({ method: 'POST', path: `${GEM}/${name}`, kind: 'id', id: { body: 'sandbox_id' } });

export const ROUTES: readonly RouteRule[] = [
  // the native API
  { method: 'POST', path: '/v1/sandboxes', kind: 'place', want: v1Want },
  { method: 'GET', path: '/v1/sandboxes', kind: 'fanout', key: 'sandboxes' },
  sb('', 'GET'), sb('', 'DELETE'), sb('/pause'), sb('/resume'), sb('/phase'), sb('/exec'), sb('/stats', 'GET'),
  sb('/sessions'), sb('/sessions', 'GET'), sb('/sessions/:name/run'), sb('/sessions/:name', 'DELETE'),
  sb('/files', 'GET'), sb('/files', 'PUT'), sb('/files/download', 'GET'), sb('/files/upload', 'PUT'),
  { ...sb('/exec/ws', 'GET'), websocket: true },
  { ...sb('/events', 'GET'), websocket: true },
  { method: 'GET', path: '/v1/events', kind: 'fanin', websocket: true },
  // episodes, their MCP endpoint, and the model gateway (tagged with an episode when one is named)
  { method: 'POST', path: '/v1/episodes', kind: 'place', want: (b) => v1Want(obj(b.sandbox)) },
  { method: 'GET', path: '/v1/episodes', kind: 'fanout', key: 'episodes' },
  { method: 'POST', path: '/v1/episodes/step', kind: 'batch' },
  ep('', 'GET'), ep('', 'DELETE'), ep('/step'), ep('/reward'), ep('/report', 'GET'), ep('/mcp'),
  { method: 'POST', path: '/v1/chat/completions', kind: 'id', id: { header: 'x-praetor-episode-id' }, optional: true },
  // ROCK
  { method: 'POST', path: `${R}/start`, kind: 'place', want: rockWant },
  { method: 'POST', path: `${R}/start_async`, kind: 'place', want: rockWant },
  rockQuery('is_alive'), rockQuery('get_status'), rockQuery('get_sandbox_statistics'),
  rockBody('stop'), rockBody('restart'), { method: 'POST', path: `${R}/delete`, kind: 'id', id: { body: 'sandbox_id' }, unknownToAny: true }, rockBody('commit'), rockBody('execute'),
  rockBody('create_session'), rockBody('run_in_session'), rockBody('close_session'), rockBody('read_file'), rockBody('write_file'),
  { method: 'POST', path: `${R}/upload`, kind: 'id', id: { multipart: 'sandbox_id' } },
  { method: 'POST', path: `${R}/sandboxes/:sandbox_id/restart`, kind: 'id', id: { param: 'sandbox_id' } },
  { method: 'POST', path: `${R}/sandboxes/:sandbox_id/archive`, kind: 'id', id: { param: 'sandbox_id' } },
  { method: 'GET', path: `${R}/commit/:sandbox_id`, kind: 'id', id: { param: 'sandbox_id' } },
  { method: 'GET', path: `${R}/get_token`, kind: 'any' },
  // GEM: the handle make returns is the episode's first sandbox id, so it names the node
  { method: 'POST', path: `${GEM}/make`, kind: 'place', want: () => v1Want({}) },
  gemBody('reset'), gemBody('step'), gemBody('close'), gemBody('list'),
  { method: 'GET', path: '/openapi.json', kind: 'any' },
];
