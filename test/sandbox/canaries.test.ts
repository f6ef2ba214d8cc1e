// Canary credentials in real sandboxes: planted in each new sandbox's home and environment,
// random per sandbox, absent with `canaries: false`, handed to the network provider (the egress
// gateway) as egressTokens, and never carried in clear by any event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBus, type PraetorEvent } from '../../src/events/index.ts';
import type { SandboxNetworkProvider, SandboxSpec } from '../../src/sandbox/index.ts';
import { sha256Hex } from '../../src/sandbox/canary-values.ts';
import { openManager, sh } from './helpers.ts';

type Token = { name: string; value: string; kind: 'canary' | 'placeholder' };
const handed = new Map<string, readonly Token[]>();
// Stands in for the gateway: records what it is given and attaches nothing (the sandbox keeps
// only lo), which is all this test needs of it.
const recorder: SandboxNetworkProvider = {
  async prepare(id: string, _spec: SandboxSpec, extra?: { egressTokens?: readonly Token[] }) {
    handed.set(id, extra?.egressTokens ?? []);
    return undefined;
  },
};
const bus = new EventBus();
const events: PraetorEvent[] = [];
bus.subscribe((e) => events.push(e));
const m = await openManager({ bus, network: recorder });

const READ = 'cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.netrc; printf "ENV=%s\\n" "$AWS_SECRET_ACCESS_KEY"; stat -c "%U %a %n" ~/.ssh ~/.ssh/id_ed25519 ~/.aws/credentials ~/.netrc';

test('each sandbox gets its own canaries; the gateway gets their values; events only hashes', async () => {
  const a = await m.create({});
  const b = await m.create({});
  const ra = await a.exec(sh(READ));
  const rb = await b.exec(sh(READ));
  assert.equal(ra.code, 0, ra.stderr);
  assert.match(ra.stdout, /agent 700 \/home\/agent\/\.ssh\n/);
  assert.match(ra.stdout, /agent 600 \/home\/agent\/\.ssh\/id_ed25519\n/);
  assert.match(ra.stdout, /-----BEGIN OPENSSH PRIVATE KEY-----/);
  const ta = handed.get(a.id) ?? [];
  const tb = handed.get(b.id) ?? [];
  assert.ok(ta.length >= 6, `tokens handed to the gateway: ${ta.map((t) => t.name)}`);
  for (const t of ta) {
    assert.equal(t.kind, 'canary');
    assert.ok(ra.stdout.includes(t.value), `${t.name} is what sandbox A holds`);
    assert.ok(!rb.stdout.includes(t.value), `${t.name} differs in sandbox B`);
  }
  for (const t of tb) assert.ok(rb.stdout.includes(t.value), `${t.name} is what sandbox B holds`);
  const created = events.find((e) => e.kind === 'sandbox.created' && e.sandboxId === a.id);
  assert.ok(created?.kind === 'sandbox.created' && created.canaries, 'sandbox.created lists the canaries');
  const hashes = new Set(created.canaries.flatMap((c) => c.sha256));
  for (const t of ta) assert.ok(hashes.has(sha256Hex(t.value)), `${t.name} is recognisable by its hash`);
  const all = JSON.stringify(events);
  for (const t of [...ta, ...tb]) assert.ok(!all.includes(t.value), `${t.name} never in an event`);
  assert.deepEqual(a.canaries.map((c) => c.name).sort(), ['aws-credentials', 'env', 'netrc', 'ssh-key']);
  assert.equal(a.canaryAt('/home/agent/.aws/credentials'), 'aws-credentials');
  assert.equal(a.canaryAt('/home/agent/.aws/config'), undefined);
});

test('canaries: false plants nothing and hands nothing over; a task variable is never shadowed', async () => {
  const off = await m.create({ canaries: false });
  const r = await off.exec(sh('ls -A ~; echo "ENV=${AWS_SECRET_ACCESS_KEY-unset}"'));
  assert.equal(r.stdout, 'ENV=unset\n');
  assert.deepEqual(handed.get(off.id), []);
  assert.deepEqual(off.canaries, []);
  const created = events.find((e) => e.kind === 'sandbox.created' && e.sandboxId === off.id);
  assert.ok(created?.kind === 'sandbox.created' && created.canaries === undefined);

  const own = await m.create({ env: { AWS_ACCESS_KEY_ID: 'AKIAREALTASKKEY00000' } });
  const o = await own.exec(sh('echo "ENV=${AWS_SECRET_ACCESS_KEY-unset}"; test -f ~/.aws/credentials && echo file'));
  assert.equal(o.stdout, 'ENV=unset\nfile\n', 'no canary secret beside the task\'s own AWS key id; the file canary stays');
});

test('an image\'s own credential files are never replaced, and its symlinks are never followed', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, readFileSync, existsSync, rmSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const d = mkdtempSync('/tmp/pt-canary-img-');
  try {
    mkdirSync(`${d}/root/home/agent/.aws`, { recursive: true });
    writeFileSync(`${d}/root/home/agent/.aws/credentials`, 'REAL-AWS\n');
    writeFileSync(`${d}/root/home/agent/.netrc`, 'machine real.example.test login me password REAL\n');
    // A hostile image: its .ssh points at the host's /tmp scratch dir; planting through it
    // would write a key outside the sandbox.
    const outside = `${d}/outside`;
    mkdirSync(outside);
    symlinkSync(outside, `${d}/root/home/agent/.ssh`);
    assert.equal(spawnSync('tar', ['-cf', `${d}/img.tar`, '-C', `${d}/root`, '.']).status, 0);
    await m.images.import(`${d}/img.tar`, 'canary-clobber');
    const sb = await m.create({ image: 'canary-clobber' });
    const merged = `${m.stateDir}/sandboxes/${sb.id}/root/home/agent`;
    assert.equal(readFileSync(`${merged}/.aws/credentials`, 'utf8'), 'REAL-AWS\n');
    assert.match(readFileSync(`${merged}/.netrc`, 'utf8'), /REAL/);
    assert.ok(!existsSync(`${outside}/id_ed25519`), 'nothing written through the image\'s symlink');
    assert.deepEqual(sb.canaries.map((c) => c.name), ['env'], 'only the environment canary had a free place');
    await sb.destroy();
  } finally { rmSync(d, { recursive: true, force: true }); }
});
