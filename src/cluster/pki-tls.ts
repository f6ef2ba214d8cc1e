// The TLS settings of every cluster link, built in one place so no caller assembles its own.
//  - A node serves mutual TLS and accepts control replicas only. Threat: a compromised node (or
//    anything holding a node certificate) calling another node's API to run code in its
//    sandboxes. Node certificates carry EKU serverAuth only, so OpenSSL refuses one offered as a
//    client during the handshake; guardControlPeers() checks the SAN role on top.
//  - A control replica calls a node with its control certificate and accepts only the node it
//    meant: the server certificate must carry `urn:praetor:node:<the expected id>`. Threat: a
//    stale or hijacked address in cluster_nodes leading a replica to hand one node's sandbox
//    calls (commands, files, tokens in them) to another host of the cluster.
//  - Only the cluster CA is trusted (never the system store), and only TLS 1.3.
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate, type Server, type TLSSocket, type TlsOptions } from 'node:tls';
import { PraetorError, errorMessage } from '../errors.ts';
import { CLUSTER_ID, assertCurrent, identityOfDer, loadIdentity, renewHint, type ClusterIdentity, type ClusterRole, type PeerIdentity } from './pki-identity.ts';

export type NodeServerTlsOptions = TlsOptions & { requestCert: true; rejectUnauthorized: true };
/** tls.connect options; `maxCachedSessions: 0` is read by https.Agent and undici's connector. */
export type ControlClientTlsOptions = ConnectionOptions & { maxCachedSessions: 0; rejectUnauthorized: true };

const base = (id: ClusterIdentity) => ({ key: id.keyPem, cert: id.certPem, ca: id.caPem, minVersion: 'TLSv1.3' as const });

/**
 * What a server's secure context is made of (tls.Server#setSecureContext): a rotated identity
 * replaces exactly these, while requestCert and rejectUnauthorized stay the server's own.
 */
export function secureContextOptions(id: ClusterIdentity): TlsOptions {
  return base(id);
}

/**
 * A node's HTTPS server options (for https.createServer or Fastify({ https })). Throws
 * CERT_EXPIRED / CERT_INVALID / CERT_WRONG_ROLE when the node's own identity is unusable, so a
 * node with a bad certificate does not start serving. Pair with guardControlPeers(server).
 */
export function nodeServerTlsOptions(dir: string): NodeServerTlsOptions {
  return nodeServerTlsOptionsFor(loadIdentity(dir, 'node'));
}

/** The same, from an identity already loaded and checked (a reloader's current one). */
export function nodeServerTlsOptionsFor(id: ClusterIdentity): NodeServerTlsOptions {
  return { ...base(id), requestCert: true, rejectUnauthorized: true };
}

/** A control replica's server options for the join endpoint (no client certificate asked). */
export function controlServerTlsOptions(dir: string): TlsOptions {
  return { ...base(loadIdentity(dir, 'control')), requestCert: false };
}

/** The same, from a control identity already loaded (a reloader's current one). */
export function controlServerTlsOptionsFor(id: ClusterIdentity): TlsOptions {
  return { ...base(id), requestCert: false };
}

/** The identity of a TLS socket's peer, or a typed error saying why it has none we accept. */
export function peerOf(socket: TLSSocket): PeerIdentity {
  if (!socket.authorized) {
    throw new PraetorError('CERT_INVALID', `the peer's certificate was not verified: ${String(socket.authorizationError ?? 'none sent')}`, { hint: 'call nodes with controlClientTlsOptions(), i.e. with a control certificate of this cluster' });
  }
  const who = identityOfDer(socket.getPeerCertificate(false)?.raw);
  if (!who) throw new PraetorError('CERT_INVALID', 'the peer\'s certificate carries no praetor identity', { hint: 'issue cluster certificates with `praetor cluster issue-control` or a node join, not by hand' });
  return who;
}

/** Throws unless the socket's peer is a control replica. */
export function assertControlPeer(socket: TLSSocket): PeerIdentity {
  const who = peerOf(socket);
  if (who.role !== 'control') {
    throw new PraetorError('CERT_WRONG_ROLE', `${who.role} ${who.id} called a node; nodes accept calls from control replicas only`, { hint: 'send node calls through a control replica (its certificate comes from `praetor cluster issue-control`)' });
  }
  return who;
}

/**
 * Installs, before any HTTP parsing, the check that every connection on a node's server comes
 * from a control replica; others are cut at once. `onRefuse` gets each refusal as a typed error
 * (handshake refusals too: expired, foreign CA, wrong role) for the node's log.
 */
export function guardControlPeers(server: Server, onRefuse: (e: PraetorError, remote: string | undefined) => void = () => {}): void {
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    try { assertControlPeer(socket); } catch (e) {
      onRefuse(e instanceof PraetorError ? e : new PraetorError('CERT_INVALID', errorMessage(e)), socket.remoteAddress);
      socket.destroy();
    }
  });
  // Read the peer's address while the TCP socket is fresh: Node caches it then, and a refused
  // handshake's log line still has it after the socket is gone.
  server.prependListener('connection', (raw: { remoteAddress?: string }) => { void raw.remoteAddress; });
  // A client refused in the handshake: Node cuts it without a TLS alert (the caller sees a
  // reset), so the reason is known only here, in the socket's verification result.
  server.on('tlsClientError', (err, socket) => {
    const verify = socket.authorizationError;
    const ctx = { peer: 'a client', peerRole: 'control' as const, side: 'server' as const };
    const pe = verify ? explainTlsError(Object.assign(new Error(`client certificate refused: ${String(verify)}`), { code: String(verify) }), ctx) : explainTlsError(err, ctx);
    if (pe) onRefuse(pe, remoteOf(socket));
  });
}

/**
 * The peer's address of a TLS socket the handshake failed on: by then the TLS socket has let go
 * of its handle (remoteAddress undefined), and only the TCP socket under it still knows (its
 * address cached by the 'connection' listener in guardControlPeers).
 * `_parent` is Node's own field for it; without it the refusal is logged without an address.
 */
function remoteOf(socket: TLSSocket): string | undefined {
  return socket.remoteAddress ?? (socket as TLSSocket & { _parent?: { remoteAddress?: string } })._parent?.remoteAddress;
}

/**
 * Options for a control replica's call to node `nodeId` (https.request, an https.Agent per
 * node, or undici's connect). Throws when this replica's own certificate is unusable (expired,
 * not a control certificate), before a packet is sent. Session resumption is off
 * (maxCachedSessions 0): a resumed session skips checkServerIdentity, and the node identity
 * check must run on every connection.
 */
export function controlClientTlsOptions(dir: string, nodeId: string): ControlClientTlsOptions {
  if (!CLUSTER_ID.test(nodeId)) throw new PraetorError('BAD_ARGUMENT', `"${String(nodeId).slice(0, 80)}" is not a node id to expect`, { hint: 'pass the node id the sandbox or the cluster_nodes row names' });
  return controlClientTlsOptionsFor(loadIdentity(dir, 'control'), nodeId);
}

/** The same, from a control identity already loaded and checked (a reloader's current one). */
export function controlClientTlsOptionsFor(me: ClusterIdentity, nodeId: string): ControlClientTlsOptions {
  if (!CLUSTER_ID.test(nodeId)) throw new PraetorError('BAD_ARGUMENT', `"${String(nodeId).slice(0, 80)}" is not a node id to expect`, { hint: 'pass the node id the sandbox or the cluster_nodes row names' });
  if (me.role !== 'control') throw new PraetorError('CERT_WRONG_ROLE', `${me.dir} holds a ${me.role} identity, and only control replicas call nodes`, { hint: 'issue a control identity with `praetor cluster issue-control`' });
  return {
    ...base(me), rejectUnauthorized: true, maxCachedSessions: 0,
    checkServerIdentity: (host, cert) => {
      const e = nodeIdentityProblem(host, cert, nodeId);
      if (e) return e;
      // Checked per connection too: a replica that runs for months must not keep calling with a
      // certificate that expired under it (the node would refuse it with a vaguer alert).
      try { assertCurrent(me); } catch (err) { return err as Error; }
      return undefined;
    },
  };
}

function nodeIdentityProblem(host: string, cert: PeerCertificate, nodeId: string): Error | undefined {
  const who = identityOfDer(cert.raw);
  if (!who) return new PraetorError('CERT_INVALID', `the server at ${host} presented a certificate without a praetor identity`, { hint: 'node certificates come from a join; rejoin that node with a new token' });
  if (who.role !== 'node') return new PraetorError('CERT_WRONG_ROLE', `the server at ${host} is ${who.role} ${who.id}, not node ${nodeId}`, { hint: `check the address registered for node ${nodeId} (\`praetor nodes\`)` });
  if (who.id !== nodeId) {
    return new PraetorError('CERT_WRONG_ROLE', `the server at ${host} is node ${who.id}, not node ${nodeId} as expected`, { hint: `the address registered for ${nodeId} now reaches ${who.id}: check \`praetor nodes\`, and restart or rejoin ${nodeId} so it registers its current address` });
  }
  const hostErr = checkServerIdentity(host, cert);
  if (hostErr) {
    return new PraetorError('CERT_INVALID', `node ${nodeId}'s certificate does not name the address ${host} it was reached at (${cert.subjectaltname ?? 'no SANs'})`, { hint: `rejoin ${nodeId} with --advertise set to the address it registers`, cause: hostErr });
  }
  return undefined;
}

/**
 * Options for the node's join call: the operator-given CA bundle is the only trust anchor, and
 * the server must be a control replica (any: a load balancer may pick one). No host name check:
 * the name a node dials a load balancer by need not be in every replica's certificate, and the
 * role URI is what only the cluster CA can grant.
 */
export function joinClientTlsOptions(caPem: string): ConnectionOptions & { maxCachedSessions: 0 } {
  return {
    ca: caPem, minVersion: 'TLSv1.3', rejectUnauthorized: true, maxCachedSessions: 0,
    checkServerIdentity: (host, cert) => {
      const who = identityOfDer(cert.raw);
      if (who?.role === 'control') return undefined;
      return new PraetorError('CERT_WRONG_ROLE', `the join server at ${host} is ${who ? `${who.role} ${who.id}` : 'no cluster member'}, not a control replica`, { hint: 'pass --control the URL of a control replica\'s cluster port' });
    },
  };
}

const NOT_OUR_CA = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE']);

/**
 * A TLS failure on a cluster link as a typed error that says which side refused what, and the
 * fix. `side` is the side that saw the error; `peerRole` the role the peer was meant to have.
 * Undefined when the failure is not about TLS (a refused connection, a timeout): keep that one.
 */
export function explainTlsError(err: unknown, ctx: { peer: string; peerRole: ClusterRole; side: 'client' | 'server'; self?: { role: ClusterRole; id: string } }): PraetorError | undefined {
  if (err instanceof PraetorError) return err;
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = e?.code ?? '';
  const text = `${code} ${e?.reason ?? ''} ${errorMessage(err)}`.toLowerCase();
  const selfFix = ctx.self ? renewHint(ctx.self.role, ctx.self.id) : 'renew this side\'s certificate';
  const peerFix = ctx.peerRole === 'node' ? 'rejoin that node with a new join token' : 'issue that replica a new certificate with `praetor cluster issue-control`';
  if (code === 'CERT_HAS_EXPIRED' || (ctx.side === 'server' && text.includes('certificate has expired'))) {
    return new PraetorError('CERT_EXPIRED', `${ctx.peer} presented an expired certificate`, { hint: peerFix, cause: err });
  }
  if (code === 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED' || text.includes('alert certificate expired')) {
    return new PraetorError('CERT_EXPIRED', `${ctx.peer} refused this side's certificate as expired`, { hint: selfFix, cause: err });
  }
  if (code === 'CERT_NOT_YET_VALID') return new PraetorError('CERT_INVALID', `${ctx.peer} presented a certificate that is not valid yet`, { hint: 'check both hosts\' clocks (NTP)', cause: err });
  if (NOT_OUR_CA.has(code) || (ctx.side === 'server' && /unable to (get local issuer|verify the first)|self.signed|certificate signature failure/.test(text))) {
    return new PraetorError('CERT_INVALID', `${ctx.peer} presented a certificate that is not signed by this cluster's CA`, { hint: `check that both sides use this cluster's ca.pem; then ${peerFix}`, cause: err });
  }
  if (/alert (unknown ca|bad certificate|decrypt error)/.test(text)) {
    return new PraetorError('CERT_INVALID', `${ctx.peer} refused this side's certificate: it is not signed by that peer's cluster CA`, { hint: `check that this side's ca.pem and certificate belong to the same cluster as ${ctx.peer}; then ${selfFix}`, cause: err });
  }
  if (code === 'INVALID_PURPOSE' || /alert unsupported certificate|unsupported certificate purpose/.test(text)) {
    return ctx.side === 'server'
      ? new PraetorError('CERT_WRONG_ROLE', `${ctx.peer} presented a certificate that may not call nodes (a node certificate?)`, { hint: 'nodes accept calls from control replicas only; send the call through a control replica', cause: err })
      : new PraetorError('CERT_WRONG_ROLE', `${ctx.peer} refused this side's certificate for this use: only control replicas may call nodes`, { hint: 'call nodes with a control certificate (`praetor cluster issue-control`), not a node certificate', cause: err });
  }
  if (/certificate required|did not return a certificate|peer did not return/.test(text)) {
    return new PraetorError('CERT_INVALID', ctx.side === 'server' ? `${ctx.peer} sent no client certificate` : `${ctx.peer} requires a client certificate`, { hint: 'call nodes with controlClientTlsOptions() (a control certificate of this cluster)', cause: err });
  }
  if (!/^ERR_(SSL|TLS)_/.test(code) && !/\b(ssl|tls)\b|certificate/.test(text)) return undefined;
  return new PraetorError('CERT_INVALID', `TLS with ${ctx.peer} failed: ${errorMessage(err)}`, { hint: 'check that both sides hold current certificates of this cluster (see "Cluster links" in docs/operations.md)', cause: err });
}
