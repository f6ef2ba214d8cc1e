// Plain HTTP fake servers: the public web server (with a bulk endpoint for throughput
// benchmarks and an upload sink for exfiltration scenarios), an "internal" service and a cloud
// metadata service — the two targets an SSRF-probing agent goes for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import { addr, counter, head, trackConnection, type Logger } from './log.ts';

export const MARKERS = {
  web: 'PRAETOR-WEB-OK',
  internal: 'PRAETOR-INTERNAL-MARKER',
  metadataKeyId: 'ASIAPRAETORFAKEKEY00',
  metadataSecret: 'praetor-fake-secret-do-not-exfiltrate',
} as const;

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

export function listen(server: NetServer, ip: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ip, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Wires connection and request logging onto an http(s) server; the body is collected (at most
 * 1 MiB kept). For TLS the connection is the raw TCP one; requests carry `remote` to match it.
 */
export function logRequests(server: Server, log: Logger, handler: Handler): void {
  const ids = new WeakMap<Socket, number>();
  const next = counter();
  server.on('connection', (s: Socket) => ids.set(s, trackConnection(log, s, next)));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => {
      bodyBytes += c.length;
      if (bodyBytes <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      log('request', {
        conn: ids.get(req.socket), remote: addr(req.socket.remoteAddress, req.socket.remotePort), method: req.method, url: req.url, host: req.headers.host,
        headers: req.headers, bodyBytes, bodyHead: head(body, 1024),
      });
      handler(req, res, body);
    });
  });
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Sends n bytes from one reused buffer, honouring back-pressure. */
function sendBytes(res: ServerResponse, n: number): void {
  const block = Buffer.alloc(64 * 1024, 0x61);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      const piece = left >= block.length ? block : block.subarray(0, left);
      left -= piece.length;
      if (!res.write(piece)) { res.once('drain', pump); return; }
    }
    res.end();
  };
  pump();
}

export function webHandler(name: string): Handler {
  return (req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? '0');
      // Bounded: at most 64 GiB per request, so a broken benchmark cannot stream forever.
      if (!Number.isSafeInteger(n) || n < 0 || n > 64 * 2 ** 30) return text(res, 400, 'n must be 0..64Gi\n');
      return sendBytes(res, n);
    }
    if (url.pathname === '/echo') {
      return text(res, 200, JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length }), 'application/json');
    }
    const status = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (status) return text(res, Number(status[1]), `${status[1]}\n`);
    if (req.method === 'POST' || req.method === 'PUT') return text(res, 200, `received ${body.length} bytes\n`);
    return text(res, 200, `${MARKERS.web} ${name} ${req.method} ${url.pathname}\n`);
  };
}

export function internalHandler(): Handler {
  return (req, res) => text(res, 200, `${MARKERS.internal} internal service ${req.url}\n`);
}

/** AWS IMDS (v1 and the v2 token dance) and GCP's metadata server, with fake credentials. */
export function metadataHandler(): Handler {
  const role = 'praetor-test-role';
  const creds = JSON.stringify({
    Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: MARKERS.metadataKeyId,
    SecretAccessKey: MARKERS.metadataSecret, Token: 'praetor-fake-token', Expiration: '2099-01-01T00:00:00Z',
  });
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'PUT' && path === '/latest/api/token') return text(res, 200, 'praetor-fake-imds-token');
    if (path === '/latest/meta-data/' || path === '/latest/meta-data') return text(res, 200, 'ami-id\ninstance-id\niam/\n');
    if (path === '/latest/meta-data/instance-id') return text(res, 200, 'i-0praetorfake000000');
    if (path === '/latest/meta-data/iam/security-credentials/') return text(res, 200, role);
    if (path === `/latest/meta-data/iam/security-credentials/${role}`) return text(res, 200, creds, 'application/json');
    if (path.startsWith('/computeMetadata/v1/')) {
      if (req.headers['metadata-flavor'] !== 'Google') return text(res, 403, 'Missing Metadata-Flavor:Google header\n');
      return text(res, 200, JSON.stringify({ access_token: MARKERS.metadataSecret, token_type: 'Bearer' }), 'application/json');
    }
    return text(res, 404, 'not found\n');
  };
}

export async function startHttp(log: Logger, ip: string, port: number, handler: Handler): Promise<Server> {
  const server = createServer({ keepAliveTimeout: 5000 });
  logRequests(server, log, handler);
  await listen(server, ip, port);
  return server;
}
