import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkPolicySchema } from '../../config/policy.ts';
import { compilePolicy } from '../policy-matcher.ts';
import { buildQuery, buildResponse, parseMessage, RCODE, type Message } from './codec.ts';
import { answerQuery, coalesced, type DnsContext, type Upstream } from './resolver.ts';
import { createTunnelGuard, entropy } from './tunnel-guard.ts';

const ZONE: Record<string, string[]> = { 'web.example.test': ['203.0.113.10'], 'rebind.example.test': ['10.99.0.10'], 'a.mirror.example.test': ['203.0.113.10'] };
const fakeUpstream: Upstream = {
  async query(name, type) {
    const q = parseMessage(buildQuery(7, name, type));
    const ips = ZONE[name];
    return parseMessage(buildResponse(q, ips ? RCODE.NOERROR : RCODE.NXDOMAIN, (ips ?? []).map((ip) => ({ name, type: 1, ttl: 3600, data: ip }))));
  },
};

function ctx() {
  const m = compilePolicy(NetworkPolicySchema.parse({ allow: [{ domain: 'web.example.test', ports: [80] }, { domain: 'rebind.example.test', ports: [80] }, { domain: '*.mirror.example.test', ports: [443] }, { domain: 'gone.example.test', ports: [80] }] })).forPhase('agent');
  const events: Array<Parameters<DnsContext['emit']>[0]> = []; const bound: string[] = [];
  const c: DnsContext = { matcher: () => m, guard: createTunnelGuard(), bind: (ip, n) => bound.push(`${ip}=${n}`), emit: (e) => events.push(e), isolated: () => false };
  return { c, events, bound };
}
const ask = async (c: DnsContext, name: string, type = 1): Promise<Message> => parseMessage((await answerQuery(buildQuery(99, name, type), c, fakeUpstream))!);

test('codec round trip, compression pointers, malformed input', () => {
  const q = parseMessage(buildQuery(0x1234, 'Web.Example.Test', 1));
  assert.deepEqual(q.questions, [{ name: 'Web.Example.Test', type: 1, class: 1 }]);
  const r = parseMessage(buildResponse(q, 0, [{ name: 'x.test', type: 5, ttl: 5, data: 'y.test' }, { name: 'y.test', type: 1, ttl: 5, data: '1.2.3.4' }]));
  assert.equal(r.id, 0x1234); assert.equal(r.answers[0]!.data, 'y.test'); assert.equal(r.answers[1]!.data, '1.2.3.4');
  const hdr = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  const qs = Buffer.from([1, 97, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1]);
  const ans = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 9, 8, 7, 6]);
  const m = parseMessage(Buffer.concat([hdr, qs, ans]));
  assert.equal(m.answers[0]!.name, 'a.test'); assert.equal(m.answers[0]!.data, '9.8.7.6');
  assert.throws(() => parseMessage(Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12])), RangeError);
});

test('allowed names are forwarded, answered and bound; others refused', async () => {
  const { c, events, bound } = ctx();
  const ok = await ask(c, 'web.example.test');
  assert.equal(ok.rcode, RCODE.NOERROR); assert.equal(ok.answers[0]!.data, '203.0.113.10'); assert.equal(ok.answers[0]!.ttl, 300);
  assert.deepEqual(bound, ['203.0.113.10=web.example.test']);
  assert.equal((await ask(c, 'evil.test')).rcode, RCODE.REFUSED);
  assert.equal((await ask(c, 'gone.example.test')).rcode, RCODE.NXDOMAIN);
  assert.equal((await ask(c, 'web.example.test', 28)).answers.length, 0);
  assert.deepEqual(events.map((e) => [e.name, e.decision, e.rule]), [
    ['web.example.test', 'allow', 'network.allow[0]'], ['evil.test', 'deny', 'default-deny'],
    ['gone.example.test', 'allow', 'network.allow[3]'], ['web.example.test', 'allow', 'network.allow[0]']]);
});

test('rebinding: an allowed name resolving into RFC 1918 is refused and not bound', async () => {
  const { c, events, bound } = ctx();
  assert.equal((await ask(c, 'rebind.example.test')).rcode, RCODE.REFUSED);
  assert.equal(bound.length, 0);
  assert.equal(events[0]!.rule, 'protected:rfc1918');
});

test('tunnelling: long / high-entropy / hex labels and unique-name floods are refused', async () => {
  const { c, events } = ctx();
  const b32 = 'mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe2lk'; // 48 chars
  assert.equal((await ask(c, `${b32}.mirror.example.test`)).rcode, RCODE.REFUSED);
  assert.equal(events.at(-1)!.rule, 'dns-tunnel');
  assert.equal((await ask(c, 'deadbeefcafebabe0011223344.mirror.example.test')).rcode, RCODE.REFUSED);
  assert.ok(entropy('x7Qk9ZpL2mVb8RtY4wNc') > entropy('www'));
  let refused = 0;
  for (let i = 0; i < 100; i++) if ((await ask(c, `n${i}.mirror.example.test`)).rcode === RCODE.REFUSED) refused++;
  assert.ok(refused >= 35, `refused ${refused}`);
  assert.match(events.at(-1)!.reason!, /flood/);
  assert.equal(createTunnelGuard().check('a.mirror.example.test'), null);
  assert.equal(createTunnelGuard().check('registry-1.docker.example.test'), null);
});

test('tunnelling: a <data>.<rand>.example.test spray under a *.example.test rule is refused', async () => {
  const m = compilePolicy(NetworkPolicySchema.parse({ allow: [{ domain: 'web.other.test', ports: [80] }, { domain: '*.example.test', ports: [443] }] })).forPhase('agent');
  const events: Array<Parameters<DnsContext['emit']>[0]> = [];
  const c: DnsContext = { matcher: () => m, guard: createTunnelGuard(), bind: () => {}, emit: (e) => events.push(e), isolated: () => false };
  // Short (≤ 23 chars) labels skip the entropy test, and the random second label gave every
  // name a fresh flood key (its last three labels): the allow rule now carries the count.
  let refused = 0;
  for (let i = 0; i < 100; i++) {
    const r = await ask(c, `d${i.toString(36)}x.r${(i * 7919).toString(36)}.example.test`);
    if (r.rcode === RCODE.REFUSED) refused++;
  }
  assert.equal(refused, 40);
  const last = events.at(-1)!;
  assert.equal(last.rule, 'dns-tunnel'); assert.match(last.reason!, /flood of unique names allowed by network\.allow\[1\]/);
  // names already seen in the window still resolve; other rules keep their own budget
  assert.equal((await ask(c, 'd0x.r0.example.test')).rcode, RCODE.NXDOMAIN);
  assert.equal((await ask(c, 'web.other.test')).rcode, RCODE.NXDOMAIN);
  assert.equal(events.at(-1)!.rule, 'network.allow[0]');
});

test('tunnelling: denied names are not counted and cannot spend an allowed rule\'s budget', async () => {
  const { c, events } = ctx();
  for (let i = 0; i < 200; i++) assert.equal((await ask(c, `n${i}.evil.test`)).rcode, RCODE.REFUSED);
  assert.ok(events.every((e) => e.rule === 'default-deny'), 'a denied name was refused as a flood');
  assert.equal((await ask(c, 'a.mirror.example.test')).rcode, RCODE.NOERROR);
  // the guard's flood window restarts after a minute
  let t = 0;
  const g = createTunnelGuard(() => t);
  for (let i = 0; i < 60; i++) assert.equal(g.flood(`n${i}.mirror.example.test`, 'r'), null);
  assert.match(g.flood('n60.mirror.example.test', 'r')!, /flood/);
  t = 61_000;
  assert.equal(g.flood('n60.mirror.example.test', 'r'), null);
});

test('upstream: concurrent identical queries share one in-flight query', async () => {
  let calls = 0;
  const up = coalesced(async (name, type) => { calls++; await new Promise((r) => setTimeout(r, 10)); return fakeUpstream.query(name, type); });
  const rs = await Promise.all([up.query('web.example.test', 1), up.query('web.example.test', 1), up.query('WEB.example.test', 1), up.query('web.example.test', 28)]);
  assert.equal(calls, 2); // one A, one AAAA
  assert.equal(rs[0], rs[1]);
  await up.query('web.example.test', 1);
  assert.equal(calls, 3, 'a settled query is not cached');
  const failing = coalesced(async () => { calls++; throw new Error('down'); });
  await assert.rejects(Promise.all([failing.query('x.test', 1), failing.query('x.test', 1)]), /down/);
  assert.equal(calls, 4);
});
