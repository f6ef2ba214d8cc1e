// Issue 17 §5: hostile image metadata is refused. The archives are built here byte by byte (a
// tiny ustar writer), so they can hold what no honest tool writes: `../` members, symlinks
// written through, manifests whose fields point outside the archive. A sentinel directory
// outside the store stands for the host: nothing may appear in it, and every refusal is a
// BAD_IMAGE that names the bad field and says what to do.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { isPraetorError, type PraetorError } from '../../src/errors.ts';
import { ImageStore } from '../../src/sandbox/images.ts';

const scratch = mkdtempSync('/tmp/pt-imgmeta-');
after(() => rmSync(scratch, { recursive: true, force: true }));
const sentinel = `${scratch}/sentinel`;
mkdirSync(sentinel);
writeFileSync(`${sentinel}/keep`, 'host file\n');

type Member = { name: string; data?: Buffer | string; link?: string; type?: 'file' | 'dir' | 'symlink' };

/** A POSIX ustar archive holding exactly these members, names as given (no sanitising). */
function tar(members: Member[]): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const type = m.type ?? (m.link !== undefined ? 'symlink' : 'file');
    const h = Buffer.alloc(512);
    h.write(m.name, 0, 100);
    h.write(type === 'dir' ? '0000755\0' : '0000644\0', 100);
    h.write('0000000\0', 108); h.write('0000000\0', 116);
    h.write(`${(type === 'file' ? data.length : 0).toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type === 'dir' ? '5' : type === 'symlink' ? '2' : '0', 156);
    if (m.link) h.write(m.link, 157, 100);
    h.write('ustar\0', 257); h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h);
    if (type === 'file' && data.length) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
let n = 0;
function archive(members: Member[]): string {
  const p = `${scratch}/a${++n}.tar`;
  writeFileSync(p, tar(members));
  return p;
}
const layerTar = tar([{ name: 'hello', data: 'from the layer\n' }]);

/** Import must fail as BAD_IMAGE whose message matches `field`; the store indexes nothing. */
async function refused(path: string, field: RegExp): Promise<PraetorError> {
  const store = new ImageStore(`${scratch}/store${n}`);
  let err: PraetorError | undefined;
  await assert.rejects(store.import(path, `evil${n}`), (e: unknown) => { if (isPraetorError(e)) err = e; return isPraetorError(e) && e.code === 'BAD_IMAGE'; });
  assert.match(err!.message, field);
  assert.ok(err!.hint && err!.hint.length > 10, 'the error says what to do');
  assert.deepEqual(store.list(), [], 'nothing indexed');
  assert.deepEqual(readdirSync(store.dir).filter((d) => d.startsWith('import-')), [], 'the half-unpacked import is removed');
  assert.deepEqual(readdirSync(sentinel).sort(), ['keep'], 'nothing written next to the sentinel');
  assert.equal(readFileSync(`${sentinel}/keep`, 'utf8'), 'host file\n');
  return err!;
}

const dockerManifest = (o: unknown) => ({ name: 'manifest.json', data: JSON.stringify(o) });
const config = { name: 'config.json', data: '{"architecture":"amd64","os":"linux"}' };

test('an outer archive with ../ members writes nothing outside the store', async () => {
  // store/import-X/archive/../../../sentinel = the sentinel
  await refused(archive([
    dockerManifest([{ Config: 'config.json', Layers: ['l/layer.tar'] }]), config,
    { name: 'l/layer.tar', data: layerTar },
    { name: '../../../sentinel/pwned', data: 'x' },
  ]), /reaches outside|\.\./);
});

// GNU tar itself defers links that leave the root (it writes a placeholder, so the member below
// the link fails with "Not a directory"); the confined unpack is the second wall. Either way the
// import is refused and the sentinel stays empty.
test('an outer archive writing through a symlink it planted writes nothing outside the store', async () => {
  await refused(archive([
    dockerManifest([{ Config: 'config.json', Layers: ['l/layer.tar'] }]), config,
    { name: 'l', link: sentinel },
    { name: 'l/layer.tar', data: layerTar },
  ]), /cannot unpack .*(reaches outside|Read-only|Not a directory|symlink)/);
  await refused(archive([
    dockerManifest([{ Config: 'config.json', Layers: ['layer.tar'] }]), config,
    { name: 'up', link: '../../..' },
    { name: 'up/sentinel/pwned', data: 'x' },
    { name: 'layer.tar', data: layerTar },
  ]), /cannot unpack .*(reaches outside|Read-only|Not a directory|symlink)/);
});

test('docker-save manifest fields that leave the archive are refused, naming the field', async () => {
  const e = await refused(archive([
    dockerManifest([{ Config: 'config.json', Layers: ['../../x/layer.tar'] }]), config,
  ]), /manifest\.json field \[0\]\.Layers\[0\] \("\.\.\/\.\.\/x\/layer\.tar"\)/);
  assert.match(e.hint!, /docker save/);
  await refused(archive([dockerManifest([{ Config: `${sentinel}/keep`, Layers: ['layer.tar'] }]), { name: 'layer.tar', data: layerTar }]), /\[0\]\.Config/);
  await refused(archive([dockerManifest([{ Config: 'config.json', Layers: [] }]), config]), /\[0\]\.Layers/);
  await refused(archive([dockerManifest({ Config: 'config.json' }), config]), /manifest\.json field \(top level\)/);
});

test('a layer or config that is a symlink to a host file is refused (no host file read into an image)', async () => {
  const hostTar = `${sentinel}/../host-layer.tar`;
  writeFileSync(hostTar, tar([{ name: 'stolen', data: 'host secret\n' }]));
  await refused(archive([
    dockerManifest([{ Config: 'config.json', Layers: ['layer.tar'] }]), config,
    { name: 'layer.tar', link: hostTar },
  ]), /\[0\]\.Layers\[0\] "layer\.tar" goes through a symlink/);
  await refused(archive([
    dockerManifest([{ Config: 'cfg', Layers: ['layer.tar'] }]),
    { name: 'cfg', link: '/etc/hostname' }, { name: 'layer.tar', data: layerTar },
  ]), /\[0\]\.Config "cfg" goes through a symlink/);
});

function ociArchive(index: unknown, blobs: Array<[string, Buffer | string]>, extra: Member[] = []): string {
  return archive([
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', data: JSON.stringify(index) },
    ...blobs.map(([d, b]): Member => ({ name: `blobs/sha256/${d}`, data: b })),
    ...extra,
  ]);
}

test('OCI digests that are not sha256:<64 hex> are refused before they become paths', async () => {
  const e = await refused(ociArchive({ manifests: [{ digest: 'sha256:../../..' }] }, []), /index\.json field manifests\[0\]\.digest \("sha256:\.\.\/\.\.\/\.\."\)/);
  assert.match(e.message, /64/);
  // a valid index whose manifest lists a traversing layer digest
  const manifest = JSON.stringify({ schemaVersion: 2, layers: [{ digest: `sha256:../../../sentinel/x${'0'.repeat(40)}` }] });
  await refused(ociArchive({ manifests: [{ digest: `sha256:${sha(manifest)}` }] }, [[sha(manifest), manifest]]), /field layers\[0\]\.digest/);
});

test('an OCI blob that does not hash to its digest is refused (no planting under another image\'s key)', async () => {
  const layer = layerTar;
  const fake = 'a'.repeat(64);
  const manifest = JSON.stringify({ schemaVersion: 2, layers: [{ digest: `sha256:${fake}` }] });
  await refused(ociArchive({ manifests: [{ digest: `sha256:${sha(manifest)}` }] }, [[sha(manifest), manifest], [fake, layer]]), /layers\[0\] does not match its digest/);
  await refused(ociArchive({ manifests: [{ digest: `sha256:${fake}` }] }, [[fake, manifest]]), /manifests\[0\] does not match its digest/);
});

test('an OCI blob that is a symlink to a host file is refused', async () => {
  const hostTar = tar([{ name: 'stolen', data: 'host secret\n' }]);
  writeFileSync(`${scratch}/host-blob`, hostTar);
  const manifest = JSON.stringify({ schemaVersion: 2, layers: [{ digest: `sha256:${sha(hostTar)}` }] });
  await refused(ociArchive({ manifests: [{ digest: `sha256:${sha(manifest)}` }] }, [[sha(manifest), manifest]], [{ name: `blobs/sha256/${sha(hostTar)}`, link: `${scratch}/host-blob` }]), /goes through a symlink/);
});

test('honest archives still import; the docker-save key binds the layers, not only the config', async () => {
  const store = new ImageStore(`${scratch}/store-ok`);
  const a = await store.import(archive([dockerManifest([{ Config: 'config.json', Layers: ['l/layer.tar'] }]), config, { name: 'l', type: 'dir' }, { name: 'l/layer.tar', data: layerTar }]), 'good');
  assert.equal(a.format, 'docker-save');
  assert.equal(readFileSync(`${store.rootfs('good')}/hello`, 'utf8'), 'from the layer\n');
  // Same config, other layer: must not reuse (be poisoned by, or poison) the first image's rootfs.
  const other = tar([{ name: 'hello', data: 'other layer\n' }]);
  const b = await store.import(archive([dockerManifest([{ Config: 'config.json', Layers: ['layer.tar'] }]), config, { name: 'layer.tar', data: other }]), 'other');
  assert.notEqual(a.digest, b.digest);
  assert.equal(readFileSync(`${store.rootfs('other')}/hello`, 'utf8'), 'other layer\n');
  assert.equal(readFileSync(`${store.rootfs('good')}/hello`, 'utf8'), 'from the layer\n');
  const manifest = JSON.stringify({ schemaVersion: 2, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha(layerTar)}`, size: layerTar.length }] });
  const oci = await store.import(ociArchive({ manifests: [{ digest: `sha256:${sha(manifest)}` }] }, [[sha(manifest), manifest], [sha(layerTar), layerTar]]), 'oci');
  assert.equal(oci.format, 'oci-archive');
  assert.equal(oci.digest, `sha256:${sha(manifest)}`);
  assert.deepEqual(readdirSync(sentinel).sort(), ['keep']);
});
