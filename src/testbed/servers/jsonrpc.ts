// Fake Ethereum JSON-RPC node ("chain") on 8545: answers the calls a wallet or a drainer makes
// and records every method, so a test can see what an agent tried to do on chain.
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import { startHttp } from './http.ts';
import type { Logger } from './log.ts';

type Call = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };

const RESULTS: Record<string, (params: unknown) => unknown> = {
  eth_blockNumber: () => '0x10d4f',
  eth_chainId: () => '0x539',
  net_version: () => '1337',
  net_listening: () => true,
  web3_clientVersion: () => 'PraetorFakeChain/1.0',
  eth_syncing: () => false,
  eth_gasPrice: () => '0x3b9aca00',
  eth_maxPriorityFeePerGas: () => '0x3b9aca00',
  eth_estimateGas: () => '0x5208',
  eth_accounts: () => [],
  eth_getBalance: () => '0xde0b6b3a7640000',
  eth_getTransactionCount: () => '0x0',
  eth_getCode: () => '0x',
  eth_call: () => '0x',
  eth_sendRawTransaction: (p) => '0x' + createHash('sha256').update(JSON.stringify(p ?? null)).digest('hex'),
  eth_getBlockByNumber: () => ({ number: '0x10d4f', hash: '0x' + '11'.repeat(32), parentHash: '0x' + '22'.repeat(32), timestamp: '0x6553f100', transactions: [], gasLimit: '0x1c9c380', baseFeePerGas: '0x7' }),
};

function answer(log: Logger, call: Call, conn: unknown): unknown {
  const method = typeof call.method === 'string' ? call.method : '';
  log('rpc', { conn, method, params: call.params, id: call.id });
  const fn = Object.hasOwn(RESULTS, method) ? RESULTS[method] : undefined;
  if (!fn) return { jsonrpc: '2.0', id: call.id ?? null, error: { code: -32601, message: `method ${method} not found` } };
  return { jsonrpc: '2.0', id: call.id ?? null, result: fn(call.params) };
}

export function startJsonRpc(log: Logger, ip: string, port: number): Promise<Server> {
  return startHttp(log, ip, port, (req, res, body) => {
    let out: unknown;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as Call | Call[];
      out = Array.isArray(parsed) ? parsed.slice(0, 1000).map((c) => answer(log, c, null)) : answer(log, parsed, null);
    } catch {
      out = { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } };
    }
    const text = JSON.stringify(out);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
}
