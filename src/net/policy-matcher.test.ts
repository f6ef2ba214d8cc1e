import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkPolicySchema } from '../config/policy.ts';
import { compilePolicy, protectedRanges } from './policy-matcher.ts';

const policy = NetworkPolicySchema.parse({
  allow: [
    { domain: 'web.example.test', ports: [80, 443] },
    { domain: '*.mirror.example.test', ports: [443] },
    { cidr: '203.0.113.20/32', ports: [443, 3333] },
    { cidr: '169.254.169.254/32', ports: [80] },
    { cidr: '0.0.0.0/0', ports: [8443] },
    { domain: 'secret.mirror.example.test', ports: ['9000-9010'] },
  ],
  deny: [{ domain: 'secret.mirror.example.test', ports: [443] }],
  protocols: { allow: ['jsonrpc-tx'], unknown: 'deny' },
  phases: { setup: { allow: [{ domain: 'pkgs.example.test', ports: [443] }] } },
});
const c = compilePolicy(policy, { protected: protectedRanges({ hostAddresses: ['198.51.100.1'], apiAddresses: ['203.0.113.77'] }) });
const agent = c.forPhase('agent');

test('names: exact, wildcard at any depth but not the apex, deny wins', () => {
  assert.equal(agent.name('WEB.example.test.').allow, true);
  assert.equal(agent.name('a.b.mirror.example.test').rule, 'network.allow[1]');
  assert.equal(agent.name('mirror.example.test').allow, false);
  assert.equal(agent.name('evilmirror.example.test').allow, false);
  assert.deepEqual(agent.name('secret.mirror.example.test'), { allow: false, rule: 'network.deny[0]', reason: 'denied name', domain: 'secret.mirror.example.test' });
  assert.equal(agent.name('pkgs.example.test').allow, false);
  assert.equal(c.forPhase('setup').name('pkgs.example.test').rule, 'network.phases.setup.allow[0]');
  assert.equal(c.initialPhase, 'setup');
  assert.throws(() => c.forPhase('nope'), /unknown phase/);
});

test('connect: IP only via CIDR rule or a bound allowed name; ports checked', () => {
  assert.equal(agent.connect('203.0.113.10', 80, []).allow, false);
  assert.deepEqual(agent.connect('203.0.113.10', 80, ['web.example.test']), { allow: true, rule: 'network.allow[0]', domain: 'web.example.test', inspect: 'tls' });
  assert.equal(agent.connect('203.0.113.10', 22, ['web.example.test']).allow, false);
  assert.equal(agent.connect('203.0.113.20', 3333, []).rule, 'network.allow[2]');
  assert.equal(agent.connect('203.0.113.21', 3333, []).allow, false);
  assert.equal(agent.connect('203.0.113.10', 443, ['secret.mirror.example.test']).rule, 'network.deny[0]');
});

test('protected ranges: 0.0.0.0/0 does not open them, an explicit CIDR does', () => {
  assert.equal(agent.connect('10.99.0.10', 8443, []).rule, 'protected:rfc1918');
  assert.equal(agent.connect('127.0.0.1', 8443, []).rule, 'protected:loopback');
  assert.equal(agent.connect('198.51.100.1', 8443, []).rule, 'protected:host-address');
  assert.equal(agent.connect('203.0.113.77', 8443, []).rule, 'protected:praetor-api');
  assert.equal(agent.connect('100.64.0.5', 8443, []).rule, 'protected:cgnat');
  assert.equal(agent.connect('169.254.169.254', 80, []).rule, 'network.allow[3]');
  assert.equal(agent.connect('169.254.169.253', 80, []).rule, 'protected:link-local');
  assert.equal(agent.connect('192.168.1.1', 443, ['web.example.test']).rule, 'protected:rfc1918');
  assert.equal(agent.protectedRange('10.1.1.1'), 'rfc1918');
  assert.equal(agent.protectedRange('203.0.113.10'), null);
});

test('protocols: risky ones gated, unknown per policy', () => {
  assert.equal(agent.protocol('ssh').allow, false);
  assert.equal(agent.protocol('stratum').allow, false);
  assert.equal(agent.protocol('chisel').allow, false);
  assert.equal(agent.protocol('jsonrpc-tx').allow, true);
  assert.equal(agent.protocol('http').allow, true);
  assert.equal(agent.protocol('unknown').rule, 'protocols.unknown');
  assert.equal(agent.protocol('unknown').allow, false);
  const open = compilePolicy(NetworkPolicySchema.parse({})).forPhase('agent');
  assert.equal(open.protocol('unknown').allow, true);
  assert.equal(open.protocol('jsonrpc-tx').allow, false);
});

test('fronting: SNI/Host must be the allowed name (or another bound allowed name)', () => {
  const via = agent.connect('203.0.113.10', 443, ['web.example.test', 'x.mirror.example.test']);
  assert.equal(agent.hostName('web.example.test:443', 443, via, ['web.example.test']).allow, true);
  assert.equal(agent.hostName('x.mirror.example.test', 443, via, ['web.example.test', 'x.mirror.example.test']).allow, true);
  assert.equal(agent.hostName('evil.test', 443, via, ['web.example.test']).rule, 'fronting');
  const cidr = agent.connect('203.0.113.20', 443, []);
  assert.equal(agent.hostName('anything.test', 443, cidr, []).allow, true);
  assert.equal(agent.hostName('secret.mirror.example.test', 443, cidr, []).rule, 'network.deny[0]');
});
