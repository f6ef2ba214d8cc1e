// `praetor serve`: the HTTP + WebSocket API in the foreground until SIGINT/SIGTERM, then every
// sandbox it created is destroyed and the ledger flushed.
import { existsSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import { startServer } from '../server/app.ts';
import { parseSize } from '../util/size.ts';
import { parseFlags, parseNumberFlag, say, stateDir } from './common.ts';

const USAGE = `praetor serve [--host H] [--port P] [--state DIR] [--db URL] [--body-limit SIZE]

  --host H            listen address (default 127.0.0.1)
  --port P            port (default 7070; 0 picks a free one)
  --state DIR         state directory (default $PRAETOR_STATE or /var/lib/praetor)
  --db PATH|URL       ledger: SQLite path or postgres:// URL (default the state directory's)
  --body-limit SIZE   largest request body (default 16m)
  --policy FILE       guard policy for every sandbox (tenants' defaults sit under it)
  --model-upstream URL  OpenAI-compatible upstream for /v1/chat/completions
  --image-alias NAME=IMAGE  answer requests for image NAME with IMAGE (an imported image or
                      host); repeatable. E.g. --image-alias python:3.11=host for ROCK's SDK
  --no-detect         no sensors and rules (benchmarks only)
  --e2b-port P        also serve the E2B-compatible API (control plane + envd) on port P
                      (set E2B_API_URL and E2B_SANDBOX_URL to http://HOST:P, E2B_API_KEY to a token)
  --e2b-template T=I  map E2B template T to Praetor image I (repeatable; base=host by default)
  --e2b-keepalive S   longest gap, in seconds, between keepalives on E2B command streams

Create tokens with: praetor token create --tenant NAME [--admin]`;

export async function main(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, {
    'e2b-port': { type: 'string' }, 'e2b-template': { type: 'string', multiple: true }, 'e2b-keepalive': { type: 'string' },
    host: { type: 'string' }, port: { type: 'string' }, state: { type: 'string' }, db: { type: 'string' },
    'body-limit': { type: 'string' }, policy: { type: 'string' }, 'model-upstream': { type: 'string' }, 'no-detect': { type: 'boolean' },
    'image-alias': { type: 'string', multiple: true },
  }, USAGE);
  const imageAliases = parseImageAliases(v['image-alias'] ?? []);
  const port = parseNumberFlag('port', v.port, { int: true, min: 0 }) ?? 7070;
  if (port > 65535) throw new PraetorError('BAD_ARGUMENT', `--port ${port} is not a port`, { hint: 'use 1-65535, or 0 for any free port' });
  const e2bPort = parseNumberFlag('e2b-port', v['e2b-port'], { int: true, min: 0 });
  if (e2bPort !== undefined && e2bPort > 65535) throw new PraetorError('BAD_ARGUMENT', `--e2b-port ${e2bPort} is not a port`, { hint: 'use 1-65535, or 0 for any free port' });
  const templates: Record<string, string> = {};
  for (const t of v['e2b-template'] ?? []) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(t);
    if (!m) throw new PraetorError('BAD_ARGUMENT', `--e2b-template ${t} is not TEMPLATE=IMAGE`, { hint: 'for example --e2b-template base=debian' });
    templates[m[1]!] = m[2]!;
  }
  const keepalive = parseNumberFlag('e2b-keepalive', v['e2b-keepalive'], { min: 0.1 });
  if (e2bPort === undefined && (keepalive !== undefined || Object.keys(templates).length > 0)) throw new PraetorError('BAD_ARGUMENT', '--e2b-template and --e2b-keepalive need --e2b-port', { hint: 'add --e2b-port PORT' });
  const state = stateDir(v.state);
  if (v.policy && !existsSync(v.policy)) throw new PraetorError('BAD_POLICY', `no policy file ${v.policy}`, { hint: 'pass an existing YAML file' });
  const upstream = v['model-upstream'] ?? process.env.PRAETOR_MODEL_UPSTREAM;
  const server = await startServer({
    host: v.host ?? '127.0.0.1', port, stateDir: state, db: v.db,
    ...(e2bPort !== undefined ? { e2b: { port: e2bPort, templates, ...(keepalive !== undefined ? { keepaliveMs: keepalive * 1000 } : {}) } } : {}),
    ...(v['body-limit'] ? { bodyLimit: parseSize(v['body-limit'], '--body-limit') } : {}),
    ...(v.policy ? { policyFile: v.policy } : {}),
    ...(upstream ? { model: { upstream, ...(process.env.PRAETOR_MODEL_API_KEY ? { apiKey: process.env.PRAETOR_MODEL_API_KEY } : {}) } } : {}),
    detect: !v['no-detect'],
    imageAliases,
    log: say,
  });
  const tokens = server.core.tokens.count;
  process.stdout.write(`praetor: serving on ${server.url} (state ${state}, ledger ${server.core.ledger?.location ?? 'off'})\n`);
  if (server.e2b) process.stdout.write(`praetor: E2B API on ${server.e2b.url} (E2B_API_URL and E2B_SANDBOX_URL)\n`);
  if (tokens === 0) say(`no tokens yet: create one with \`praetor token create --tenant NAME --state ${state}\``);
  for (const d of server.core.guard.degraded()) say(`degraded: ${d}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => { say(`${sig}: shutting down`); resolve(); };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await server.close();
  return 0;
}

function parseImageAliases(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(p);
    if (!m) throw new PraetorError('BAD_ARGUMENT', `--image-alias ${p} is not NAME=IMAGE`, { hint: 'e.g. --image-alias python:3.11=host' });
    out[m[1]!] = m[2]!;
  }
  return out;
}
