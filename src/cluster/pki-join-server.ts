// A control replica's cluster port: HTTPS with the replica's control certificate, serving the
// join route only. Separate from the trainer-facing API on purpose: that API may be plain HTTP
// behind a proxy and checks API tokens, while a join must be TLS end to end to a holder of a
// control certificate (the node verifies exactly that) and carries a join token instead.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { registerJoinRoute, type JoinRouteOptions } from './pki-join-route.ts';
import { controlServerTlsOptions } from './pki-tls.ts';

export interface JoinServer { url: string; close(): Promise<void> }

export async function startJoinServer(o: JoinRouteOptions & { identityDir: string; host?: string; port?: number }): Promise<JoinServer> {
  const app = Fastify({ https: controlServerTlsOptions(o.identityDir), logger: false, forceCloseConnections: true, bodyLimit: 64 * 1024 });
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
