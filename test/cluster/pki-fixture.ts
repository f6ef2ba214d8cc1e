// Shared setup of the PKI tests: a real PostgreSQL, a cluster CA, a control identity that holds
// the CA key and serves the join endpoint on 127.0.0.1, all removed when the file ends.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { CA_FILES, initClusterCa, issueControlCertificate, startJoinServer, type JoinServer } from '../../src/cluster/pki.ts';
import { PraetorError } from '../../src/errors.ts';
import { postgresAvailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';

export const skip = postgresAvailable() ? false : 'needs PostgreSQL 15 and root (installed by npm test\'s setup)';

export interface PkiFixture {
  tmp: string;
  at(...p: string[]): string;
  pool: pg.Pool;
  dbUrl: string;
  /** the join endpoint (control-0's identity, the CA key beside it). */
  controlUrl: string;
  join: JoinServer;
  logs: string[];
  close(): Promise<void>;
}

/** Starts what the tests share; call from before() and close() from after() (also on failure). */
export async function pkiFixture(prefix: string, o: { bootstrap?: { token: string; maxJoins: number; ttlMs: number } } = {}): Promise<PkiFixture> {
  const tmp = mkdtempSync(join(tmpdir(), `praetor-${prefix}-`));
  let pgServer: TestPostgres | undefined;
  let pool: pg.Pool | undefined;
  let joinServer: JoinServer | undefined;
  const close = async () => {
    await joinServer?.close();
    await pool?.end();
    await pgServer?.stop();
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    return await start();
  } catch (e) {
    await close();
    throw e;
  }
  async function start(): Promise<PkiFixture> {
  const at = (...p: string[]) => join(tmp, ...p);
  pgServer = await startPostgres();
  const dbUrl = await pgServer.createDatabase();
  pool = new pg.Pool({ connectionString: dbUrl, max: 6 });
  pool.on('error', () => undefined);
  await initClusterCa(at('ca'));
  await issueControlCertificate({ caDir: at('ca'), name: 'control-0', outDir: at('control-0'), hosts: ['127.0.0.1'] });
  copyFileSync(at('ca', CA_FILES.key), at('control-0', CA_FILES.key));
  const logs: string[] = [];
  joinServer = await startJoinServer({ pool, caDir: at('control-0'), identityDir: at('control-0'), host: '127.0.0.1', log: (m) => logs.push(m), ...(o.bootstrap ? { bootstrap: o.bootstrap } : {}) });
  return { tmp, at, pool, dbUrl, controlUrl: joinServer.url, join: joinServer, logs, close };
  }
}

/** PraetorError with this code and a fix; anything else fails the test. */
export async function refused(p: Promise<unknown> | (() => unknown), code: string, text?: RegExp): Promise<PraetorError> {
  let err: unknown;
  try { await (typeof p === 'function' ? p() : p); } catch (e) { err = e; }
  assert.ok(err instanceof PraetorError, `expected ${code}, got ${err === undefined ? 'success' : String(err)}`);
  assert.equal(err.code, code, `${err.code}: ${err.message}`);
  assert.ok(err.hint && err.hint.length > 10, `the error says the fix: ${err.message} / ${err.hint}`);
  if (text) assert.match(err.message, text);
  return err;
}

/** One HTTPS GET with these TLS options; the body and, when the server sends one, the peer's fingerprint. */
export function get(url: string, tls: object): Promise<{ status: number; body: string; fingerprint256: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, agent: false, timeout: 10_000 }, (res) => {
      const fp = (res.socket as import('node:tls').TLSSocket).getPeerCertificate?.()?.fingerprint256;
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint256: fp }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, f: () => boolean, ms = 10_000): Promise<void> {
  for (let t = 0; t < ms && !f(); t += 25) await sleep(25);
  assert.ok(f(), what);
}
