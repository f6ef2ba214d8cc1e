// Calls a control replica answers from several nodes: listings merged from every live node,
// a batch step split by the node each episode lives on, and the tenant's event stream fed by
// every node. A node that does not answer drops out of a listing (named in `partial`); its
// episodes in a batch get SANDBOX_LOST each, the others still step.
import WebSocket from 'ws';
import { errorMessage, isPraetorError } from '../errors.ts';
import type { NodeLink } from './node-link.ts';
import { forward, lost, readAll, wsUrl } from './proxy.ts';
import type { NodeRow } from './schema.ts';

interface Call { method: string; path: string; headers: Record<string, string | string[]>; body: Buffer | undefined }

export async function fanOut(link: NodeLink, nodes: NodeRow[], call: Call, key: string): Promise<Record<string, unknown>> {
  const merged: unknown[] = [];
  const partial: string[] = [];
  await Promise.all(nodes.map(async (n) => {
    try {
      const f = await forward(link, n, { ...call, what: `node ${n.nodeId}` });
      const body = await readAll(f);
      if (f.status !== 200) { partial.push(n.nodeId); return; }
      const list = (JSON.parse(body.toString()) as Record<string, unknown>)[key];
      if (Array.isArray(list)) merged.push(...list);
    } catch { partial.push(n.nodeId); }
  }));
  return { [key]: merged, ...(partial.length ? { partial: partial.sort() } : {}) };
}

interface Step { episode_id?: unknown; action?: unknown }

export async function splitBatch(link: NodeLink, nodeFor: (id: string) => Promise<NodeRow>, body: Record<string, unknown>, call: Call): Promise<{ results: unknown[] }> {
  const steps = Array.isArray(body.steps) ? body.steps as Step[] : [];
  const results: unknown[] = new Array(steps.length);
  const groups = new Map<string, { node: NodeRow; idx: number[] }>();
  await Promise.all(steps.map(async (s, i) => {
    const id = typeof s?.episode_id === 'string' ? s.episode_id : '';
    try {
      const node = await nodeFor(id);
      const g = groups.get(node.nodeId) ?? { node, idx: [] };
      g.idx.push(i);
      groups.set(node.nodeId, g);
    } catch (e) {
      results[i] = { episode_id: id, error: isPraetorError(e) ? e.toJSON() : { code: 'INTERNAL', message: errorMessage(e) } };
    }
  }));
  await Promise.all([...groups.values()].map(async ({ node, idx }) => {
    const sub = Buffer.from(JSON.stringify({ steps: idx.map((i) => steps[i]) }));
    const headers = { ...call.headers, 'content-type': 'application/json' };
    try {
      const f = await forward(link, node, { ...call, headers, body: sub, what: `node ${node.nodeId}` });
      const parsed = JSON.parse((await readAll(f)).toString()) as { results?: unknown[]; error?: unknown };
      idx.forEach((i, j) => { results[i] = parsed.results?.[j] ?? { episode_id: steps[i]!.episode_id, error: parsed.error ?? { code: 'INTERNAL', message: `node ${node.nodeId} answered ${f.status}` } }; });
    } catch (e) {
      idx.forEach((i) => { results[i] = { episode_id: steps[i]!.episode_id, error: (isPraetorError(e) ? e : lost(`episode ${String(steps[i]!.episode_id)}`, errorMessage(e))).toJSON() }; });
    }
  }));
  return { results };
}

/** The tenant's live events from every node, on one socket; closes when the caller does. */
export function fanIn(client: WebSocket, link: NodeLink, nodes: NodeRow[], path: string, headers: Record<string, string>): void {
  const ups = nodes.flatMap((n) => {
    let up: WebSocket;
    try {
      up = new WebSocket(new URL(path, wsUrl(link.target(n).base)).href, link.wsOptions(n, headers));
    } catch (e) {
      // A node this replica may not talk to (a plain-HTTP address under mTLS): it drops out, named.
      if (client.readyState === WebSocket.OPEN) client.send(JSON.stringify({ kind: 'stream.node_closed', node: n.nodeId, code: 1011, error: isPraetorError(e) ? e.toJSON() : errorMessage(e) }));
      return [];
    }
    up.on('message', (data, binary) => { if (client.readyState === WebSocket.OPEN) client.send(data, { binary }); });
    up.on('error', (e) => { link.explain(e, n); });
    up.on('close', (code) => {
      if (code !== 1000 && client.readyState === WebSocket.OPEN) client.send(JSON.stringify({ kind: 'stream.node_closed', node: n.nodeId, code }));
    });
    return [up];
  });
  client.on('close', () => { for (const u of ups) u.terminate(); });
}
