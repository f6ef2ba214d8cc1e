// readAsSeen: the guard reads a credential file as the sandbox saw it, from the host, as root.
// Threat: the agent controls the path. A symlink it planted must resolve inside the sandbox's
// root (never to the host's file of that name), a FIFO must not hang the guard, a /proc magic
// link must not lead out, and a huge file is read only up to the cap.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { readAsSeen } from '../../src/sandbox/index.ts';
import { TEST_IMAGE_TAR, openManager, sh } from './helpers.ts';


const skip = existsSync(TEST_IMAGE_TAR) ? false : 'needs the test image (npm test\'s setup builds it)';
const m = await openManager();
// A host file the sandbox must never be able to make the guard read.
const hostDir = mkdtempSync('/tmp/pt-host-secret-');
after(() => rmSync(hostDir, { recursive: true, force: true }));
writeFileSync(`${hostDir}/secret`, 'HOST-ONLY-CONTENT');

test('reads the sandbox\'s own file; symlinks, FIFOs and magic links stay inside or fail', { skip }, async () => {
  if (!m.images.list().some((i) => i.name === 'praetor-test')) await m.images.import(TEST_IMAGE_TAR, 'praetor-test');
  const sb = await m.create({ image: 'praetor-test' });
  const r = await sb.exec(sh(`set -e; mkdir -p /workspace/k && echo SANDBOX-KEY > /workspace/k/id_rsa
    ln -s ${hostDir}/secret /workspace/k/id_ecdsa          # absolute: the host path means nothing inside
    ln -s /proc/1/root/etc/hostname /workspace/k/id_dsa    # a magic link on the way
    mkfifo /workspace/k/id_ed25519                         # would block a blocking open`));
  assert.equal(r.code, 0, r.stderr);
  const home = '/workspace/k';
  const read = (p: string) => readAsSeen(sb, undefined, p, 1 << 20);
  const own = read('/workspace/k/id_rsa');
  assert.ok(own.ok && own.content.toString() === 'SANDBOX-KEY\n', JSON.stringify(own));
  const escaped = read(`${home}/id_ecdsa`);
  assert.ok(!escaped.ok || !escaped.content.toString().includes('HOST-ONLY'), 'a symlink to a host path is resolved inside the sandbox');
  assert.equal(escaped.ok, false, 'and the sandbox has no such file');
  assert.equal(read(`${home}/id_dsa`).ok, false, 'magic links are refused');
  const fifo = read(`${home}/id_ed25519`);
  assert.deepEqual(fifo, { ok: false, reason: `${home}/id_ed25519 is not a regular file` });
  const capped = readAsSeen(sb, undefined, '/workspace/k/id_rsa', 4);
  assert.ok(capped.ok && capped.content.length === 4);
  assert.equal(readAsSeen(sb, undefined, 'k/id_rsa', 100).ok, false, 'a relative path needs its live reader');
  await sb.destroy('test done');
});
