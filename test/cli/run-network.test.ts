// `praetor run --policy` end to end inside the test topology: praetor runs in the topology's
// host namespace (no way out), the sandbox reaches an allowed server by name through the
// gateway, and a miner on an allowed address is denied before a byte reaches the pool.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { createTopology } from '../topology/index.ts';

const PRAETOR = new URL('../../bin/praetor', import.meta.url).pathname;
const t = await createTopology();
const dir = mkdtempSync('/tmp/pt-test-runnet-');
// The runs go through a resident guard started in the topology's host namespace: stop it (by its
// pid file, from that namespace) before the namespace goes.
after(async () => {
  try { await t.execInHost(PRAETOR, ['daemon', 'stop', '--state', `${dir}/state`], { timeoutMs: 60_000 }); } finally {
    await t.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
});

writeFileSync(`${dir}/policy.yaml`, `
network:
  allow:
    - { domain: "web.example.test", ports: [80] }
    - { cidr: "203.0.113.20/32", ports: [3333] }
`);

function run(args: string[]) {
  return t.execInHost(PRAETOR, ['run', '--state', `${dir}/state`, ...args], { timeoutMs: 60_000 });
}

test('an allowed name is reachable through the gateway, and the flow is reported', async () => {
  const r = await run(['--policy', `${dir}/policy.yaml`, '--report', `${dir}/web.json`, '--', 'curl', '-s', '-m', '5', 'http://web.example.test/']);
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(readFileSync(`${dir}/web.json`, 'utf8'));
  const flow = rep.events.find((e: { kind: string; decision?: string }) => e.kind === 'net.flow' && e.decision === 'allow');
  assert.ok(flow, JSON.stringify(rep.events.filter((e: { kind: string }) => /net\.|alert/.test(e.kind))));
  assert.deepEqual(rep.alerts, [], 'a benign curl raises no alert');
  assert.equal(flow.protocol, 'http');
  assert.ok(rep.events.some((e: { kind: string; name?: string }) => e.kind === 'dns.query' && e.name === 'web.example.test'));
});

test('without a policy the sandbox has only lo', async () => {
  const r = await run(['--', 'sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'lo\n');
});

test('a Stratum login to an allowed address: denied, zero bytes delivered, contained', async () => {
  const before = (await t.log('stratum')).length;
  const r = await run(['--policy', `${dir}/policy.yaml`, '--report', `${dir}/mine.json`, '--', 'python3', '-c', `
import socket
s = socket.create_connection(("203.0.113.20", 3333), timeout=3)
s.sendall(b'{"id":1,"method":"login","params":{"login":"wallet","pass":"x","agent":"XMRig/6.21"}}\\n')
try:
    print("reply", s.recv(100))
except Exception as e:
    print("refused", e)
`]);
  const rep = JSON.parse(readFileSync(`${dir}/mine.json`, 'utf8'));
  const denied = rep.events.find((e: { kind: string; decision?: string; protocol?: string }) => e.kind === 'net.flow' && e.decision === 'deny' && e.protocol === 'stratum');
  assert.ok(denied, `stratum flow denied: ${r.stdout} ${r.stderr}`);
  const reached = (await t.log('stratum')).slice(before).filter((e) => e.event === 'data');
  assert.equal(reached.length, 0, 'not one byte of the handshake reached the pool');
  assert.ok(rep.alerts.some((a: { rule: string }) => /mining|stratum/i.test(a.rule)), JSON.stringify(rep.alerts.map((a: { rule: string }) => a.rule)));
});
