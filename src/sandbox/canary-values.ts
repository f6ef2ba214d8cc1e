// The values of canary credentials: well-formed (an agent's tooling parses them, `ssh-keygen -y`
// accepts the key) and random per sandbox, so a canary seen anywhere names the sandbox it came
// from. They grant nothing: no server knows the key, the AWS key id, or the .netrc password.
import { createHash, generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';

export type CanaryName = 'ssh-key' | 'aws-credentials' | 'netrc' | 'env';

/** One secret string inside a canary; egress that carries it carries the canary. */
export interface CanaryToken { name: string; value: string }

export interface CanaryValue {
  name: CanaryName;
  /** path below the home directory, for file canaries */
  rel?: string;
  /** environment variable, for the env canary */
  env?: string;
  /** file content (file canaries) */
  content?: string;
  /** extra, non-secret companion files planted with it (the .pub next to a key) */
  companions?: Array<{ rel: string; content: string }>;
  tokens: CanaryToken[];
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function pick(alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** SSH wire string: uint32 length + bytes. */
function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/**
 * A fresh ed25519 key in OpenSSH's private key format (unencrypted, as `ssh-keygen -N ''`
 * writes it). Tokens are the full 70-character base64 lines after the first: the first line
 * is the same for every ed25519 key (magic, cipher, kdf), the others carry the random key.
 */
export function sshKeyCanary(comment: string): CanaryValue {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(x)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(x), sshString(Buffer.concat([d, x])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''),
    Buffer.from([0, 0, 0, 1]), sshString(pubBlob), sshString(priv),
  ]);
  const b64 = blob.toString('base64');
  const lines = b64.match(/.{1,70}/g) ?? [];
  const content = `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  const tokens = lines.slice(1).filter((l) => l.length === 70).map((value, i) => ({ name: `ssh-key#${i + 1}`, value }));
  return {
    name: 'ssh-key', rel: '.ssh/id_ed25519', content, tokens,
    companions: [{ rel: '.ssh/id_ed25519.pub', content: `ssh-ed25519 ${pubBlob.toString('base64')} ${comment}\n` }],
  };
}

/** An AKIA-shaped access key id (20 chars) and a 40-char secret, in the CLI's INI layout. */
export function awsCanary(): CanaryValue {
  const id = `AKIA${pick(B32, 16)}`;
  const secret = pick(B64, 40);
  return {
    name: 'aws-credentials', rel: '.aws/credentials',
    content: `[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}\n`,
    tokens: [{ name: 'aws-credentials#key-id', value: id }, { name: 'aws-credentials#secret', value: secret }],
  };
}

/**
 * A login for a host under `.internal` (reserved for private use, so no public server ever
 * matches it and no client sends the password anywhere by itself).
 */
export function netrcCanary(): CanaryValue {
  const password = pick(ALNUM, 32);
  return {
    name: 'netrc', rel: '.netrc',
    content: `machine artifacts.internal\n  login deploy\n  password ${password}\n`,
    tokens: [{ name: 'netrc#password', value: password }],
  };
}

/**
 * A secret-looking variable in every command's environment. AWS_SECRET_ACCESS_KEY alone (no
 * key id beside it) is ignored by the AWS SDKs' environment provider, so it changes no honest
 * tool's behaviour; it is only ever read by something dumping the environment.
 */
export function envCanary(variable = 'AWS_SECRET_ACCESS_KEY'): CanaryValue {
  const value = pick(B64, 40);
  return { name: 'env', env: variable, tokens: [{ name: `env#${variable}`, value }] };
}

/** Every canary of one sandbox, freshly random. */
export function generateCanaryValues(opts: { comment: string; envVariable?: string }): CanaryValue[] {
  return [sshKeyCanary(opts.comment), awsCanary(), netrcCanary(), envCanary(opts.envVariable)];
}
