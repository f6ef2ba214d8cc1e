// Benchmark client, run inside a sandbox's (or praetor's own) namespace by bench/net.ts.
//   latency IP PORT COUNT   → {"samplesMs":[…]}: connect() to the first response byte of a tiny GET
//   bulk IP PORT BYTES      → {"bytes":n,"seconds":s}: one GET /bytes?n=BYTES, body discarded
// With PT_TLS_NAME (and PT_TLS_CA, a PEM file) the same over TLS to that name: IP is then
// ignored and the name is resolved once (through the namespace's resolver) before timing.
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';

const [mode, ipArg, portS, nS] = process.argv.slice(2);
const port = Number(portS); const n = Number(nS);
const tlsName = process.env.PT_TLS_NAME;
const ca = process.env.PT_TLS_CA ? readFileSync(process.env.PT_TLS_CA, 'utf8') : undefined;
const ip = tlsName ? (await lookup(tlsName, { family: 4 })).address : ipArg!;
const ctx = tlsName ? tls.createSecureContext({ ...(ca ? { ca } : {}) }) : undefined;

function once(path: string, onData: (d: Buffer) => boolean | void): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tlsName
      ? tls.connect({ host: ip, port, servername: tlsName, secureContext: ctx!, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: ip, port, noDelay: true });
    const timer = setTimeout(() => { s.destroy(); reject(new Error('timeout')); }, 120_000);
    s.on(tlsName ? 'secureConnect' : 'connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${tlsName ?? 'web.example.test'}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: Buffer) => { if (onData(d) === true) { s.destroy(); } });
    s.on('close', () => { clearTimeout(timer); resolve(); });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

if (mode === 'latency') {
  const samplesMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint(); let t1 = 0n;
    await once('/', () => { if (t1 === 0n) t1 = process.hrtime.bigint(); return true; });
    samplesMs.push(Number(t1 - t0) / 1e6);
  }
  process.stdout.write(JSON.stringify({ samplesMs }));
} else {
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  await once(`/bytes?n=${n}`, (d) => { bytes += d.length; });
  process.stdout.write(JSON.stringify({ bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
}
