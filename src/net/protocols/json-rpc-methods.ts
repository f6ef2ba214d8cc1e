// Method names that identify mining (Stratum, xmrig, EthereumStratum, ethproxy/getwork) and
// on-chain value transfer (Ethereum JSON-RPC transaction and signing calls). See
// shared/reference/detection-signatures.md §3.5 and §10. The method name is the cheapest
// discriminator: raw payloads are RLP hex.
import { BODY_LIMIT, NO, type SniffResult } from './types.ts';

const N = { state: 'no' as const };
const M = { state: 'more' as const };

export const MINING_METHODS = new Set([
  'mining.subscribe', 'mining.authorize', 'mining.submit', 'mining.hello', 'mining.bye', 'mining.noop',
  'mining.hashrate', 'mining.extranonce.subscribe', 'mining.notify', 'mining.set_difficulty',
  'mining.set_extranonce', 'mining.set_target', 'eth_submitLogin', 'eth_getWork', 'eth_submitWork',
  'eth_submitHashrate', 'getwork', 'getblocktemplate', 'submitblock', 'keepalived',
]);
export const TX_METHODS = new Set([
  'eth_sendRawTransaction', 'eth_sendTransaction', 'eth_signTransaction', 'eth_sign',
  'eth_signTypedData', 'eth_signTypedData_v1', 'eth_signTypedData_v3', 'eth_signTypedData_v4',
  'personal_sign', 'personal_sendTransaction', 'personal_signTransaction', 'eth_sendBundle',
  'eth_sendPrivateTransaction', 'wallet_sendCalls',
  // Other EVM relays: ERC-4337 bundlers, conditional and MEV-protected submission.
  'eth_sendUserOperation', 'eth_sendRawTransactionConditional', 'eth_sendPrivateRawTransaction', 'mev_sendBundle',
  // Bitcoin Core and its forks (signing, broadcasting and wallet sends). Its generic `send` is
  // judged by shape below, with Monero's wallet calls: the bare names are common in other APIs.
  'sendrawtransaction', 'sendtoaddress', 'sendmany', 'sendall', 'signrawtransactionwithkey',
  'signrawtransactionwithwallet', 'walletcreatefundedpsbt', 'walletprocesspsbt', 'submitpackage',
  // Solana, Tendermint/Cosmos, NEAR.
  'sendTransaction', 'broadcast_tx_sync', 'broadcast_tx_async', 'broadcast_tx_commit', 'send_tx',
]);

/**
 * Value-moving calls whose names are too generic to judge alone: Bitcoin Core's `send` (its
 * `outputs` parameter) and Monero wallet RPC's `transfer`/`transfer_split`/`sweep_all` (their
 * `destinations` or `address`). A chat API's {"method":"send","params":{"text":…}} stays plain.
 */
function genericTx(method: string, params: unknown): boolean {
  if (params === null || typeof params !== 'object') return false;
  const keys = Array.isArray(params) ? params.flatMap((p) => (p && typeof p === 'object' ? Object.keys(p) : [])) : Object.keys(params);
  if (method === 'send') return keys.includes('outputs') || (Array.isArray(params) && Array.isArray(params[0]) && params[0].some((o: unknown) => o !== null && typeof o === 'object'));
  if (method === 'transfer' || method === 'transfer_split') return keys.includes('destinations');
  if (method === 'sweep_all') return keys.includes('address');
  return false;
}

type Kind = 'stratum' | 'jsonrpc-tx' | 'jsonrpc' | null;

function kindOf(o: unknown): Kind {
  if (Array.isArray(o)) {
    const ks = o.map(kindOf);
    return ks.includes('stratum') ? 'stratum' : ks.includes('jsonrpc-tx') ? 'jsonrpc-tx' : ks.includes('jsonrpc') ? 'jsonrpc' : null;
  }
  if (o === null || typeof o !== 'object') return null;
  const r = o as Record<string, unknown>;
  const method = typeof r.method === 'string' ? r.method : undefined;
  if (method !== undefined) {
    if (MINING_METHODS.has(method) || /^mining\./.test(method)) return 'stratum';
    // xmrig's first message is `login` with login/pass/agent params; `submit`/`job` follow.
    const p = r.params as Record<string, unknown> | undefined;
    if ((method === 'login' || method === 'submit' || method === 'job') && p && typeof p === 'object' && ('agent' in p || 'pass' in p || 'login' in p || 'job_id' in p || 'blob' in p)) return 'stratum';
    if (TX_METHODS.has(method) || /^eth_sign/.test(method) || genericTx(method, r.params)) return 'jsonrpc-tx';
    if ('jsonrpc' in r || 'id' in r || 'params' in r) return 'jsonrpc';
  }
  // A pool's reply to login carries result.job; to subscribe, an extranonce array.
  const res = r.result as Record<string, unknown> | undefined;
  if (res && typeof res === 'object' && 'job' in res && 'id' in res) return 'stratum';
  return null;
}

/**
 * Classifies JSON text at the start of buf: newline-delimited (Stratum) or one document
 * (JSON-RPC over TCP or an HTTP body). `final` says no more bytes will come.
 */
export function classifyJson(buf: Buffer, final = false): { state: 'no' | 'more' } | { state: 'match'; kind: Exclude<Kind, null>; method?: string } {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  if (i === buf.length) return final ? N : M;
  if (buf[i] !== 0x7b && buf[i] !== 0x5b) return N; // { or [
  const text = buf.subarray(i, Math.min(buf.length, BODY_LIMIT)).toString('utf8');
  const nl = text.indexOf('\n');
  const candidates = nl >= 0 ? [text.slice(0, nl), text] : [text];
  for (const c of candidates) {
    let o: unknown;
    try { o = JSON.parse(c); } catch { continue; }
    const kind = kindOf(o);
    if (kind === null) return N;
    const m = Array.isArray(o) ? undefined : (o as { method?: unknown }).method;
    return { state: 'match', kind, ...(typeof m === 'string' ? { method: m } : {}) };
  }
  // Incomplete JSON: wait for the rest unless the stream ended or the body limit is reached.
  return final || buf.length - i >= BODY_LIMIT ? N : M;
}

export function jsonSniff(buf: Buffer, want: (k: Exclude<Kind, null>) => boolean): SniffResult {
  const r = classifyJson(buf);
  if (r.state !== 'match') return r;
  return want(r.kind) ? { state: 'match', protocol: r.kind, ...(r.method ? { detail: `method ${r.method}` } : {}) } : NO;
}
