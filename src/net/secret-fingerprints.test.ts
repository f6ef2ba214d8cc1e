import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { secretFingerprints } from './secret-fingerprints.ts';
import { tokensFor } from './token-scanner.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const bodyLines = rsa.split('\n').slice(1, -2);

const hit = (tokens: ReturnType<typeof secretFingerprints>['tokens'], domain: string | undefined, wire: string) =>
  tokensFor(tokens, domain)?.scanner('stream').feed(Buffer.from(wire)) ?? null;

test('a PEM key yields body lines that are found however the body is reshaped on the wire', () => {
  const fp = secretFingerprints('id_rsa', rsa);
  assert.ok(fp.tokens.length >= 2 && fp.tokens.length <= 3, `${fp.tokens.length} tokens`);
  for (const t of fp.tokens) { assert.ok(bodyLines.includes(t.value)); assert.equal(t.domains, undefined); }
  const stripped = bodyLines.join('');
  assert.ok(hit(fp.tokens, 'api.example.test', `POST /upload HTTP/1.1\r\n\r\n${stripped}`));
  assert.ok(hit(fp.tokens, 'api.example.test', Buffer.from(stripped).toString('base64')), 'base64 of the stripped body');
  assert.ok(hit(fp.tokens, undefined, JSON.stringify({ key: rsa })), 'JSON-escaped');
  assert.equal(fp.found.every((f) => /^[0-9a-f]{64}$/.test(f.sha256) && !JSON.stringify(f).includes(bodyLines[0]!)), true, 'the record holds hashes, never values');
});

test('a service-account JSON with an escaped PEM key is read like a PEM file', () => {
  const fp = secretFingerprints('sa.json', JSON.stringify({ type: 'service_account', private_key: rsa }));
  assert.ok(fp.tokens.length >= 2);
});

test('cloud, netrc, git and kubeconfig secrets: each bound to where it may honestly go', () => {
  const aws = secretFingerprints('credentials', '[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\naws_session_token = FQoGZXIvYXdzEXAMPLEtokenvalue0123456789\n');
  assert.deepEqual(aws.tokens.map((t) => [t.value.slice(0, 8), t.domains]), [['wJalrXUt', undefined], ['FQoGZXIv', ['*.amazonaws.com']]]);
  assert.ok(hit(aws.tokens, 'sts.amazonaws.com', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'), 'the secret key goes nowhere, AWS included');
  assert.equal(hit(aws.tokens, 'sts.amazonaws.com', 'X-Amz-Security-Token: FQoGZXIvYXdzEXAMPLEtokenvalue0123456789'), null, 'a session token may go to AWS');
  const netrc = secretFingerprints('.netrc', 'machine git.example.test login bot password s3cr3t-netrc-password-0042\nmachine other.test login x password short\n');
  assert.deepEqual(netrc.tokens.map((t) => t.domains), [['git.example.test']], 'short passwords are not tokens (they would match by chance)');
  assert.equal(hit(netrc.tokens, 'git.example.test', 's3cr3t-netrc-password-0042'), null);
  assert.ok(hit(netrc.tokens, 'api.example.test', 's3cr3t-netrc-password-0042'));
  const git = secretFingerprints('.git-credentials', 'https://bot:ghp_0123456789abcdefghijABCDEFGHIJ@github.example.test\n');
  assert.deepEqual(git.tokens.map((t) => [t.value, t.domains]), [['ghp_0123456789abcdefghijABCDEFGHIJ', ['github.example.test']]]);
  const kube = secretFingerprints('config', 'clusters:\n- cluster:\n    server: https://k8s.example.test:6443\nusers:\n- user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IkV4YW1wbGUifQ.payload\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVBbm90YXJlYWxrZXk=\n');
  assert.deepEqual(kube.tokens.map((t) => t.domains), [undefined, ['k8s.example.test']]);
});

test('nothing secret-shaped: no tokens (a config file, a public key)', () => {
  assert.equal(secretFingerprints('config', 'Host *\n  ServerAliveInterval 30\n').tokens.length, 0);
  const pub = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.equal(secretFingerprints('id_rsa.pub', pub).tokens.length, 0);
});

test('the standing PEM marker joins every scanned sandbox, and only those', async () => {
  const { allTokens } = await import('./inspection.ts');
  assert.deepEqual(allTokens(undefined, []), [], 'nothing scanned: no cost added');
  const t = allTokens([{ name: 'c', value: 'canary-value-0042', kind: 'canary' }], []);
  assert.ok(hit(t, 'api.example.test', Buffer.from(rsa).toString('base64')), 'a whole key file, base64-encoded');
  assert.equal(hit(t, 'api.example.test', '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----\n-----BEGIN CERTIFICATE REQUEST-----'), null);
});
