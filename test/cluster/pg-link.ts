// A unix-socket relay in front of the test PostgreSQL whose link can be cut and restored: a
// node (in this process or a child) that connects through it loses the database on cut(), its
// session (and so its advisory lock) included, exactly as a partitioned host would.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after } from 'node:test';

export async function cuttableLink(pgUrl: string): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const u = new URL(pgUrl);
  const realDir = u.searchParams.get('host')!;
  const dir = mkdtempSync('/tmp/pt-pglink-');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = `${dir}/.s.PGSQL.5432`;
  const live = new Set<Socket>();
  let server: Server | undefined;
  const listen = () => new Promise<void>((resolve) => {
    server = createServer((s) => {
      const up = createConnection(`${realDir}/.s.PGSQL.5432`);
      live.add(s); live.add(up);
      s.pipe(up); up.pipe(s);
      const close = () => { s.destroy(); up.destroy(); live.delete(s); live.delete(up); };
      s.on('error', close); up.on('error', close); s.on('close', close); up.on('close', close);
    });
    server.listen(path, resolve);
  });
  await listen();
  after(() => { for (const s of live) s.destroy(); server?.close(); });
  u.searchParams.set('host', dir);
  return {
    url: u.toString(),
    cut: async () => { const closed = new Promise<void>((r) => server!.close(() => r())); for (const s of live) s.destroy(); await closed; },
    restore: listen,
  };
}
