// How a control replica reaches a node: one place that makes the HTTP agents and the WebSocket
// client options, so no call site assembles its own transport.
//  - Mutual TLS (the default; `--cluster-tls DIR` holds this replica's control certificate):
//    one https.Agent per node, each built from controlClientTlsOptions(DIR, nodeId), so every
//    connection checks that the server's certificate names exactly the node the call is meant
//    for. Threat: a stale or hijacked address in cluster_nodes handing one node's sandbox calls
//    (commands, files, tenants' tokens in the headers) to another host.
//  - A node that registered a plain http:// address is refused in that mode (threat: a row in
//    the database downgrading the link to clear text).
//  - A rotated control certificate (new files in DIR) is picked up without a restart: new
//    agents are built from it, the old ones finish their calls and close (pki-reload.ts); files
//    that do not make a valid control identity are refused and the current one stays in use.
//  - `--insecure-cluster`: plain HTTP only, for a test bench or a trusted single-host setup;
//    anyone who reaches a node's port can then speak its API with a tenant's token.
import http from 'node:http';
import https from 'node:https';
import type { ClientOptions } from 'ws';
import { PraetorError } from '../errors.ts';
import { watchIdentity, type IdentityWatcher } from './pki-reload.ts';
import { controlClientTlsOptionsFor, explainTlsError, type ControlClientTlsOptions } from './pki-tls.ts';

/** The node a call is for: its id (checked against its certificate) and registered address. */
export interface NodeTarget { nodeId: string; address: string }

export type NodeLinkOptions =
  | { mode: 'mtls'; /** this replica's identity directory (cert.pem, key.pem, ca.pem). */ dir: string; maxSockets?: number; log?: (msg: string) => void;
      /** how the directory is watched for rotated files (tests shorten the poll). */ watch?: { pollMs?: number; debounceMs?: number } }
  | { mode: 'insecure'; maxSockets?: number; log?: (msg: string) => void };

export interface NodeLink {
  readonly mode: 'mtls' | 'insecure';
  /** the base URL and agent for a node; throws when its address's scheme does not fit the mode. */
  target(node: NodeTarget): { base: URL; agent: http.Agent };
  /** options for a WebSocket to a node (same TLS material and node check, no pooled agent). */
  wsOptions(node: NodeTarget, headers: Record<string, string>): ClientOptions;
  /** A link failure as the typed TLS error it is (logged once per call), or undefined when it is not about TLS. */
  explain(err: unknown, node: NodeTarget): PraetorError | undefined;
  /** the control identity's watcher (mutual TLS only): 'reload' and 'error' events. */
  readonly identity: IdentityWatcher | undefined;
  close(): void;
}

export function nodeLink(o: NodeLinkOptions): NodeLink {
  const common = { keepAlive: true, maxSockets: o.maxSockets ?? 256, keepAliveMsecs: 10_000 };
  const log = o.log ?? (() => {});
  const plain = new http.Agent(common);
  let agents = new Map<string, { agent: https.Agent; tls: ControlClientTlsOptions }>();
  const logged = new Map<string, number>();
  // Loaded at start (a replica without a usable control certificate must not start at all),
  // then watched: a rotation swaps the agents, so new connections present the new certificate.
  const watcher = o.mode === 'mtls' ? watchIdentity(o.dir, 'control', { log, ...o.watch }) : undefined;
  watcher?.on('reload', () => {
    const old = agents;
    agents = new Map();
    // Calls in flight on the old agents finish; their sockets then close instead of idling.
    for (const a of old.values()) drain(a.agent);
  });

  const secureFor = (nodeId: string) => {
    let a = agents.get(nodeId);
    if (!a) {
      const tls = controlClientTlsOptionsFor(watcher!.current, nodeId);
      a = { agent: new https.Agent({ ...common, ...tls }), tls };
      agents.set(nodeId, a);
    }
    return a;
  };
  const baseOf = (node: NodeTarget): URL => {
    let base: URL;
    try { base = new URL(node.address); } catch {
      throw new PraetorError('CERT_INVALID', `node ${node.nodeId} registered "${node.address.slice(0, 100)}", which is not a URL`, { hint: `restart node ${node.nodeId} with --advertise https://HOST:PORT` });
    }
    if (o.mode === 'mtls' && base.protocol !== 'https:') {
      throw new PraetorError('CERT_INVALID', `node ${node.nodeId} registered the plain-HTTP address ${base.host}, and this replica talks to nodes over mutual TLS only`, {
        hint: `give node ${node.nodeId} an identity (\`praetor serve --role node --join-token …\`, see "Cluster links" in docs/operations.md), or run every replica and node with --insecure-cluster`,
      });
    }
    if (o.mode === 'insecure' && base.protocol !== 'http:') {
      throw new PraetorError('CERT_INVALID', `node ${node.nodeId} serves mutual TLS (${base.host}), and this replica runs with --insecure-cluster, without a control certificate`, {
        hint: 'start the replica with --cluster-tls DIR (a control identity from `praetor cluster issue-control`) instead of --insecure-cluster',
      });
    }
    return base;
  };
  return {
    mode: o.mode,
    target: (node) => {
      const base = baseOf(node);
      return { base, agent: o.mode === 'mtls' ? secureFor(node.nodeId).agent : plain };
    },
    // A WebSocket upgrade takes its socket out of the pool for good: no keep-alive agent for it,
    // only the TLS material (with the same per-node identity check).
    wsOptions: (node, headers) => {
      baseOf(node);
      // ws hands these to tls.connect as they are; its typing of checkServerIdentity (a boolean
      // result) is not what tls.connect calls (an Error or undefined), hence the cast.
      return { headers, perMessageDeflate: false, ...(o.mode === 'mtls' ? secureFor(node.nodeId).tls as ClientOptions : {}) };
    },
    explain: (err, node) => {
      if (o.mode !== 'mtls') return undefined;
      const e = explainTlsError(err, { peer: `node ${node.nodeId} at ${node.address}`, peerRole: 'node', side: 'client', ...(watcher ? { self: { role: 'control', id: watcher.current.id } } : {}) });
      // One line per node and reason every 10 s: a misregistered node under load must not flood the log.
      const key = `${node.nodeId} ${e?.code}`;
      const now = Date.now();
      if (e && now - (logged.get(key) ?? 0) > 10_000) {
        logged.set(key, now);
        log(`cluster: link to node ${node.nodeId} refused: ${e.code}: ${e.message} (${e.hint ?? ''})`);
      }
      return e;
    },
    identity: watcher,
    close: () => { watcher?.close(); plain.destroy(); for (const a of agents.values()) a.agent.destroy(); agents.clear(); },
  };
}

/** An agent no longer handed out: idle sockets close now, busy ones when their call ends. */
function drain(agent: https.Agent): void {
  agent.keepSocketAlive = () => false;
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}
