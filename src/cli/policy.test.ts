import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = (args: string[]) => spawnSync(process.execPath, ['src/cli/main.ts', 'policy', ...args], { encoding: 'utf8' });

test('praetor policy check: every problem with file:line and a fix; exit 1; ok files exit 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'praetor-policy-cli-'));
  try {
    const bad = join(dir, 'bad.yaml'); const good = join(dir, 'good.yaml');
    writeFileSync(bad, 'network:\n  allow:\n    - { domain: web.example.test, ports: [80] }\n    - { cidr: "10.0.0.1/8", ports: [443] }\n  alow: []\n');
    writeFileSync(good, 'network:\n  allow:\n    - { domain: web.example.test, ports: [80] }\n');
    const r = run(['check', bad]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`${bad}:4:15: network.allow.1.cidr: "10.0.0.1/8" has host bits set\\n  fix: write 10.0.0.0/8`));
    assert.match(r.stdout, new RegExp(`${bad}:5:3: unknown key "alow" at network.alow\\n  fix: remove "alow" or rename it to one of: allow, deny, protocols, phases`));
    const g = run(['check', good]);
    assert.equal(g.status, 0, g.stderr); assert.match(g.stdout, /ok \(1 allow, 0 deny/);
    const j = run(['check', '--json', bad, good]);
    assert.equal(JSON.parse(j.stdout).length, 2);
    assert.equal(run([]).status, 2);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('praetor policy check --help prints the usage; an unknown flag names itself and the usage', () => {
  const h = run(['check', '--help']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /^usage: praetor policy check FILE…/);
  const u = run(['check', '--bogus', 'x.yaml']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /Unknown option '--bogus'\n  fix: usage: praetor policy check/);
});
