// E2B's egress options through the official SDK, enforced by Praetor's egress gateway: a request
// narrows the tenant's policy and never widens it. `praetor serve --e2b-port` runs inside the
// test topology's host namespace (no route off the machine) and the SDK runs there too, from a
// small driver script; sandboxes reach the fake internet's web server only where the tenant's
// ceiling and the request both allow it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { serveInHost } from '../topology/serve.ts';
import { createTopology, type Topology } from '../topology/index.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_PORT = 17191; const E2B_PORT = 17192;

// The tenant's ceiling: two names on the fake web server, nothing else.
const TENANTS = { tenants: { team: { policy: { network: { allow: [
  { domain: 'web.example.test', ports: [80] },
  { domain: 'api.example.test', ports: [80] },
] } } } } };

// Runs in the host namespace: one sandbox per case, curl to three names, results as JSON.
const DRIVER = `
import { Sandbox } from 'e2b';
const cases = JSON.parse(process.argv[1]);
const out = {};
for (const [name, opts] of Object.entries(cases)) {
  const sb = await Sandbox.create(opts);
  const codes = {};
  for (const host of ['web.example.test', 'api.example.test', 'pkgs.example.test']) {
    const r = await sb.commands.run(\`curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://\${host}/ || true\`);
    codes[host] = r.stdout.trim();
  }
  out[name] = codes;
  await sb.kill();
}
process.stdout.write(JSON.stringify(out));
`;

let t: Topology; let dir: string; let token: string; let stopServer: (() => Promise<void>) | undefined;

before(async () => {
  t = await createTopology({ servers: ['web', 'dns'] });
  dir = mkdtempSync('/tmp/pt-test-e2b-net-');
  mkdirSync(`${dir}/state/server`, { recursive: true });
  writeFileSync(`${dir}/state/server/tenants.json`, JSON.stringify(TENANTS));
  const tok = await t.execInHost(PRAETOR, ['token', 'create', '--tenant', 'team', '--state', `${dir}/state`]);
  assert.equal(tok.code, 0, tok.stderr);
  token = tok.stdout.trim().split('\n').at(-1)!;
  ({ stop: stopServer } = await serveInHost(t, ['--port', String(API_PORT), '--e2b-port', String(E2B_PORT), '--state', `${dir}/state`, '--no-detect'], `http://127.0.0.1:${E2B_PORT}/health`));
});

after(async () => {
  await stopServer?.();
  await t?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('allowInternetAccess and allowOut/denyOut narrow the tenant\'s egress policy, never widen it', async () => {
  const cases = {
    ceiling: {},
    internetTrue: { allowInternetAccess: true },
    closed: { allowInternetAccess: false },
    closedButApi: { allowInternetAccess: false, network: { allowOut: ['api.example.test', 'pkgs.example.test'] } },
    allowOnlyForm: { network: { denyOut: ['0.0.0.0/0'], allowOut: ['web.example.test'] } },
    wideningIgnored: { network: { allowOut: ['pkgs.example.test', '0.0.0.0/0'] } },
    denyByAddress: { network: { denyOut: ['203.0.113.10'] } },
  };
  const url = `http://127.0.0.1:${E2B_PORT}`;
  const r = await t.execInHost(NODE, ['--input-type=module', '-e', DRIVER, JSON.stringify(cases)], {
    cwd: ROOT, timeoutMs: 240_000, env: { ...process.env, E2B_API_URL: url, E2B_SANDBOX_URL: url, E2B_API_KEY: token },
  });
  assert.equal(r.code, 0, r.stderr);
  const codes = JSON.parse(r.stdout) as Record<string, Record<string, string>>;
  // Denied is the gateway's own 403 (a name outside the policy) or no connection at all (000:
  // no network, or a denied address); only 200 came from the web server.
  for (const c of Object.values(codes)) for (const v of Object.values(c)) assert.ok(['200', '403', '000'].includes(v), JSON.stringify(codes));
  const got = Object.fromEntries(Object.entries(codes).map(([k, c]) => [k, Object.fromEntries(Object.entries(c).map(([h, v]) => [h, v === '200']))]));
  const ok = true; const no = false;
  const want = (web: boolean, api: boolean) => ({ 'web.example.test': web, 'api.example.test': api, 'pkgs.example.test': no });
  assert.deepEqual(got, {
    ceiling: want(ok, ok),
    internetTrue: want(ok, ok),
    closed: want(no, no),
    closedButApi: want(no, ok),
    allowOnlyForm: want(ok, no),
    wideningIgnored: want(ok, ok),
    denyByAddress: want(no, no),
  });
  // The fake web server saw no request for a name the sandbox was not allowed.
  const hosts = (await t.log('web')).filter((e) => e.event === 'request').map((e) => String((e as { headers?: Record<string, string> }).headers?.host ?? ''));
  assert.equal(hosts.filter((h) => h.startsWith('pkgs.')).length, 0);
  assert.equal(hosts.filter((h) => h.startsWith('web.')).length, 4, `web.example.test reached only where allowed: ${hosts.join(',')}`);
  assert.equal(hosts.filter((h) => h.startsWith('api.')).length, 4, `api.example.test reached only where allowed: ${hosts.join(',')}`);
});
