// `praetor serve --role node`: the full server (sandboxes, sensors, gateway, rules,
// containment, its own ledger) plus membership in the cluster. Sandbox ids come from the
// control plane's reservations (node-ids.ts); episode ids name this node too.
//
// Fencing (threat: a node cut off from the database keeps running sandboxes the control plane
// has declared lost and replaced, and nothing records what they do): when its heartbeat fails
// for long enough it freezes every sandbox at once; if the link returns while it is still `up`
// they thaw; after the grace period (or once declared lost) it destroys them and joins again
// in a new epoch, so the reservations of the old one are reclaimed.
import { randomBytes } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';
import { errorMessage } from '../errors.ts';
import { startServer, type PraetorServer, type ServeOptions } from '../server/index.ts';
import { ClusterControl } from './control.ts';
import { NodeMembership } from './membership.ts';
import { NodeSandboxIds } from './node-ids.ts';
import { clusterEpisodeId, type NodeCapacity } from './schema.ts';
import { checked, refusalLog, type NodeLinkSecurity } from './node-link-security.ts';
import { expiryReport } from './pki-identity.ts';
import { renewNodeIdentity } from './pki-join-client.ts';
import { reloadServers, watchIdentity, type IdentityWatcher } from './pki-reload.ts';
import { guardControlPeers, nodeServerTlsOptionsFor } from './pki-tls.ts';

export interface NodeRoleOptions extends ServeOptions {
  cluster: string;
  nodeId: string;
  /** base URL control replicas use to reach this node; default the URL it listens on. */
  advertise?: string | undefined;
  capacity: NodeCapacity;
  heartbeatMs?: number;
  graceMs?: number;
  /** mutual TLS with the node's identity (nodeLinkSecurity()), or --insecure-cluster's plain HTTP. */
  link: NodeLinkSecurity;
  /** how often a running node checks whether its certificate is due for renewal (default 1 h). */
  renewCheckMs?: number;
  /** where control replicas reach this node's E2B API; default the advertised host with the E2B port. */
  e2bAdvertise?: string | undefined;
}

/** The advertised address of the E2B port: the node's advertised host (what its certificate names), the port it listens on. */
export function e2bAddressOf(advertise: string, e2bUrl: string): string {
  const a = new URL(advertise);
  a.port = new URL(e2bUrl).port;
  return a.origin;
}

export interface NodeServer extends PraetorServer {
  membership(): NodeMembership | undefined;
}

export async function startNode(o: NodeRoleOptions): Promise<NodeServer> {
  const log = o.log ?? (() => {});
  const ctl = await ClusterControl.open({ url: o.cluster, poolSize: 4 });
  let member: NodeMembership | undefined;
  let server: PraetorServer | undefined;
  let closed = false;
  const frozen = new Set<string>();
  const ids = new NodeSandboxIds(ctl, () => (member && !member.lost ? { nodeId: member.nodeId, epoch: member.epoch, ordinal: member.ordinal, fenced: member.fenced } : undefined),
    // Quotas come from the same tenants file as the control replicas' (one token store).
    (t) => server!.core.tenants.get(t), log,
    (id) => { void server?.core.manager.get(id)?.destroy('its cluster reservation is gone').catch(() => undefined); });

  const fence = (why: string) => {
    log(`cluster: fencing (${why}): freezing every sandbox`);
    for (const e of server?.core.all ?? []) {
      if (e.sb.state !== 'running') continue;
      frozen.add(e.sb.id);
      e.sb.pause().catch((err: unknown) => {
        log(`cluster: freezing ${e.sb.id} failed (${errorMessage(err)}): destroying it`);
        void e.sb.destroy('node fenced: freezing failed');
      });
    }
  };
  const unfence = () => {
    log('cluster: database reachable again: thawing');
    for (const e of server?.core.all ?? []) if (frozen.delete(e.sb.id) && e.sb.state === 'paused') void e.sb.resume().catch(() => undefined);
  };
  const destroyAll = async (why: string) => {
    frozen.clear();
    await Promise.all((server?.core.all ?? []).map((e) => e.sb.destroy(`node fenced: ${why}`).catch(() => undefined)));
  };

  let e2bAddress: string | undefined;
  const joinOnce = (address: string) => NodeMembership.join({
    url: o.cluster, nodeId: o.nodeId, address, e2bAddress, capacity: o.capacity, log,
    ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}), ...(o.graceMs !== undefined ? { graceMs: o.graceMs } : {}),
    onFence: fence, onUnfence: unfence,
    onDestroy: (why) => { void destroyAll(why).then(() => { if (!closed) void rejoin(address); }); },
  });
  const joined = (m: NodeMembership, address: string) => {
    member = m;
    if (m.reclaimed.length) log(`cluster: ${m.reclaimed.length} sandboxes of an earlier epoch recorded ended`);
    log(`cluster: node ${m.nodeId} joined (ordinal ${m.ordinal}, epoch ${m.epoch}, ${address})`);
  };
  // After a loss the node keeps trying to come back, in a new epoch.
  const rejoin = async (address: string): Promise<void> => {
    for (let attempt = 0; !closed; attempt++) {
      try { joined(await joinOnce(address), address); return; } catch (e) {
        if (attempt === 0) log(`cluster: joining again failed (${errorMessage(e)}): retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
      }
    }
  };

  // Only control replicas get past the handshake and the guard; each refusal is a typed line in
  // the log (expired, foreign CA, a node certificate, none at all). The same TLS and guard are on
  // every port the node serves (the API and, when on, E2B's): no port of a node is plain. A
  // rotated certificate (a renewal, new files in the identity directory) reaches every one of
  // them without a restart; files that are not this node's valid identity are refused.
  let watcher: IdentityWatcher | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  const tlsServers: TlsServer[] = [];
  try {
    const link = o.link;
    if (link.mode === 'mtls') {
      const w = watchIdentity(link.dir, 'node', { log, check: (id) => { checked(id, { nodeId: o.nodeId, dir: link.dir }, link.advertise); } });
      watcher = w;
      reloadServers(w, () => tlsServers);
      // A node runs for months and its certificate for 30 days: renew it while it still proves
      // who this node is (a fifth of its life left); the watcher then serves the new one.
      const renew = link.renew;
      if (renew) {
        let renewing = false;
        renewTimer = setInterval(() => {
          if (renewing || !expiryReport(w.current).renewSoon) return;
          renewing = true;
          renewNodeIdentity({ controlUrl: renew.controlUrl, dir: link.dir, advertise: link.advertise, caFile: renew.caFile })
            .then((r) => { log(`cluster: node ${r.nodeId} renewed its certificate ahead of its expiry; valid until ${r.notAfter.toISOString()}`); w.check(); })
            .catch((e: unknown) => log(`cluster: renewing node ${o.nodeId}'s certificate failed (${errorMessage(e)}); it stays valid until ${w.current.notAfter.toISOString()}; retrying`))
            .finally(() => { renewing = false; });
        }, o.renewCheckMs ?? 3_600_000);
        renewTimer.unref();
      }
    }
    const refusals = refusalLog(log);
    const tls = watcher
      ? { options: nodeServerTlsOptionsFor(watcher.current), guard: (srv: TlsServer) => { tlsServers.push(srv); guardControlPeers(srv, refusals); } }
      : undefined;
    server = await startServer({
      // E2B creates carry the control replica's reservation too (X-Praetor-Reservation, checked by `ids`).
      ...o, sandboxIds: ids, ...(tls ? { tls } : {}), ...(o.e2b ? { e2b: { ...o.e2b, reservations: true } } : {}),
      clusterNode: { episodeIds: () => clusterEpisodeId(member?.ordinal ?? 0, randomBytes(6).toString('hex')) },
    });
  } catch (e) {
    clearInterval(renewTimer);
    watcher?.close();
    await ctl.close().catch(() => undefined);
    throw e;
  }
  const address = o.advertise ?? server.url;
  e2bAddress = server.e2b ? o.e2bAdvertise ?? e2bAddressOf(address, server.e2b.url) : undefined;
  // The first join is awaited: a node that cannot join fails its start, loudly.
  try { joined(await joinOnce(address), address); } catch (e) {
    clearInterval(renewTimer);
    watcher?.close();
    await server.close();
    await ctl.close().catch(() => undefined);
    throw e;
  }
  const inner = server;
  return {
    ...inner,
    membership: () => member,
    close: async () => {
      closed = true;
      clearInterval(renewTimer);
      watcher?.close();
      await inner.close();
      await member?.leave().catch(() => undefined);
      await ctl.close().catch(() => undefined);
    },
  };
}
