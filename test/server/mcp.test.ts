// MCP per episode, driven by the official SDK's client over Streamable HTTP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTestServer } from './helpers.ts';

const t = await startTestServer();
const A = t.token('mcp-a');
const B = t.token('mcp-b');

async function connect(ep: string, token: string): Promise<Client> {
  const c = new Client({ name: 'test', version: '1' });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${t.url}/v1/episodes/${ep}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return c;
}

test('tools/list and tools/call run as episode steps; violations are tool errors with the verdict', async () => {
  const ep = (await t.api(A, 'POST', '/v1/episodes', { task: 'mcp' })).json.episode_id;
  const sandboxId = (await t.api(A, 'GET', `/v1/episodes/${ep}`)).json.sandbox_id;
  const c = await connect(ep, A);
  try {
    assert.deepEqual((await c.listTools()).tools.map((x) => x.name).sort(), ['bash', 'edit', 'read_file', 'write_file']);
    const w = await c.callTool({ name: 'write_file', arguments: { path: '/tmp/m.txt', content: 'abc' } });
    assert.equal(w.isError, false);
    await c.callTool({ name: 'edit', arguments: { path: '/tmp/m.txt', old_text: 'b', new_text: 'B' } });
    const r = await c.callTool({ name: 'read_file', arguments: { path: '/tmp/m.txt' } }) as { content: Array<{ text: string }> };
    assert.equal(r.content[0]!.text, 'aBc');
    const b = await c.callTool({ name: 'bash', arguments: { command: 'echo $((2+2))' } }) as unknown as { content: Array<{ text: string }>; structuredContent: { safety: { verdict: string } } };
    assert.equal(b.content[0]!.text, '4\n');
    assert.equal(b.structuredContent.safety.verdict, 'allow');
    setTimeout(() => t.server.core.bus.publish({ kind: 'alert', sandboxId, rule: 'Reverse shell', priority: 'CRITICAL', tags: [], output: 'x', evidence: [], maturity: 'stable', actions: ['alert'] }), 100);
    const v = await c.callTool({ name: 'bash', arguments: { command: 'sleep 0.4' } }) as unknown as { isError: boolean; structuredContent: { safety: { verdict: string; rule: string } } };
    assert.equal(v.isError, true);
    assert.deepEqual([v.structuredContent.safety.verdict, v.structuredContent.safety.rule], ['deny', 'Reverse shell']);
    assert.equal((await t.api(A, 'GET', `/v1/episodes/${ep}/report`)).json.steps, 5);
  } finally { await c.close(); }
  const other = await t.api(B, 'POST', `/v1/episodes/${ep}/mcp`, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { accept: 'application/json, text/event-stream' });
  assert.equal(other.status, 404);
  await t.api(A, 'DELETE', `/v1/episodes/${ep}`);
});

test('tool arguments go through the action schema: ".." and NUL paths are tool errors, not steps', async () => {
  const ep = (await t.api(A, 'POST', '/v1/episodes', { task: 'mcp-paths' })).json.episode_id;
  const c = await connect(ep, A);
  try {
    for (const path of ['/tmp/../etc/passwd', '/tmp/a\0b']) {
      const r = await c.callTool({ name: 'read_file', arguments: { path } }) as { isError: boolean; content: Array<{ text: string }> };
      assert.equal(r.isError, true, path);
      assert.match(r.content[0]!.text, /^error: action\.arguments\.path: a path cannot contain/);
    }
    const w = await c.callTool({ name: 'write_file', arguments: { path: '../x', content: 'x' } }) as { isError: boolean };
    assert.equal(w.isError, true);
    const long = await c.callTool({ name: 'bash', arguments: { command: 'true', timeout_ms: 10 * 3600_000 } }) as { isError: boolean; content: Array<{ text: string }> };
    assert.equal(long.isError, true);
    assert.match(long.content[0]!.text, /action\.arguments\.timeout_ms/);
    assert.equal((await t.api(A, 'GET', `/v1/episodes/${ep}/report`)).json.steps, 0, 'refused actions are not steps');
  } finally { await c.close(); }
  // Any caller of the service (GEM, batch) gets the same check.
  const direct = await t.server.episodes.step({ tenant: 'mcp-a', admin: false }, ep, { tool: 'read_file', arguments: { path: 'a/../b' } }).catch((e: unknown) => e);
  assert.equal((direct as { code?: string }).code, 'BAD_ARGUMENT');
  await t.api(A, 'DELETE', `/v1/episodes/${ep}`);
});
