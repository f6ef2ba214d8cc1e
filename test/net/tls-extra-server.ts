// An extra fake service for the TLS interception tests, run inside the topology's inet
// namespace: TLS on ip:port with the topology's certificate, logging every decrypted chunk
// (before answering) as JSON lines, so a test proves what reached the server. It answers a
// WebSocket upgrade with 101 (then stays silent), an HTTP request with 200, anything else with
// a Stratum-like JSON line.
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import tls from 'node:tls';

const [ip, port, keyPath, certPath, logPath] = process.argv.slice(2) as [string, string, string, string, string];
const log = (o: Record<string, unknown>) => appendFileSync(logPath, JSON.stringify({ ts: Date.now(), ...o }) + '\n');
let conn = 0;
const server = tls.createServer({ key: readFileSync(keyPath), cert: readFileSync(certPath), ALPNProtocols: ['http/1.1'] }, (s) => {
  const id = ++conn; let upgraded = false; let bytes = 0;
  log({ event: 'connection', conn: id });
  s.on('data', (d: Buffer) => {
    bytes += d.length;
    log({ event: 'data', conn: id, bytes: d.length, text: d.toString('latin1').slice(0, 400) });
    const t = d.toString('latin1');
    if (!upgraded && /^GET [^\r\n]+\r\n/.test(t) && /upgrade: websocket/i.test(t)) {
      upgraded = true;
      const key = /sec-websocket-key: *(\S+)/i.exec(t)?.[1] ?? '';
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC11B85').digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    } else if (!upgraded && /^[A-Z]+ [^\r\n]+ HTTP\/1\.1\r\n/.test(t)) {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
    } else if (!upgraded) s.write('{"id":1,"result":true,"error":null}\n');
  });
  s.on('error', () => {});
  s.on('close', () => log({ event: 'close', conn: id, bytesIn: bytes }));
});
server.on('tlsClientError', (e) => log({ event: 'tls-error', error: e.message }));
server.listen(Number(port), ip, () => { process.stdout.write('listening\n'); });
setTimeout(() => process.exit(0), 30 * 60_000).unref();
