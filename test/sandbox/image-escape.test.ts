// Hostile images: a symlink left by an earlier layer must not let a later layer delete or write
// anything outside the unpack root. The "host" victim is a canary in a temp dir, reached by an
// absolute symlink the first layer ships (never real /etc).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { isPraetorError } from '../../src/errors.ts';
import { ImageStore } from '../../src/sandbox/images.ts';

const scratch = mkdtempSync('/tmp/pt-imgesc-');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** An OCI layout whose first layer is `x -> canaryDir` and whose second layer holds `members`. */
function maliciousImage(tag: string, canaryDir: string, members: Record<string, string>): string {
  const oci = `${scratch}/${tag}-oci`;
  const blobs = `${oci}/blobs/sha256`;
  mkdirSync(blobs, { recursive: true });
  const put = (buf: Buffer) => {
    const d = createHash('sha256').update(buf).digest('hex');
    writeFileSync(`${blobs}/${d}`, buf);
    return { digest: `sha256:${d}`, size: buf.length };
  };
  const l1dir = `${scratch}/${tag}-l1`;
  mkdirSync(l1dir);
  symlinkSync(canaryDir, `${l1dir}/x`);
  writeFileSync(`${l1dir}/ok`, 'fine');
  assert.equal(spawnSync('tar', ['-cf', `${l1dir}.tar`, '-C', l1dir, 'x', 'ok']).status, 0);
  const l2dir = `${scratch}/${tag}-l2`;
  for (const [p, c] of Object.entries(members)) { mkdirSync(`${l2dir}/${p}`.replace(/\/[^/]*$/, ''), { recursive: true }); writeFileSync(`${l2dir}/${p}`, c); }
  // Only the file members, not their parent directory: tar then walks through the existing `x`.
  assert.equal(spawnSync('tar', ['-cf', `${l2dir}.tar`, '-C', l2dir, ...Object.keys(members)]).status, 0);
  const layer = (tar: string) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(readFileSync(tar)) });
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [layer(`${l1dir}.tar`), layer(`${l2dir}.tar`)] })));
  writeFileSync(`${oci}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(`${oci}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }));
  return oci;
}

function canary(tag: string): string {
  const dir = `${scratch}/${tag}-canary`;
  mkdirSync(dir);
  writeFileSync(`${dir}/passwd`, 'canary\n');
  writeFileSync(`${dir}/shadow`, 'canary\n');
  return dir;
}

async function assertBadImage(store: ImageStore, oci: string, name: string): Promise<void> {
  await assert.rejects(store.import(oci, name), (e: unknown) => isPraetorError(e) && e.code === 'BAD_IMAGE');
  assert.equal(store.list().length, 0, 'nothing indexed');
  assert.deepEqual(readdirSync(store.dir).filter((d) => d.startsWith('import-')), [], 'the half-unpacked root is removed');
}

const cases: Array<[string, Record<string, string>]> = [
  ['a whiteout through the symlink', { 'x/.wh.passwd': '' }],
  ['an opaque whiteout through the symlink', { 'x/.wh..wh..opq': '' }],
  ['a file written through the symlink', { 'x/passwd': 'pwned\n' }],
];

for (const [i, [what, members]] of cases.entries()) {
  test(`image escape refused: ${what}`, async () => {
    const dir = canary(`c${i}`);
    const store = new ImageStore(`${scratch}/store${i}`);
    await assertBadImage(store, maliciousImage(`c${i}`, dir, members), `evil${i}`);
    assert.equal(readFileSync(`${dir}/passwd`, 'utf8'), 'canary\n', 'the canary outside the root is untouched');
    assert.equal(readFileSync(`${dir}/shadow`, 'utf8'), 'canary\n');
    assert.deepEqual(readdirSync(dir).sort(), ['passwd', 'shadow']);
  });
}

test('a symlink that stays inside the root still works for whiteouts and writes', async () => {
  const oci = `${scratch}/in-oci`;
  const blobs = `${oci}/blobs/sha256`;
  mkdirSync(blobs, { recursive: true });
  const put = (buf: Buffer) => { const d = createHash('sha256').update(buf).digest('hex'); writeFileSync(`${blobs}/${d}`, buf); return { digest: `sha256:${d}`, size: buf.length }; };
  const l1 = `${scratch}/in-l1`;
  mkdirSync(`${l1}/real`, { recursive: true });
  writeFileSync(`${l1}/real/gone`, 'x');
  writeFileSync(`${l1}/real/keep`, 'k');
  symlinkSync('real', `${l1}/link`);
  assert.equal(spawnSync('tar', ['-cf', `${l1}.tar`, '-C', l1, '.']).status, 0);
  const l2 = `${scratch}/in-l2`;
  mkdirSync(`${l2}/link`, { recursive: true });
  writeFileSync(`${l2}/link/.wh.gone`, '');
  writeFileSync(`${l2}/link/new`, 'n');
  assert.equal(spawnSync('tar', ['-cf', `${l2}.tar`, '-C', l2, 'link/.wh.gone', 'link/new']).status, 0);
  const layer = (tar: string) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(readFileSync(tar)) });
  const config = put(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [layer(`${l1}.tar`), layer(`${l2}.tar`)] })));
  writeFileSync(`${oci}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(`${oci}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest }] }));
  const store = new ImageStore(`${scratch}/store-in`);
  await store.import(oci, 'inside');
  const root = store.rootfs('inside');
  assert.equal(existsSync(`${root}/real/gone`), false, 'whiteout applied through an inside link');
  assert.equal(readFileSync(`${root}/real/keep`, 'utf8'), 'k');
  assert.equal(readFileSync(`${root}/real/new`, 'utf8'), 'n');
});
