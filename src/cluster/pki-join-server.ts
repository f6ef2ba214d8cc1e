// A control replica's cluster port: HTTPS with the replica's control certificate, serving the
// join route only. Separate from the trainer-facing API on purpose: that API may be plain HTTP
// behind a proxy and checks API tokens, while a join must be TLS end to end to a holder of a
// control certificate (the node verifies exactly that) and carries a join token instead.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { registerJoinRoute, type JoinRouteOptions } from './pki-join-route.ts';
import { reloadServers, type IdentityWatcher } from './pki-reload.ts';
import { controlServerTlsOptions, controlServerTlsOptionsFor } from './pki-tls.ts';

export interface JoinServer { url: string; close(): Promise<void> }

/** `identity`: the replica's watched control identity; a rotated certificate then serves new handshakes here too. */
export async function startJoinServer(o: JoinRouteOptions & { identityDir: string; host?: string; port?: number; identity?: IdentityWatcher | undefined }): Promise<JoinServer> {
  const tls = o.identity ? controlServerTlsOptionsFor(o.identity.current) : controlServerTlsOptions(o.identityDir);
  const app = Fastify({ https: tls, logger: false, forceCloseConnections: true, bodyLimit: 64 * 1024 });
  if (o.identity) reloadServers(o.identity, () => [app.server as unknown as TlsServer]);
  try {
    await registerJoinRoute(app, o);
    await app.listen({ host: o.host ?? '0.0.0.0', port: o.port ?? 0 });
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
  const a = app.server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return { url: `https://${host}:${a.port}`, close: () => app.close() };
}
