// The image cache: OCI image layouts, `docker save` tarballs, OCI archives and plain rootfs
// tarballs, unpacked once into a content-addressed directory that every sandbox shares read-only
// as its overlay's lower layer. Names are pointers to digests, so a registry pull can later land
// in the same cache without changing how sandboxes use it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';
import { applyLayer, confinedTar } from './image-layers.ts';
import { blobFile, DIGEST_RE, DockerSaveManifest, memberFile, OciIndex, OciManifest, parseMetadata, readMemberJson, sha256Of, verifyBlob } from './image-manifest.ts';

const IndexSchema = z.record(z.string(), z.object({
  digest: z.string(), source: z.string(), format: z.string(), importedAt: z.string(), sizeBytes: z.number(),
}));
export type ImageEntry = z.infer<typeof IndexSchema>[string] & { name: string };

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,127}(:[a-zA-Z0-9._-]{1,128})?$/;

/** A name an image may be imported (or committed) under: lowercase, an optional :tag, not `host`. */
export function isImageName(name: string): boolean {
  return NAME_RE.test(name) && name !== 'host';
}

export class ImageStore {
  readonly dir: string;
  constructor(dir: string) { this.dir = dir; }

  #index(): z.infer<typeof IndexSchema> {
    const p = `${this.dir}/index.json`;
    if (!existsSync(p)) return {};
    return IndexSchema.parse(JSON.parse(readFileSync(p, 'utf8')));
  }

  #save(idx: z.infer<typeof IndexSchema>): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(`${this.dir}/index.json.tmp`, JSON.stringify(idx, null, 1));
    renameSync(`${this.dir}/index.json.tmp`, `${this.dir}/index.json`);
  }

  list(): ImageEntry[] {
    return Object.entries(this.#index()).map(([name, e]) => ({ name, ...e })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The unpacked root of an image, for the overlay's lower layer. */
  rootfs(name: string): string {
    const e = this.#index()[name];
    // index.json is ours, but a digest from it still becomes a path: keep the check next to the use.
    if (e && !DIGEST_RE.test(e.digest)) throw new PraetorError('BAD_IMAGE', `image "${name}" has an invalid digest in the store index`, { hint: `remove it with \`praetor image rm ${name}\` and import it again` });
    if (!e) {
      const known = this.list().map((i) => i.name);
      throw new PraetorError('UNKNOWN_IMAGE', `no image named "${name}"`, {
        hint: known.length ? `known images: host, ${known.join(', ')}` : 'import one with `praetor image import PATH --name NAME`, or use --image host',
      });
    }
    return `${this.dir}/blobs/${e.digest.replace(':', '-')}/rootfs`;
  }

  async import(path: string, name?: string): Promise<ImageEntry> {
    if (!existsSync(path)) throw new PraetorError('BAD_IMAGE', `${path} does not exist`, { hint: 'pass an OCI layout directory or an image tarball' });
    const imageName = name ?? basename(path).replace(/\.(tar|tar\.gz|tgz|oci)$/, '').toLowerCase();
    if (!isImageName(imageName)) {
      throw new PraetorError('BAD_ARGUMENT', `"${imageName}" is not a valid image name`, { hint: 'use lowercase letters, digits, . _ - and an optional :tag; `host` is reserved' });
    }
    mkdirSync(`${this.dir}/blobs`, { recursive: true });
    const tmp = mkdtempSync(`${this.dir}/import-`);
    try {
      let src = path;
      let format: string;
      if (statSync(path).isDirectory()) format = 'oci-layout';
      else {
        const entries = tarList(path, 64);
        if (entries.some((e) => /^(\.\/)?oci-layout$/.test(e)) || entries.some((e) => /^(\.\/)?manifest\.json$/.test(e))) {
          src = `${tmp}/archive`;
          mkdirSync(src);
          tarExtract(path, src);
          format = existsSync(`${src}/oci-layout`) ? 'oci-archive' : 'docker-save';
        } else format = 'rootfs-tar';
      }
      const { digest, layers } = format === 'rootfs-tar' ? { digest: `sha256:${await sha256File(path)}`, layers: [path] } : readManifest(src, format);
      if (!DIGEST_RE.test(digest)) throw new PraetorError('BAD_IMAGE', `image digest ${digest.slice(0, 80)} is not sha256:<64 hex>`, { hint: 'the image metadata is malformed or hostile' });
      const target = `${this.dir}/blobs/${digest.replace(':', '-')}`;
      if (!existsSync(`${target}/rootfs`)) {
        const root = `${tmp}/rootfs`;
        mkdirSync(root, { mode: 0o755 });
        for (const l of layers) applyLayer(l, root);
        mkdirSync(target, { recursive: true });
        renameSync(root, `${target}/rootfs`);
      }
      const size = Number(spawnSync('du', ['-sb', `${target}/rootfs`], { encoding: 'utf8' }).stdout.split('\t')[0]) || 0;
      const idx = this.#index();
      idx[imageName] = { digest, source: path, format, importedAt: new Date().toISOString(), sizeBytes: size };
      this.#save(idx);
      return { name: imageName, ...idx[imageName]! };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  remove(name: string): void {
    const idx = this.#index();
    const e = idx[name];
    if (!e) throw new PraetorError('UNKNOWN_IMAGE', `no image named "${name}"`, { hint: 'see `praetor image ls`' });
    delete idx[name];
    this.#save(idx);
    // Blobs are shared by digest: remove only when no other name points at it (and never a path
    // a malformed digest would make of it).
    if (DIGEST_RE.test(e.digest) && !Object.values(idx).some((o) => o.digest === e.digest)) {
      rmSync(`${this.dir}/blobs/${e.digest.replace(':', '-')}`, { recursive: true, force: true });
    }
  }
}

function tarList(path: string, max: number): string[] {
  const r = spawnSync('tar', ['-tf', path], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new PraetorError('BAD_IMAGE', `${path} is not a readable tar archive: ${r.stderr.trim()}`, { hint: 'pass `docker save` output, an OCI archive, an OCI layout directory or a rootfs tarball' });
  return r.stdout.split('\n').slice(0, max);
}

/**
 * The outer archive (docker save, OCI archive) is as hostile as its layers: unpacked the same
 * confined way (only `dir` writable, so a `../` member or a write through a planted symlink fails),
 * and with no capabilities at all (no device nodes, no owners: it holds only metadata and blobs).
 */
function tarExtract(path: string, dir: string): void {
  const r = confinedTar(path, dir, ['--no-same-owner', '--no-same-permissions'], { dropCaps: true });
  if (r.status !== 0) {
    const detail = (r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join('; ');
    const escape = /Read-only file system|contains '\.\.'|Removing leading/.test(detail);
    throw new PraetorError('BAD_IMAGE', `cannot unpack ${basename(path)}${escape ? ': a member reaches outside the archive' : ''}: ${detail}`, {
      hint: escape ? 'the archive is malformed or hostile (a .. member, an absolute name, or a symlink written through); export the image again' : 'check the archive is complete',
    });
  }
}

const HINT_DOCKER = 'export the image again with `docker save IMAGE -o file.tar`';
const HINT_OCI = 'pass an OCI image layout or archive as written by a registry tool (skopeo, buildah, docker)';

/** The layer paths of an unpacked docker-save archive or OCI layout, every one checked. */
function readManifest(root: string, format: string): { digest: string; layers: string[] } {
  if (format === 'docker-save') {
    const m = parseMetadata(DockerSaveManifest, readMemberJson(memberFile(root, 'manifest.json', 'manifest.json'), 'manifest.json'), 'manifest.json', HINT_DOCKER);
    const first = m[0]!;
    const config = memberFile(root, first.Config, 'manifest.json field [0].Config');
    const layers = first.Layers.map((l, i) => memberFile(root, l, `manifest.json field [0].Layers[${i}]`));
    // The store is keyed by digest and an existing key is reused: bind the key to the config AND
    // every layer, or an archive copying a known image's config would plant its own layers there.
    const h = createHash('sha256').update(`docker-save\n${sha256Of(config)}\n`);
    for (const l of layers) h.update(`${sha256Of(l)}\n`);
    return { digest: `sha256:${h.digest('hex')}`, layers };
  }
  const index = parseMetadata(OciIndex, readMemberJson(memberFile(root, 'index.json', 'index.json'), 'index.json'), 'index.json', HINT_OCI);
  let digest = index.manifests[0]!.digest;
  let what = 'index.json field manifests[0]';
  let file = blobFile(root, digest, what);
  verifyBlob(file, digest, what);
  let raw = readMemberJson(file, `manifest ${digest}`);
  if (raw !== null && typeof raw === 'object' && 'manifests' in raw) { // an index of platforms: pick ours
    const nested = parseMetadata(OciIndex, raw, `index ${digest}`, HINT_OCI);
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const i = Math.max(0, nested.manifests.findIndex((x) => x.platform?.architecture === arch));
    digest = nested.manifests[i]!.digest;
    what = `index ${nested.manifests[i]!.digest} field manifests[${i}]`;
    file = blobFile(root, digest, what);
    verifyBlob(file, digest, what);
    raw = readMemberJson(file, `manifest ${digest}`);
  }
  if (raw === null || typeof raw !== 'object' || !('layers' in raw)) throw new PraetorError('BAD_IMAGE', `manifest ${digest} has no layers`, { hint: 'pass an image manifest, not a bare index' });
  const manifest = parseMetadata(OciManifest, raw, `manifest ${digest}`, HINT_OCI);
  const layers = manifest.layers.map((l, i) => {
    const w = `manifest ${digest} field layers[${i}]`;
    const f = blobFile(root, l.digest, w);
    verifyBlob(f, l.digest, w);
    return f;
  });
  return { digest, layers };
}

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('error', rej).on('end', () => res(h.digest('hex')));
  });
}
