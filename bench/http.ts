// A keep-alive node:http JSON client for the benchmarks, as a trainer's HTTP client would hold
// its connections open (undici's fetch adds ~0.4 ms of its own per call, which is the client's
// cost, not the server's).
import http from 'node:http';

export interface KeepAliveClient {
  /** Resolves with the parsed JSON body ({} when empty); rejects on a status ≥ 400 or a bad body. */
  call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>>;
  post(path: string, body: unknown): Promise<Record<string, unknown>>;
  /** Closes the pooled connections. */
  close(): void;
}

export function keepAliveClient(url: string, token: string, opts: { maxSockets?: number } = {}): KeepAliveClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256 });
  const u = new URL(url);
  const auth = { authorization: `Bearer ${token}` };
  const call = (method: string, path: string, body?: unknown) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = data === undefined ? auth : { ...auth, 'content-type': 'application/json' };
    const r = http.request({ host: u.hostname, port: u.port, path, method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let j: Record<string, unknown>;
        try { j = JSON.parse(text || '{}') as Record<string, unknown>; } catch { reject(new Error(`${method} ${path}: ${res.statusCode} not JSON: ${text.slice(0, 200)}`)); return; }
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(j)}`)); else resolve(j);
      });
    });
    r.on('error', reject);
    r.end(data);
  });
  return { call, post: (path, body) => call('POST', path, body), close: () => agent.destroy() };
}
