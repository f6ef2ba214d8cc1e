// One process for all the Node fake servers of a topology, run inside the inet namespace:
// `ip netns exec <inet> node main.ts <config.json>`. Prints READY once every server listens.
// It exits when its parent goes away (stdin closes; the parent also sets PDEATHSIG), and after
// a hard lifetime limit, so no fake server can outlive its test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVERS } from '../addresses.ts';
import { internalHandler, metadataHandler, startHttp, webHandler } from './http.ts';
import { startDns } from './dns.ts';
import { startJsonRpc } from './jsonrpc.ts';
import { openLogger } from './log.ts';
import { startSink } from './sink.ts';
import { startStratum } from './stratum.ts';
import { startTls } from './tls.ts';

interface Config {
  dir: string;
  servers: string[];
  tlsKey: string;
  tlsCert: string;
  records: Record<string, string>;
  maxLifetimeMs: number;
}

const config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Config;
const logger = (name: string) => openLogger(join(config.dir, `${name}.jsonl`), name);

process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
setTimeout(() => process.exit(0), config.maxLifetimeMs).unref();
// A hostile client (that is what scenarios are) must not take every fake server down with it.
process.on('uncaughtException', (err) => process.stderr.write(`fake servers: ${err.stack ?? err}\n`));

const starters: Record<string, () => Promise<unknown>> = {
  web: () => startHttp(logger('web'), SERVERS.web.ip, SERVERS.web.port, webHandler(SERVERS.web.name)),
  internal: () => startHttp(logger('internal'), SERVERS.internal.ip, SERVERS.internal.port, internalHandler()),
  metadata: () => startHttp(logger('metadata'), SERVERS.metadata.ip, SERVERS.metadata.port, metadataHandler()),
  tls: () => startTls(logger('tls'), SERVERS.tls.ip, SERVERS.tls.port, SERVERS.tls.name, config.tlsKey, config.tlsCert),
  stratum: () => startStratum(logger('stratum'), SERVERS.stratum.ip, SERVERS.stratum.ports),
  jsonrpc: () => startJsonRpc(logger('jsonrpc'), SERVERS.jsonrpc.ip, SERVERS.jsonrpc.port),
  sink: () => startSink(logger('sink'), SERVERS.sink.ip, SERVERS.sink.ports),
  dns: () => startDns(logger('dns'), SERVERS.dns.ip, SERVERS.dns.port, config.records),
};

try {
  await Promise.all(config.servers.filter((s) => starters[s]).map((s) => starters[s]!()));
  process.stdout.write('READY\n');
} catch (err) {
  process.stdout.write(`ERROR ${(err as Error).message}\n`);
  process.exit(1);
}
