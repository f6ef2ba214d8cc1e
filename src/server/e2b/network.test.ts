import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NetworkPolicySchema } from '../../config/policy.ts';
import { narrowNetwork } from './network.ts';

const ceiling = NetworkPolicySchema.parse({
  allow: [
    { domain: '*.example.test', ports: [80, 443] },
    { domain: 'pkgs.other.test', ports: [443] },
    { cidr: '203.0.113.0/24', ports: [8080] },
  ],
  deny: [{ cidr: '203.0.113.99/32', ports: ['1-65535'] }],
});

test('no egress options: the ceiling applies unchanged', () => {
  assert.equal(narrowNetwork(ceiling, {}), undefined);
  assert.equal(narrowNetwork(ceiling, { allowInternetAccess: true }), undefined);
  assert.equal(narrowNetwork(ceiling, { allowOut: ['evil.test'] }), undefined, 'allowOut alone never opens anything');
});

test('allowInternetAccess false closes everything, allowOut re-opens only inside the ceiling', () => {
  assert.deepEqual(narrowNetwork(ceiling, { allowInternetAccess: false })!.allow, []);
  const n = narrowNetwork(ceiling, { allowInternetAccess: false, allowOut: ['api.example.test', '203.0.113.7', 'evil.test', '198.51.100.0/24', '0.0.0.0/0'] })!;
  assert.deepEqual(n.allow.map((r) => [r.domain ?? r.cidr, r.ports]), [
    ['api.example.test', [80, 443]],
    ['203.0.113.7/32', [8080]],
    ['203.0.113.0/24', [8080]],
  ]);
  assert.deepEqual(n.deny, ceiling.deny, 'the ceiling\'s denials stay');
});

test('denyOut 0.0.0.0/0 with allowOut is E2B\'s allow-only form', () => {
  const n = narrowNetwork(ceiling, { denyOut: ['0.0.0.0/0'], allowOut: ['*.example.test'] })!;
  assert.deepEqual(n.allow.map((r) => r.domain), ['*.example.test']);
});

test('a wildcard allowOut keeps only the narrower ceiling names', () => {
  const n = narrowNetwork(ceiling, { allowInternetAccess: false, allowOut: ['*.other.test', '*.test'] })!;
  assert.deepEqual(n.allow.map((r) => r.domain).sort(), ['*.example.test', 'pkgs.other.test', 'pkgs.other.test']);
});

test('partial denyOut adds deny rules and keeps the allow-list', () => {
  const n = narrowNetwork(ceiling, { denyOut: ['203.0.113.0/25'] })!;
  assert.deepEqual(n.allow, ceiling.allow);
  assert.deepEqual(n.deny.at(-1), { cidr: '203.0.113.0/25', ports: ['1-65535'], comment: 'E2B denyOut' });
});

test('default deny stays default deny whatever the request asks', () => {
  assert.equal(narrowNetwork(undefined, { allowInternetAccess: true, allowOut: ['0.0.0.0/0'] }), undefined);
  assert.deepEqual(narrowNetwork(undefined, { allowInternetAccess: false, allowOut: ['example.test'] })!.allow, []);
});

test('bad entries are errors that name the field', () => {
  assert.throws(() => narrowNetwork(ceiling, { denyOut: ['example.test'] }), /denyOut: "example.test" is a domain/);
  assert.throws(() => narrowNetwork(ceiling, { allowOut: ['10.0.0.1/33'] }), /allowOut: .*prefix/);
  assert.throws(() => narrowNetwork(ceiling, { allowOut: ['bad name!'] }), /allowOut: "bad name!" is not a domain/);
});
