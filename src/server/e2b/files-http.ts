// envd's HTTP side: GET /files (download, gzip on request), POST /files (multipart with one or
// many files, or raw octet-stream, optionally gzip-compressed), and /health. Reads and writes go
// through ../sandbox-ops.ts, i.e. a command inside the sandbox as the agent.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PraetorError } from '../../errors.ts';
import { zodError } from '../http.ts';
import { MAX_FILE_BYTES, SandboxPath, readFile, writeFile } from '../sandbox-ops.ts';
import { checkUser, resolvePath } from './envd-user.ts';
import type { E2bSandbox } from './registry.ts';

const FileQuery = z.object({
  path: z.string().max(4096).optional().describe('file path; relative paths start at the agent\'s home'),
  username: z.string().max(64).optional().describe('envd user (only the agent user exists)'),
  signature: z.string().optional(), signature_expiration: z.string().optional(),
}).strict();

function target(raw: string | undefined, field: string): string {
  if (raw === undefined || raw === '') throw new PraetorError('BAD_ARGUMENT', `${field} is required`, { hint: 'give the file path in ?path= (or as each multipart part\'s filename)' });
  const p = resolvePath(raw);
  const r = SandboxPath.safeParse(p);
  if (!r.success) throw new PraetorError('BAD_ARGUMENT', `${field}: ${r.error.issues[0]!.message}`, { hint: 'give the path inside the sandbox' });
  return p;
}

const info = (path: string) => ({ name: path.split('/').pop() ?? path, type: 'file', path });

export function fileRoutes(app: FastifyInstance, o: { recordOf: (req: FastifyRequest) => E2bSandbox }): void {
  const query = (req: FastifyRequest) => {
    const r = FileQuery.safeParse(req.query ?? {});
    if (!r.success) throw zodError(r.error, 'query', req.query);
    if (r.data.signature !== undefined) throw new PraetorError('BAD_ARGUMENT', 'signed file URLs are not supported by Praetor\'s envd', { hint: 'send the X-Access-Token header instead (the SDK does when no signature is asked for)' });
    checkUser(r.data.username);
    return r.data;
  };

  app.get('/files', async (req, reply) => {
    const q = query(req);
    const rec = o.recordOf(req);
    const data = await readFile(rec.entry.sb, target(q.path, 'path'));
    void reply.header('content-type', 'application/octet-stream');
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && data.length > 0) {
      return reply.header('content-encoding', 'gzip').send(gzipSync(data));
    }
    return reply.send(data);
  });

  app.post('/files', async (req) => {
    const q = query(req);
    const rec = o.recordOf(req);
    const written: ReturnType<typeof info>[] = [];
    if (req.isMultipart()) {
      if (req.headers['content-encoding']) throw new PraetorError('UNSUPPORTED_MEDIA_TYPE', 'a compressed multipart upload is not supported', { hint: 'gzip goes with Content-Type: application/octet-stream (the SDK does this with gzip: true)' });
      const files: Array<{ path: string; data: Buffer }> = [];
      for await (const part of req.parts()) {
        if (part.type !== 'file') continue;
        const data = await part.toBuffer();
        // One file: ?path= names it (older SDKs send "blob" as the filename). Several: each part's filename is its path.
        files.push({ path: q.path ? '' : target(part.filename, 'the part\'s filename'), data });
      }
      if (files.length === 0) throw new PraetorError('BAD_ARGUMENT', 'no file part in the upload', { hint: 'send multipart/form-data with a "file" part' });
      if (q.path) {
        if (files.length > 1) throw new PraetorError('BAD_ARGUMENT', `?path= names one file but ${files.length} were sent`, { hint: 'leave out ?path= and name each part by its path' });
        files[0]!.path = target(q.path, 'path');
      }
      for (const f of files) { await writeFile(rec.entry.sb, f.path, f.data); written.push(info(f.path)); }
      return written;
    }
    const path = target(q.path, 'path');
    let body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
    if (enc === 'gzip') {
      // Bounded inflation (threat: a small gzip bomb expanding into server memory).
      try { body = gunzipSync(body, { maxOutputLength: MAX_FILE_BYTES }); } catch (e) {
        throw new PraetorError('BAD_ARGUMENT', `the gzip body could not be inflated: ${(e as Error).message}`, { hint: `send valid gzip of at most ${MAX_FILE_BYTES} bytes uncompressed` });
      }
    } else if (enc !== '' && enc !== 'identity') {
      throw new PraetorError('UNSUPPORTED_MEDIA_TYPE', `content-encoding ${enc} is not supported`, { hint: 'use gzip or none' });
    }
    await writeFile(rec.entry.sb, path, body);
    return [info(path)];
  });
}
