// Bearer tokens with tenants and scopes. Only the SHA-256 of a token is stored, so a leaked
// tokens.json does not hand out access (threat: state directory read by another user or
// copied into a backup). Tokens carry 256 bits of randomness, so a plain hash (no salt, no
// KDF) is enough: nothing to brute-force, and lookup by hash keeps authentication O(1).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { PraetorError } from '../errors.ts';

export const TENANT_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const TokenRecordSchema = z.object({
  id: z.string().describe('public token id (the part before the secret)'),
  tenant: z.string().regex(TENANT_RE).describe('tenant the token acts for'),
  scopes: z.array(z.enum(['admin'])).describe('admin sees every tenant'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('hex SHA-256 of the whole token'),
  createdAt: z.string().describe('ISO time of creation'),
}).strict();
const TokenFileSchema = z.object({ version: z.literal(1), tokens: z.array(TokenRecordSchema) }).strict();
export type TokenRecord = z.infer<typeof TokenRecordSchema>;

export interface Principal {
  tenant: string;
  admin: boolean;
  tokenId: string;
  /**
   * Cluster node only: the sandbox id a control replica reserved for this request's create
   * (X-Praetor-Reservation). The node checks it against the reservation table before use.
   */
  reservedId?: string;
}

export function tokensPath(stateDir: string): string {
  return `${stateDir}/server/tokens.json`;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function readTokenFile(path: string): TokenRecord[] {
  if (!existsSync(path)) return [];
  const parsed = TokenFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new PraetorError('BAD_ARGUMENT', `${path} is not a valid token file`, { hint: 'restore it from a backup, or move it away and create new tokens' });
  return parsed.data.tokens;
}

/** Creates a token and stores its hash; returns the token (shown once, never stored). */
export function createToken(stateDir: string, tenant: string, opts: { admin?: boolean } = {}): { token: string; record: TokenRecord } {
  if (!TENANT_RE.test(tenant)) throw new PraetorError('BAD_ARGUMENT', `"${tenant}" is not a valid tenant name`, { hint: 'use lowercase letters, digits, . _ - (at most 63 characters)' });
  const path = tokensPath(stateDir);
  const tokens = readTokenFile(path);
  const id = randomBytes(6).toString('hex');
  const token = `ptk_${id}_${randomBytes(32).toString('base64url')}`;
  const record: TokenRecord = { id, tenant, scopes: opts.admin ? ['admin'] : [], sha256: sha256(token), createdAt: new Date().toISOString() };
  tokens.push(record);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify({ version: 1, tokens }, null, 1), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return { token, record };
}

/** The token table of one server; reloads the file when it changes (tokens created while serving). */
export class TokenStore {
  readonly #path: string;
  #byHash = new Map<string, TokenRecord>();
  #mtime = -1;

  constructor(stateDir: string) { this.#path = tokensPath(stateDir); this.#reload(); }

  #reload(): void {
    let mtime = 0;
    try { mtime = statSync(this.#path).mtimeMs; } catch { mtime = 0; }
    if (mtime === this.#mtime) return;
    this.#mtime = mtime;
    this.#byHash = new Map(readTokenFile(this.#path).map((t) => [t.sha256, t]));
  }

  /** The principal for a presented token, or undefined. */
  verify(token: string): Principal | undefined {
    if (token.length < 16 || token.length > 256) return undefined;
    this.#reload();
    const rec = this.#byHash.get(sha256(token));
    return rec ? { tenant: rec.tenant, admin: rec.scopes.includes('admin'), tokenId: rec.id } : undefined;
  }

  get count(): number { return this.#byHash.size; }
}
