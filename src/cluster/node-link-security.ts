// How `praetor serve --role node` secures its link before it serves anything:
//  - an identity in --cluster-tls DIR (cert.pem, key.pem, ca.pem from a join): mutual TLS;
//  - one that names another address (a rescheduled pod with a new IP) or nears its expiry, and a
//    control replica to ask: renew it first, proving possession of its key (pki-renew.ts): the
//    node keeps its id and needs no token, and the new certificate names the address it
//    registers (control replicas check that it does);
//  - none yet (or an unusable one) and a join token: join first (a key made here, a CSR signed by
//    a control replica), then mutual TLS;
//  - --insecure-cluster: plain HTTP, said loudly in the log;
//  - anything else fails closed, before a sandbox could start. Threat: a node that quietly falls
//    back to plain HTTP serves its API (commands, files, tenants' tokens) to anyone on its port.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { PraetorError, errorMessage, isPraetorError } from '../errors.ts';
import { IDENTITY_FILES, expiryReport, loadIdentity, type ClusterIdentity } from './pki-identity.ts';
import { joinCluster, renewNodeIdentity } from './pki-join-client.ts';

export type NodeLinkSecurity = { mode: 'insecure' } | {
  mode: 'mtls'; dir: string; identity: ClusterIdentity;
  /** the address its certificate names, which it registers. */ advertise: string;
  /** where it renews its certificate while it runs (near its expiry), when a control replica was given. */ renew: { controlUrl: string; caFile?: string | undefined } | undefined;
};

export interface NodeLinkSecurityOptions {
  nodeId: string;
  /** the node's identity directory (written by a join). */
  dir: string;
  insecure: boolean;
  /** a join token and the control replica's join endpoint, for a node without an identity. */
  join?: { token: string; controlUrl: string; caFile?: string | undefined } | undefined;
  /** a control replica's join endpoint to renew a kept identity at (new address, near expiry); default join's. */
  renew?: { controlUrl: string; caFile?: string | undefined } | undefined;
  /** the base URL control replicas reach this node on, when given. */
  advertise: string | undefined;
  /** the listen address and port (the advertise address when none is given). */
  host: string;
  port: number;
  log: (msg: string) => void;
}

const SETUP_HINT = 'create the cluster CA once (`praetor cluster init --dir CA_DIR`), make a join token (`praetor cluster token create --cluster URL --node ID`) and start the node with --join-token TOKEN --control https://CONTROL:JOIN_PORT (or join it first with `praetor cluster join --dir DIR`); only on a trusted test bench, pass --insecure-cluster to every node and control replica';

export async function nodeLinkSecurity(o: NodeLinkSecurityOptions): Promise<NodeLinkSecurity> {
  if (o.insecure) {
    if (o.join) throw new PraetorError('BAD_ARGUMENT', '--join-token and --insecure-cluster contradict each other: a join gives the node a certificate for mutual TLS', { hint: 'drop --insecure-cluster (recommended), or drop the join flags' });
    if (o.advertise?.startsWith('https:')) throw new PraetorError('BAD_ARGUMENT', `--advertise ${o.advertise} is https, and --insecure-cluster serves plain HTTP`, { hint: 'advertise http://HOST:PORT with --insecure-cluster, or drop --insecure-cluster' });
    o.log('WARNING: --insecure-cluster: this node serves its API over plain HTTP, without client certificates; anyone who reaches its port can call it with a tenant\'s token and read the link. Use it on a trusted test bench only (see "Cluster links" in docs/operations.md)');
    return { mode: 'insecure' };
  }
  if (o.advertise !== undefined && !o.advertise.startsWith('https:')) {
    throw new PraetorError('BAD_ARGUMENT', `--advertise ${o.advertise} is not https: a node serves mutual TLS only`, { hint: 'advertise https://HOST:PORT (or pass --insecure-cluster on a trusted test bench)' });
  }
  const advertise = o.advertise ?? defaultAdvertise(o.host, o.port);
  const renewAt = o.renew ?? (o.join ? { controlUrl: o.join.controlUrl, caFile: o.join.caFile } : undefined);
  let identity: ClusterIdentity | undefined;
  if (existsSync(join(o.dir, IDENTITY_FILES.cert))) {
    try {
      const kept = loadIdentity(o.dir, 'node');
      checkOwner(kept, o);
      if (!namesAddress(kept, advertise) && renewAt) {
        // Its address changed (a pod rescheduled with a new IP): renew under the same id.
        o.log(`cluster: node ${kept.id}'s certificate names ${certHosts(kept)}, not ${advertise}: renewing it through ${renewAt.controlUrl}`);
        const r = await renewNodeIdentity({ controlUrl: renewAt.controlUrl, dir: o.dir, advertise, caFile: renewAt.caFile });
        o.log(`cluster: node ${r.nodeId} renewed its certificate for ${advertise}; valid until ${r.notAfter.toISOString()}`);
      } else if (renewAt && expiryReport(kept).renewSoon) {
        // Near its end: renew now, while the current one still proves who this node is.
        try {
          const r = await renewNodeIdentity({ controlUrl: renewAt.controlUrl, dir: o.dir, advertise, caFile: renewAt.caFile });
          o.log(`cluster: node ${r.nodeId} renewed its certificate ahead of its expiry; valid until ${r.notAfter.toISOString()}`);
        } catch (e) {
          o.log(`cluster: renewing node ${kept.id}'s certificate failed (${errorMessage(e)}); it stays valid until ${kept.notAfter.toISOString()}`);
        }
      }
      identity = checked(loadIdentity(o.dir, 'node'), o, advertise);
    } catch (e) {
      if (!o.join || !isPraetorError(e)) throw e;
      o.log(`cluster: the identity in ${o.dir} is unusable (${e.code}: ${e.message}): joining again with the join token`);
    }
  }
  if (!identity && o.join) {
    const r = await joinCluster({ controlUrl: o.join.controlUrl, token: o.join.token, nodeId: o.nodeId, advertise, dir: o.dir, ...(o.join.caFile ? { caFile: o.join.caFile } : {}) });
    o.log(`cluster: node ${r.nodeId} joined the cluster; certificate ${r.certPath} valid until ${r.notAfter.toISOString()}`);
    identity = checked(loadIdentity(o.dir, 'node'), o, advertise);
  }
  if (!identity) {
    throw new PraetorError('CERT_INVALID', `node ${o.nodeId} has no cluster identity in ${o.dir}, and a node serves its API over mutual TLS only`, { hint: SETUP_HINT });
  }
  return { mode: 'mtls', dir: o.dir, identity, advertise, renew: renewAt };
}

/** The identity must be this node's and name the address it will register. */
export function checked(id: ClusterIdentity, o: { nodeId: string; dir: string }, advertise: string): ClusterIdentity {
  checkOwner(id, o);
  if (!namesAddress(id, advertise)) {
    const host = new URL(advertise).hostname.replace(/^\[(.*)\]$/, '$1');
    throw new PraetorError('CERT_INVALID', `node ${id.id}'s certificate does not name ${host}, the address it would register (${advertise}); control replicas would refuse it`, {
      hint: `start the node with --control https://CONTROL:JOIN_PORT so it renews its certificate for the new address, or rejoin ${id.id} with a new join token and --advertise set to the address control replicas reach it on (its certificate names ${certHosts(id)})`,
    });
  }
  return id;
}

function checkOwner(id: ClusterIdentity, o: { nodeId: string; dir: string }): void {
  if (id.id !== o.nodeId) {
    throw new PraetorError('CERT_WRONG_ROLE', `${join(o.dir, IDENTITY_FILES.cert)} is the identity of node ${id.id}, and this node starts as ${o.nodeId}`, {
      hint: `start it with --node-id ${id.id}, or point --cluster-tls at ${o.nodeId}'s own identity directory (or join ${o.nodeId} with a new token)`,
    });
  }
}

function namesAddress(id: ClusterIdentity, advertise: string): boolean {
  const host = new URL(advertise).hostname.replace(/^\[(.*)\]$/, '$1');
  const cert = new X509Certificate(id.certPem);
  return (isIP(host) ? cert.checkIP(host) : cert.checkHost(host)) !== undefined;
}

const certHosts = (id: ClusterIdentity) => new X509Certificate(id.certPem).subjectAltName?.split(', ').filter((n) => !n.startsWith('URI:')).join(', ') || 'no address';

function defaultAdvertise(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::' || host === '') {
    throw new PraetorError('BAD_ARGUMENT', `--host ${host} listens on every address, so it names none for the node's certificate`, { hint: 'pass --advertise https://HOST:PORT, the address control replicas reach this node on' });
  }
  return `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/**
 * A node's log of refused link connections, at most `burst` lines per `windowMs`, then one line
 * with how many more were cut: a scanner or a misconfigured peer must not flood the log.
 */
export function refusalLog(log: (msg: string) => void, o: { burst?: number; windowMs?: number } = {}): (e: PraetorError, remote: string | undefined) => void {
  const burst = o.burst ?? 20; const windowMs = o.windowMs ?? 10_000;
  let windowStart = 0; let shown = 0; let dropped = 0;
  return (e, remote) => {
    const now = Date.now();
    if (now - windowStart > windowMs) {
      if (dropped) log(`cluster: ${dropped} more link connections refused in the last ${Math.round(windowMs / 1000)} s (not logged one by one)`);
      windowStart = now; shown = 0; dropped = 0;
    }
    if (shown++ < burst) log(`cluster: refused a link connection from ${remote ?? 'an unknown address'}: ${e.code}: ${errorMessage(e)}${e.hint ? ` (${e.hint})` : ''}`);
    else dropped++;
  };
}
