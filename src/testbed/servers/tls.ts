// HTTPS fake server with a self-signed certificate. It logs the SNI of every ClientHello, also
// when the client then rejects the certificate — a gateway's SNI policy is judged on what
// actually arrived here.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { listen, logRequests, webHandler } from './http.ts';
import { addr, type Logger } from './log.ts';

export async function startTls(log: Logger, ip: string, port: number, name: string, keyPath: string, certPath: string): Promise<Server> {
  const key = readFileSync(keyPath);
  const cert = readFileSync(certPath);
  const context = createSecureContext({ key, cert });
  const server = createServer({
    key, cert, ALPNProtocols: ['http/1.1'],
    SNICallback: (servername, cb) => {
      log('sni', { sni: servername });
      cb(null, context);
    },
  });
  logRequests(server, log, webHandler(name));
  server.on('secureConnection', (s: TLSSocket) => {
    const sni = (s as TLSSocket & { servername?: string | false }).servername;
    log('tls', { remote: addr(s.remoteAddress, s.remotePort), sni: sni || null, alpn: s.alpnProtocol || null, protocol: s.getProtocol() });
  });
  server.on('tlsClientError', (err: Error, s: Socket) => {
    log('tls-error', { remote: addr(s.remoteAddress, s.remotePort), error: err.message });
  });
  await listen(server, ip, port);
  return server;
}
