import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { canaryAtPath, canaryLedgerRecords, normalisePath, plantCanaries } from './canaries.ts';
import { awsCanary, sha256Hex } from './canary-values.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function home(): string {
  const d = mkdtempSync(join(tmpdir(), 'pt-canary-'));
  dirs.push(d);
  return d;
}
const plant = (h: string, extra: Partial<Parameters<typeof plantCanaries>[0]> = {}) =>
  plantCanaries({ homeHost: h, home: '/home/agent', uid: 1000, envTaken: new Set(), comment: 'agent@sb-test', ...extra });

test('plants an SSH key that ssh-keygen accepts, AWS credentials, a .netrc and an env variable, owned by the agent', () => {
  const h = home();
  const p = plant(h);
  assert.deepEqual(p.records.map((r) => r.name).sort(), ['aws-credentials', 'env', 'netrc', 'ssh-key']);
  const key = `${h}/.ssh/id_ed25519`;
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.equal(statSync(key).uid, 1000);
  assert.equal(statSync(`${h}/.ssh`).mode & 0o777, 0o700);
  // Well-formed: OpenSSH derives the same public key from it as the planted .pub.
  const derived = execFileSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
  assert.equal(derived, readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' '));
  assert.match(readFileSync(`${h}/.aws/credentials`, 'utf8'), /^\[default\]\naws_access_key_id = AKIA[A-Z2-7]{16}\naws_secret_access_key = [A-Za-z0-9+/]{40}\n$/);
  assert.match(readFileSync(`${h}/.netrc`, 'utf8'), /machine artifacts\.internal\n {2}login deploy\n {2}password [A-Za-z0-9]{32}\n/);
  assert.match(p.env.AWS_SECRET_ACCESS_KEY ?? '', /^[A-Za-z0-9+/]{40}$/);
  // Every token is in the file (or the variable) it belongs to, and is hashed in its record.
  for (const t of p.egressTokens) assert.equal(t.kind, 'canary');
  const files = [key, `${h}/.aws/credentials`, `${h}/.netrc`].map((f) => readFileSync(f, 'utf8')).join('\n') + p.env.AWS_SECRET_ACCESS_KEY;
  for (const t of p.egressTokens) assert.ok(files.includes(t.value), t.name);
  assert.ok(p.egressTokens.filter((t) => t.name.startsWith('ssh-key#')).length >= 2, 'the key body yields tokens');
  const hashes = new Set(p.records.flatMap((r) => r.sha256));
  for (const t of p.egressTokens) assert.ok(hashes.has(sha256Hex(t.value)), t.name);
});

test('values differ per sandbox; records and ledger records carry no value', () => {
  const a = plant(home());
  const b = plant(home());
  const va = new Set(a.egressTokens.map((t) => t.value));
  for (const t of b.egressTokens) assert.ok(!va.has(t.value), `${t.name} differs`);
  const ledger = JSON.stringify(canaryLedgerRecords(a.records));
  const records = JSON.stringify(a.records);
  for (const t of a.egressTokens) {
    assert.ok(!ledger.includes(t.value), `${t.name} not in the ledger form`);
    assert.ok(!records.includes(t.value), `${t.name} not in the records`);
  }
  assert.ok(!ledger.includes('hostPath'), 'the host path stays out of the ledger');
});

test('never overwrites an existing file, never follows a symlinked directory', () => {
  const h = home();
  mkdirSync(`${h}/.aws`);
  writeFileSync(`${h}/.aws/credentials`, 'REAL');
  const outside = home();
  symlinkSync(outside, `${h}/.ssh`);
  writeFileSync(`${h}/.netrc`, 'machine real.example login me password REAL\n');
  const p = plant(h);
  assert.equal(readFileSync(`${h}/.aws/credentials`, 'utf8'), 'REAL');
  assert.ok(readFileSync(`${h}/.netrc`, 'utf8').includes('REAL'));
  assert.ok(!existsSync(`${outside}/id_ed25519`), 'nothing written through the symlink');
  assert.deepEqual(p.records.map((r) => r.name), ['env']);
});

test('the env canary never shadows a variable the task sets, nor joins its AWS credentials', () => {
  assert.deepEqual(plant(home(), { envTaken: new Set(['AWS_ACCESS_KEY_ID']) }).env, {});
  assert.deepEqual(plant(home(), { envTaken: new Set(['AWS_SECRET_ACCESS_KEY']) }).env, {});
  assert.ok(plant(home(), { envTaken: new Set(['PATH']) }).env.AWS_SECRET_ACCESS_KEY);
});

test('a symlinked home gets nothing', () => {
  const real = home();
  const link = `${home()}/home`;
  symlinkSync(real, link);
  assert.deepEqual(plant(link).records, []);
});

test('paths are recognised through //, ., .. and /proc/self/root, in the sandbox and host views', () => {
  const h = home();
  const p = plant(h, { values: [awsCanary()] });
  assert.equal(canaryAtPath(p.records, '/home/agent/.aws/credentials'), 'aws-credentials');
  assert.equal(canaryAtPath(p.records, '/home/agent//./.aws/../.aws/credentials'), 'aws-credentials');
  assert.equal(canaryAtPath(p.records, '/proc/self/root/home/agent/.aws/credentials'), 'aws-credentials');
  assert.equal(canaryAtPath(p.records, `${h}/.aws/credentials`), 'aws-credentials');
  assert.equal(canaryAtPath(p.records, '/home/agent/.aws/config'), undefined);
  assert.equal(normalisePath('/a/../../b'), '/b');
});
