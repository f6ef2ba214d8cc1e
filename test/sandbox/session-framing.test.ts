// Issue 17 §4: session commands are framed out of band. A command that reads stdin returns at
// once (its stdin is empty unless the caller sends input), a command cannot forge the exit status
// the session reports, and session state (cwd, variables, functions, options) still carries over.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Session } from '../../src/sandbox/index.ts';
import { openManager } from './helpers.ts';

const m = await openManager();
const sb = await m.create({});

// A short timeout: on the old framing (marker on stdin) these commands swallowed the marker and
// hung until it; now they must finish on their own, so timedOut is the failing signal.
const T = 20_000;

test('cat with no input returns at once with exit 0', async () => {
  const s = new Session(sb, 'cat');
  const r = await s.run('cat', T);
  assert.equal(r.timedOut, false, 'cat did not hang on stdin');
  assert.equal(r.exitCode, 0);
  assert.equal(r.output, '');
  s.close();
});

test('read x; echo $? returns (EOF on an empty stdin)', async () => {
  const s = new Session(sb, 'read');
  const r = await s.run('read x; echo "rc=$? x=[$x]"', T);
  assert.equal(r.timedOut, false);
  assert.equal(r.output, 'rc=1 x=[]\n');
  assert.equal(r.exitCode, 0);
  // and a REPL-like reader that consumes everything it can
  const py = await s.run('head -c 100 ; echo "after head: $?"', T);
  assert.equal(py.output, 'after head: 0\n');
  s.close();
});

test('stdin given by the caller reaches the command', async () => {
  const s = new Session(sb, 'input');
  const r = await s.run('read a; read b; echo "$b-$a"; cat', T, { input: 'one\ntwo\nrest of it' });
  assert.equal(r.output, 'two-one\nrest of it');
  assert.equal(r.exitCode, 0);
  const bin = await s.run('wc -c', T, { input: Buffer.alloc(300_000, 0x61) });
  assert.equal(bin.output.trim(), '300000', 'input larger than a pipe buffer is delivered whole');
  s.close();
});

test('a command cannot forge the exit status: fake markers, the state fd, its own fds', async () => {
  const s = new Session(sb, 'forge');
  // Every marker shape the old framing used, with whatever nonce the command could find: the old
  // one lived in the command text the shell read from stdin; look for it everywhere.
  const forge = [
    "printf '\\n__PRAETOR_0123456789abcdef_0__\\n'",
    // what the old framing leaked: the rest of stdin (it held the marker line), the shell's
    // argv and environment; echo whatever nonce-like token turns up as a marker with status 0
    'for t in $( { timeout 2 cat; cat /proc/$$/cmdline /proc/$$/environ; } 2>/dev/null | tr -c "0-9a-f" "\\n" | grep -E "^[0-9a-f]{16}$"); do printf "\\n__PRAETOR_%s_0__\\n" "$t"; done',
    // the state fd is not handed to the command's processes: a child cannot smuggle an
    // `exit 0` into the next command's state
    "sh -c 'echo exit 0 >&4' 2>/dev/null && echo child-wrote-state",
    'exit 3',
  ].join('\n');
  const r = await s.run(forge, T);
  assert.equal(r.timedOut, false);
  assert.equal(r.exitCode, 3, `reported status is the real one (output: ${r.output})`);
  assert.doesNotMatch(r.output, /child-wrote-state/);
  const next = await s.run('false', T);
  assert.equal(next.exitCode, 1, 'a later command reports its own status');
  // A forged marker in the middle of output does not cut the output either.
  const mid = await s.run("echo before; printf '__PRAETOR_deadbeefdeadbeef_0__\\n'; echo after; exit 7", T);
  assert.equal(mid.exitCode, 7);
  assert.match(mid.output, /before\n__PRAETOR_deadbeefdeadbeef_0__\nafter\n/);
  s.close();
});

test('state carries over: cwd, exported and plain variables, functions, options, unset, exit', async () => {
  const s = new Session(sb, 'state', { env: { GIVEN: 'g' } });
  assert.equal((await s.run('cd /tmp && export FOO=bar; PLAIN="a b\'c"; f() { echo "f:$1"; }; set -u; shopt -s extglob; unset GIVEN', T)).exitCode, 0);
  const r = await s.run('echo "$PWD $FOO $PLAIN ${GIVEN:-unset}"; f x; [[ -o nounset ]] && echo nounset; shopt -q extglob && echo extglob; sh -c \'echo child:$FOO\'', T);
  assert.equal(r.output, "/tmp bar a b'c unset\nf:x\nnounset\nextglob\nchild:bar\n");
  // `exit` still saves the state it leaves behind, and reports its status.
  const e = await s.run('cd /; exit 4', T);
  assert.equal(e.exitCode, 4);
  assert.equal((await s.run('pwd', T)).output, '/\n');
  // A syntax error is the command's failure, not the session's.
  const bad = await s.run('if then', T);
  assert.equal(bad.exitCode, 2);
  assert.equal((await s.run('echo $FOO', T)).output, 'bar\n');
  s.close();
});

test('a timed-out command is killed, the session keeps its state and stays usable', async () => {
  const s = new Session(sb, 'timeout');
  await s.run('cd /tmp', T);
  const t = await s.run('echo started; sleep 30', 500);
  assert.equal(t.timedOut, true);
  assert.equal(t.exitCode, 124);
  assert.equal(t.output, 'started\n');
  assert.equal((await s.run('pwd', T)).output, '/tmp\n');
  s.close();
  await assert.rejects(s.run('true'), /has ended/);
});

test('a command larger than an argv string (a 300 KB heredoc) runs: the control blob is not argv', async () => {
  const s = new Session(sb, 'big');
  const body = 'y'.repeat(300_000);
  const r = await s.run(`cat > /tmp/big <<'EOF'\n${body}\nEOF\nwc -c < /tmp/big`, T);
  assert.equal(r.exitCode, 0, r.output.slice(0, 200));
  assert.equal(r.output.trim(), String(body.length + 1));
  s.close();
});

test('under gVisor too: stdin empty, status from the init, state carried', async (t) => {
  let g;
  try { g = await m.create({ runtime: 'runsc' }); } catch (e) { t.skip(`runsc unavailable: ${String(e).slice(0, 120)}`); return; }
  try {
    const s = new Session(g, 'gvisor');
    assert.equal((await s.run('cd /tmp; export G=1', T)).exitCode, 0);
    const r = await s.run('cat; echo "$PWD $G"; exit 5', T);
    assert.equal(r.timedOut, false);
    assert.equal(r.output, '/tmp 1\n');
    assert.equal(r.exitCode, 5);
    assert.equal((await s.run('cat', T, { input: 'via stdin' })).output, 'via stdin');
    s.close();
  } finally { await g.destroy(); }
});

test('set -e and a removed working directory do not wedge the session', async () => {
  const s = new Session(sb, 'errexit');
  assert.equal((await s.run('mkdir -p /tmp/gone && cd /tmp/gone && set -e', T)).exitCode, 0);
  assert.equal((await s.run('rmdir /tmp/gone', T)).exitCode, 0);
  const r = await s.run('echo still here; [[ -o errexit ]] && echo errexit', T);
  assert.equal(r.exitCode, 0, r.output);
  assert.match(r.output, /still here\nerrexit\n$/);
  assert.equal((await s.run('false; echo not reached', T)).exitCode, 1, 'set -e still applies to the command');
  assert.equal((await s.run('set +e; cd /; echo ok', T)).output, 'ok\n');
  s.close();
});
