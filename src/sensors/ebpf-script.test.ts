// The generated sensor script's open filter: system prefixes compared in the kernel as one word.
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { test } from 'node:test';
import { defaultScriptOptions, generateScript, prefixWord } from './ebpf-script.ts';

test('a boring prefix is one masked word of the path\'s first 8 bytes, in host byte order', () => {
  const [v, m] = prefixWord('/usr/');
  const word = (s: string): bigint => { const b = Buffer.alloc(8); Buffer.from(s, 'latin1').copy(b); return endianness() === 'LE' ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0); };
  const boring = (path: string): boolean => (word(path.slice(0, 8)) & BigInt(m)) === BigInt(v);
  assert.equal(boring('/usr/lib/x'), true);
  assert.equal(boring('/usr'), false, 'shorter than the prefix: the NUL differs');
  assert.equal(boring('/usrx/a'), false);
  assert.equal(boring('/tmp/usr/'), false);
  const [v8, m8] = prefixWord('/etc/ld.');
  assert.equal(m8, '0xffffffffffffffff');
  assert.ok(BigInt(v8) < 2n ** 63n, 'bpftrace 0.17 reads literals as int64');
  assert.throws(() => prefixWord('/etc/ld.so'), /1 to 8 ASCII bytes/);
  assert.throws(() => prefixWord('/é/'), /1 to 8 ASCII bytes/);
  const s = generateScript(defaultScriptOptions('tok', '6.1.0'));
  assert.match(s, /\$head = \*\(uint64 \*\)uptr\(@op\[tid\]\);/, 'one read of the path per open');
  assert.doesNotMatch(s, /str\(@op\[tid\], 8\)/);
  assert.doesNotMatch(s, /& 0xffffffffffffffff\)/, 'an 8-byte prefix is compared whole (no literal above int64)');
});
