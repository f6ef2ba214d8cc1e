// The TypeScript SDK against a real server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { PraetorApiError, PraetorClient } from '../../src/sdk/index.ts';
import { startTestServer } from './helpers.ts';

const t = await startTestServer();
const c = new PraetorClient({ url: t.url, token: t.token('sdk') });
const other = new PraetorClient({ url: t.url, token: t.token('sdk-other') });

test('sandbox lifecycle, exec, streaming exec, sessions, files', async () => {
  const sb = await c.createSandbox({ memory: '256m' });
  assert.equal((await c.exec(sb.id, 'echo $((6*7))')).stdout, '42\n');
  const chunks: string[] = [];
  const exit = await c.execStream(sb.id, ['/bin/sh', '-c', 'echo a; sleep 0.1; echo b >&2; exit 5'], { stdout: (s) => chunks.push(s), stderr: (s) => chunks.push(`E:${s}`) });
  assert.equal(exit.exit_code, 5);
  assert.deepEqual(chunks, ['a\n', 'E:b\n']);
  await c.openSession(sb.id, 's1');
  await c.runInSession(sb.id, 's1', 'cd /tmp');
  assert.equal((await c.runInSession(sb.id, 's1', 'pwd')).output, '/tmp\n');
  assert.equal((await c.runInSession(sb.id, 's1', 'cat', 20_000, 'piped')).output, 'piped');
  await c.writeFile(sb.id, '/tmp/f.txt', 'content');
  assert.equal(await c.readFile(sb.id, '/tmp/f.txt'), 'content');
  await c.upload(sb.id, '/tmp/b.bin', new Uint8Array([9, 0, 8]));
  assert.deepEqual([...await c.download(sb.id, '/tmp/b.bin')], [9, 0, 8]);
  await assert.rejects(other.exec(sb.id, 'id'), (e: unknown) => e instanceof PraetorApiError && e.status === 404 && e.code === 'NOT_FOUND');
  await c.deleteSandbox(sb.id);
  await assert.rejects(c.getSandbox(sb.id), (e: unknown) => e instanceof PraetorApiError && e.status === 404);
});

test('episodes: step, batch, reward, report', async () => {
  const ep = await c.createEpisode({ task: 't' });
  const r = await c.step(ep.episode_id, { tool: 'bash', arguments: { command: 'echo ok' } });
  assert.equal(r.observation, 'ok\n');
  assert.equal(r.safety.verdict, 'allow');
  const [b] = await c.stepBatch([{ episode_id: ep.episode_id, action: { tool: 'read_file', arguments: { path: '/etc/hostname' } } }]);
  assert.ok(b && 'observation' in b);
  await c.reward(ep.episode_id, 1, { step: 1 });
  assert.equal((await c.report(ep.episode_id)).recommended_training_action, 'keep');
  assert.equal((await c.endEpisode(ep.episode_id)).status, 'closed');
});

test('execStream rejects when the socket closes without an exit or error frame', async () => {
  // A server that accepts the upgrade, then closes cleanly (code 1001) without a word.
  const srv = createServer();
  const socks: Array<{ destroy(): void }> = [];
  srv.on('upgrade', (req, sock) => {
    socks.push(sock);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    sock.end(Buffer.from([0x88, 0x02, 0x03, 0xe9]));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as { port: number }).port;
    const gone = new PraetorClient({ url: `http://127.0.0.1:${port}`, token: 't' });
    const err = await gone.execStream('sb', 'true').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PraetorApiError, String(err));
    assert.equal(err.code, 'WEBSOCKET');
    assert.match(err.message, /closed before the command ended/);
  } finally { for (const s of socks) s.destroy(); await new Promise((r) => srv.close(r)); }
});
