// Image metadata from outside (docker-save manifest.json, OCI index.json and manifests) is
// hostile input read by root (issue 17 §5). Its fields become host paths: a digest
// `sha256:../../x` or a layer `../../x/layer.tar` would make the importer read, hash, unpack or
// write outside the image store; a member that is a symlink would make it read a host file
// (`/root/.ssh/id_rsa`) into an image every sandbox can read. So every field is checked by a
// schema before it is used, every path is resolved without following a symlink, and every OCI
// blob must hash to its digest (the store is keyed by digest: a blob that lies about its digest
// would plant its rootfs under another image's name).
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { normalize } from 'node:path';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

const Digest = z.string().regex(DIGEST_RE, 'must be sha256: followed by 64 lowercase hex digits').describe('content digest of a blob');

/** A member path inside the archive: relative, no `..` step, no NUL, not empty. */
const MemberPath = z.string().min(1).refine(
  (p) => !p.includes('\0') && !p.startsWith('/') && !p.split('/').includes('..') && !normalize(p).startsWith('..'),
  'must be a relative path inside the archive, without .. or a leading /',
).describe('path of a file inside the image archive');

// Foreign formats: unknown keys are dropped, not refused (real images carry fields such as
// RepoTags, LayerSources, annotations that Praetor does not use); every key we DO use is checked.
export const DockerSaveManifest = z.array(z.object({
  Config: MemberPath.describe('the image config JSON inside the archive'),
  Layers: z.array(MemberPath).min(1).describe('layer tarballs inside the archive, lowest first'),
})).min(1).describe('docker save manifest.json');

const Descriptor = z.object({
  mediaType: z.string().max(256).optional().describe('OCI media type'),
  digest: Digest,
  size: z.number().int().nonnegative().optional().describe('blob size in bytes'),
  platform: z.object({ architecture: z.string().max(64).optional(), os: z.string().max(64).optional() }).optional().describe('platform of an index entry'),
});

export const OciIndex = z.object({ manifests: z.array(Descriptor).min(1).describe('manifests of the layout') }).describe('OCI index');
export const OciManifest = z.object({
  config: Descriptor.optional().describe('the image config blob'),
  layers: z.array(Descriptor).describe('layer blobs, lowest first'),
}).describe('OCI image manifest');

/** `[0].Layers[2]` from a zod issue path. */
function fieldName(path: PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
}

function valueAt(v: unknown, path: PropertyKey[]): unknown {
  let cur = v;
  for (const p of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[p] : undefined;
  return cur;
}

/** Parses `data` with `schema`; a failure names the file, the field, its value and the fix. */
export function parseMetadata<S extends z.ZodType>(schema: S, data: unknown, file: string, hint: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const value = valueAt(data, issue.path);
  const shown = typeof value === 'string' ? ` (${JSON.stringify(value.slice(0, 120))})` : '';
  throw new PraetorError('BAD_IMAGE', `${file} field ${fieldName(issue.path)}${shown}: ${issue.message}`, {
    hint: `the image metadata is malformed or hostile; ${hint}`,
  });
}

/**
 * `root/rel` as a regular file, reached through real directories only: no component may be a
 * symlink (a member `blobs -> /etc` or a blob `-> /etc/shadow` would read the host), and the
 * file itself must be a plain file (not a device, fifo or directory).
 */
export function memberFile(root: string, rel: string, what: string): string {
  const parts = normalize(rel).split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) {
    throw new PraetorError('BAD_IMAGE', `${what} "${rel}" is not a path inside the archive`, { hint: 'the image metadata is malformed or hostile; rebuild the image' });
  }
  let cur = root;
  for (const [i, p] of parts.entries()) {
    cur = `${cur}/${p}`;
    let st;
    try { st = lstatSync(cur); } catch (cause) {
      throw new PraetorError('BAD_IMAGE', `${what} "${rel}" is missing from the archive`, { hint: 'pass a complete image archive', cause });
    }
    const last = i === parts.length - 1;
    if (st.isSymbolicLink()) {
      throw new PraetorError('BAD_IMAGE', `${what} "${rel}" goes through a symlink (${parts.slice(0, i + 1).join('/')})`, {
        hint: 'image metadata and blobs must be plain files in the archive; a symlink there is refused because it could point at a host file',
      });
    }
    if (last ? !st.isFile() : !st.isDirectory()) {
      throw new PraetorError('BAD_IMAGE', `${what} "${rel}" is not a ${last ? 'regular file' : 'directory path'} in the archive`, { hint: 'pass a complete, unmodified image archive' });
    }
  }
  return cur;
}

/** The path of an OCI blob, validated (the digest has passed the schema; checked again here). */
export function blobFile(root: string, digest: string, what: string): string {
  if (!DIGEST_RE.test(digest)) throw new PraetorError('BAD_IMAGE', `${what} digest ${JSON.stringify(digest.slice(0, 120))} is not sha256:<64 hex>`, { hint: 'the image metadata is malformed or hostile' });
  return memberFile(root, `blobs/sha256/${digest.slice(7)}`, what);
}

/** sha256 of a file, read through one fd (what is hashed is what was opened). */
export function sha256Of(path: string): string {
  const fd = openSync(path, 'r');
  try {
    if (!fstatSync(fd).isFile()) throw new PraetorError('BAD_IMAGE', `${path} is not a regular file`, { hint: 'pass a complete image archive' });
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
    return h.digest('hex');
  } finally { closeSync(fd); }
}

/** Refuses a blob whose content does not hash to its digest. */
export function verifyBlob(path: string, digest: string, what: string): void {
  const got = `sha256:${sha256Of(path)}`;
  if (got !== digest) {
    throw new PraetorError('BAD_IMAGE', `${what} does not match its digest: the manifest says ${digest}, the blob hashes to ${got}`, {
      hint: 'the archive is corrupt or its metadata lies about its content; export the image again',
    });
  }
}

/** JSON from a member file, at most `max` bytes (metadata, not layers). */
export function readMemberJson(path: string, what: string, max = 8 << 20): unknown {
  const st = lstatSync(path);
  if (st.size > max) throw new PraetorError('BAD_IMAGE', `${what} is ${st.size} bytes, more than the ${max} allowed for image metadata`, { hint: 'pass a real image archive' });
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(st.size);
    let off = 0;
    for (let n; off < buf.length && (n = readSync(fd, buf, off, buf.length - off, null)) > 0;) off += n;
    return JSON.parse(buf.subarray(0, off).toString('utf8'));
  } catch (cause) {
    throw new PraetorError('BAD_IMAGE', `${what} is not JSON`, { hint: 'pass a complete OCI layout or docker save archive', cause });
  } finally { closeSync(fd); }
}
