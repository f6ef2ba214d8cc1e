// How a control replica reaches a node: one place that makes the HTTP agent and the WebSocket
// client options, so the link's transport security (mutual TLS with the cluster CA, the
// `--cluster-tls DIR` material) plugs in here and nowhere else. Today it is plain HTTP on the
// address the node advertised; a node must then only be reachable from control replicas (the
// chart's NetworkPolicy), since anyone on its port could speak its API with a tenant's token.
import http from 'node:http';
import https from 'node:https';
import type { ClientOptions } from 'ws';

export interface NodeLinkOptions {
  /** TLS client material for https:// node addresses (CA, certificate, key); none: the system's defaults. */
  tls?: Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'servername'>;
  /** sockets kept per node (default 256: one per concurrent call, reused). */
  maxSockets?: number;
}

export interface NodeLink {
  /** the agent for a node's base URL (http:// or https://). */
  agentFor(base: URL): http.Agent;
  /** options for a WebSocket to a node (same agent, same TLS). */
  wsOptions(base: URL, headers: Record<string, string>): ClientOptions;
  close(): void;
}

export function nodeLink(o: NodeLinkOptions = {}): NodeLink {
  const common = { keepAlive: true, maxSockets: o.maxSockets ?? 256, keepAliveMsecs: 10_000 };
  const plain = new http.Agent(common);
  const secure = new https.Agent({ ...common, ...(o.tls ?? {}) });
  const agentFor = (base: URL): http.Agent => (base.protocol === 'https:' ? secure : plain);
  return {
    agentFor,
    // A WebSocket upgrade takes its socket out of the pool for good: no keep-alive agent for it,
    // only the TLS material.
    wsOptions: (base, headers) => ({ headers, perMessageDeflate: false, ...(base.protocol === 'https:' ? { ...(o.tls ?? {}) } : {}) }),
    close: () => { plain.destroy(); secure.destroy(); },
  };
}
