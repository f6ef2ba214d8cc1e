// Fake Stratum mining pool (stratum v1 and the XMRig/Monero `login` dialect) on 3333 and 443.
// Every byte received is logged per connection before anything is parsed, so a test can prove
// that none of a mining handshake got through the gateway.
import { createServer, type Server } from 'node:net';
import { createHash } from 'node:crypto';
import { listen } from './http.ts';
import { counter, head, trackConnection, type Logger } from './log.ts';

type Msg = { id?: unknown; method?: unknown; params?: unknown };

function reply(msg: Msg): unknown[] {
  const id = msg.id ?? null;
  switch (msg.method) {
    case 'mining.subscribe':
      return [{ id, result: [[['mining.set_difficulty', 'pt1'], ['mining.notify', 'pt1']], '08000002', 4], error: null }];
    case 'mining.authorize':
      return [
        { id, result: true, error: null },
        { id: null, method: 'mining.set_difficulty', params: [1] },
        { id: null, method: 'mining.notify', params: ['pt-job-1', '00'.repeat(32), '01', '02', [], '20000000', '1d00ffff', '5f5e1000', true] },
      ];
    case 'mining.extranonce.subscribe':
    case 'mining.submit':
      return [{ id, result: true, error: null }];
    case 'login':
      return [{
        id, jsonrpc: '2.0', error: null,
        result: { id: 'pt-worker', status: 'OK', extensions: ['algo', 'keepalive'], job: { blob: '07'.repeat(76), job_id: 'pt-job-1', target: 'b88d0600', algo: 'rx/0', height: 1, seed_hash: '00'.repeat(32) } },
      }];
    case 'submit':
      return [{ id, jsonrpc: '2.0', error: null, result: { status: 'OK' } }];
    case 'keepalived':
      return [{ id, jsonrpc: '2.0', error: null, result: { status: 'KEEPALIVED' } }];
    default:
      return [{ id, result: null, error: [20, 'unknown method', null] }];
  }
}

export async function startStratum(log: Logger, ip: string, ports: readonly number[]): Promise<Server[]> {
  const next = counter();
  const servers: Server[] = [];
  for (const port of ports) {
    const server = createServer((socket) => {
      const conn = trackConnection(log, socket, next);
      let pending = '';
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        log('data', { conn, port, bytes: chunk.length, text: head(chunk), hex: chunk.subarray(0, 64).toString('hex'), sha256: createHash('sha256').update(chunk).digest('hex') });
        pending += chunk.toString('utf8');
        // Bounded: a line longer than 64 KiB is not stratum; drop it instead of buffering forever.
        if (pending.length > 65536) pending = '';
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          let msg: Msg;
          try { msg = JSON.parse(line) as Msg; } catch { log('garbage', { conn, port, line: line.slice(0, 512) }); continue; }
          log('method', { conn, port, method: msg.method, params: msg.params, id: msg.id });
          for (const r of reply(msg)) socket.write(JSON.stringify(r) + '\n');
        }
      });
    });
    await listen(server, ip, port);
    servers.push(server);
  }
  return servers;
}
