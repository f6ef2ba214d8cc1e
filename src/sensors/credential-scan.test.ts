import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelDev, scanCredentials } from './credential-scan.ts';

test('dev_t from stat(2) becomes the kernel encoding the sensor reports (measured: 254:0 and 0:42)', () => {
  assert.equal(kernelDev(65024n), 266338304n); // /dev/vda: stat 0xfe00, kernel 254 << 20
  assert.equal(kernelDev(42n), 42n); // tmpfs, anonymous 0:42
  assert.equal(kernelDev((259n << 8n) | 0x12n | (0x345n << 12n) << 8n), (259n << 20n) | 0x34512n); // minor above 255
});

test('finds the credentials under homes and /root of a sandbox root, by its own names, never through a symlink', () => {
  const root = mkdtempSync(join(tmpdir(), 'praetor-scan-'));
  try {
    mkdirSync(join(root, 'home/agent/.aws'), { recursive: true });
    mkdirSync(join(root, 'home/agent/.ssh'), { recursive: true });
    mkdirSync(join(root, 'root'), { recursive: true });
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'home/agent/.aws/credentials'), '[default]\n');
    writeFileSync(join(root, 'home/agent/.ssh/id_ed25519'), 'k');
    writeFileSync(join(root, 'home/agent/notes.txt'), 'plain');
    writeFileSync(join(root, 'root/.netrc'), 'machine x');
    writeFileSync(join(root, 'etc/shadow'), 'root:*:');
    // A link the sandbox planted: followed, it would stat a host file of its choosing.
    symlinkSync('/etc/hostname', join(root, 'home/agent/.ssh/id_rsa'));
    const found = scanCredentials(root);
    assert.deepEqual(found.map((f) => f.path).sort(), ['/etc/shadow', '/home/agent/.aws/credentials', '/home/agent/.ssh/id_ed25519', '/root/.netrc']);
    const st = statSync(join(root, 'home/agent/.aws/credentials'), { bigint: true });
    assert.deepEqual(found.find((f) => f.path === '/home/agent/.aws/credentials'), { path: '/home/agent/.aws/credentials', ino: st.ino, dev: kernelDev(st.dev) });
  } finally { rmSync(root, { recursive: true, force: true }); }
});
