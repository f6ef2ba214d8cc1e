// network.modelGateway end to end, inside the test topology: `praetor serve` runs in the
// topology's host namespace with a fake OpenAI upstream beside it on the host's address. An
// episode's sandbox reaches its model only as http://model.praetor.internal/v1 (no token inside
// the sandbox; the upstream key is added by Praetor), the upstream itself is denied to it even
// though a CIDR rule names it, the rest of the API is not served there, and the call is in the
// episode's trace. Everything runs in namespaces with no route out.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { serveInHost } from '../topology/serve.ts';
import { createTopology, HOST_IP, type Topology } from '../topology/index.ts';

const PRAETOR = fileURLToPath(new URL('../../bin/praetor', import.meta.url));
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const UP_PORT = 18080; const API_PORT = 17171;
const UPSTREAM_KEY = 'upstream-secret-key';

// The fake upstream logs every request (path, authorization, body) as a JSON line.
const UPSTREAM = `
const http = require('node:http'); const fs = require('node:fs');
http.createServer((req, res) => {
  let b = ''; req.on('data', (c) => b += c); req.on('end', () => {
    fs.appendFileSync(process.argv[1], JSON.stringify({ path: req.url, auth: req.headers.authorization ?? null, body: b }) + '\\n');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'c1', choices: [{ message: { role: 'assistant', content: 'run: echo from-the-model' } }], usage: { prompt_tokens: 7, completion_tokens: 4 } }));
  });
}).listen(${UP_PORT}, '${HOST_IP}');`;

let t: Topology; let dir: string; let token: string; let stopServer: (() => Promise<void>) | undefined;

before(async () => {
  t = await createTopology({ servers: ['dns'] });
  dir = mkdtempSync('/tmp/pt-test-modelgw-');
  t.spawnInHost(NODE, ['-e', UPSTREAM, `${dir}/upstream.log`], { stdio: 'ignore' });
  const tok = await t.execInHost(PRAETOR, ['token', 'create', '--tenant', 'team', '--state', `${dir}/state`]);
  assert.equal(tok.code, 0, tok.stderr);
  token = tok.stdout.trim().split('\n').at(-1)!;
  ({ stop: stopServer } = await serveInHost(t, ['--port', String(API_PORT), '--state', `${dir}/state`, '--no-detect', '--model-upstream', `http://${HOST_IP}:${UP_PORT}/v1`], `http://127.0.0.1:${API_PORT}/healthz`, { env: { ...process.env, PRAETOR_MODEL_API_KEY: UPSTREAM_KEY } }));
});

after(async () => {
  await stopServer?.();
  // The `praetor run` case started a resident guard (with its warm pool) in the host namespace:
  // stop it before the namespace goes, or its pool sandboxes' cgroups are left behind.
  if (t && dir) { try { await t.execInHost(PRAETOR, ['daemon', 'stop', '--state', `${dir}/run-state`], { timeoutMs: 60_000 }); } catch { /* teardown kills it */ } }
  await t?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const args = ['-s', '-m', '60', '-X', method, '-H', `authorization: Bearer ${token}`, '-w', '\n%{http_code}', `http://127.0.0.1:${API_PORT}${path}`];
  if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
  const r = await t.execInHost('curl', args, { timeoutMs: 70_000 });
  const nl = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, nl);
  return { status: Number(r.stdout.slice(nl + 1)), json: text ? JSON.parse(text) : undefined };
}

const bash = async (ep: string, command: string) => {
  const r = await api('POST', `/v1/episodes/${ep}/step`, { action: { tool: 'bash', arguments: { command } } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as { observation: string; exit_code: number };
};

test('a sandbox reaches its model only through the model gateway, and the call is traced', async () => {
  const policy = { network: { modelGateway: true, allow: [{ cidr: `${HOST_IP}/32`, ports: [UP_PORT] }] } };
  const created = await api('POST', '/v1/episodes', { task: 'model-gateway', policy });
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const ep = created.json.episode_id as string;

  // The OpenAI client settings point at the gateway; no upstream key is inside the sandbox.
  const env = await bash(ep, 'echo "$OPENAI_BASE_URL"; env');
  assert.match(env.observation, /^http:\/\/model\.praetor\.internal\/v1\n/);
  assert.ok(!env.observation.includes(UPSTREAM_KEY), 'the upstream key never enters the sandbox');

  // The gateway's resolver answers the name too (clients that skip /etc/hosts), with its own address.
  const dns = await bash(ep, `python3 -c '
import socket, struct
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in "model.praetor.internal".split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(q, (ns, 53)); r = s.recv(512)
print(ns, socket.inet_ntoa(r[-4:]))'`);
  const [ns, answer] = dns.observation.trim().split(' ');
  assert.equal(answer, ns, dns.observation);

  const chat = await bash(ep, `curl -s -m 10 -H 'content-type: application/json' -d '{"model":"m1","messages":[{"role":"user","content":"hi"}]}' "$OPENAI_BASE_URL/chat/completions"`);
  assert.match(chat.observation, /from-the-model/, chat.observation);
  const seen = readFileSync(`${dir}/upstream.log`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string; auth: string | null });
  assert.equal(seen.length, 1);
  assert.deepEqual([seen[0]!.path, seen[0]!.auth], ['/v1/chat/completions', `Bearer ${UPSTREAM_KEY}`]);

  // The same upstream, dialled directly: denied although the CIDR rule names it.
  const direct = await bash(ep, `curl -s -m 5 -o /dev/null -w '%{http_code}' -d '{}' http://${HOST_IP}:${UP_PORT}/v1/chat/completions; echo " exit=$?"`);
  assert.doesNotMatch(direct.observation, /^200/, direct.observation);
  assert.equal(readFileSync(`${dir}/upstream.log`, 'utf8').trim().split('\n').length, 1, 'nothing reached the upstream directly');

  // The rest of the Praetor API is not served on the sandbox's side.
  const other = await bash(ep, `curl -s -m 5 -w ' %{http_code}' "$OPENAI_BASE_URL/../v1/sandboxes"`);
  assert.match(other.observation, / 404$/, other.observation);

  assert.equal((await api('DELETE', `/v1/episodes/${ep}`)).status, 200);
  const tr = await t.execInHost(PRAETOR, ['trace', ep, '--json', '--state', `${dir}/state`]);
  assert.equal(tr.code, 0, tr.stderr);
  const flat: Array<{ kind: string; event: Record<string, unknown>; children: unknown[] }> = [];
  const walk = (n: { kind: string; event: Record<string, unknown>; children: unknown[] }) => { flat.push(n); (n.children as typeof flat).forEach(walk); };
  const trace = JSON.parse(tr.stdout) as { steps: Array<{ calls: typeof flat }>; unlinked: typeof flat };
  for (const s of trace.steps) s.calls.forEach(walk);
  trace.unlinked.forEach(walk);
  const calls = flat.filter((n) => n.kind === 'model.call');
  assert.equal(calls.length, 1, JSON.stringify(flat.map((n) => n.kind)));
  assert.deepEqual([calls[0]!.event.via, calls[0]!.event.model, calls[0]!.event.promptTokens, calls[0]!.event.episodeId], ['sandbox', 'm1', 7, ep]);
  const flows = flat.filter((n) => n.kind === 'net.flow').map((n) => n.event);
  assert.ok(flows.some((f) => f.domain === 'model.praetor.internal' && f.decision === 'allow'), JSON.stringify(flows));
  assert.ok(flows.some((f) => f.dstIp === HOST_IP && f.decision === 'deny' && f.rule === 'model-gateway-only'), JSON.stringify(flows));
});

test('a policy asking for the model gateway fails clearly where there is none', async () => {
  writeFileSync(`${dir}/model-policy.yaml`, 'network:\n  modelGateway: true\n');
  const r = await t.execInHost(PRAETOR, ['run', '--state', `${dir}/run-state`, '--policy', `${dir}/model-policy.yaml`, '--', 'true']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /modelGateway.*no model gateway|praetor serve --model-upstream/s, r.stderr);
});
