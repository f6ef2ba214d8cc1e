// A brokered secret whose value is read from the server's own environment (`env:`) is refused
// in a request's policy: a tenant must not be able to point the operator's variables (the model
// upstream's key, cloud credentials) at a host it allows. Inline values are the tenant's own.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startTestServer } from '../server/helpers.ts';

const t = await startTestServer();
after(() => t.server.close());

test('a request policy with secrets[].env is refused with BAD_POLICY, naming the secret', async () => {
  const tok = t.token('acme');
  const r = await t.api(tok, 'POST', '/v1/sandboxes', {
    policy: { network: { allow: [{ domain: 'api.example.test', ports: [443] }], secrets: [{ name: 'STOLEN', domain: 'api.example.test', header: 'X-Key', env: 'PATH' }] } },
  });
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /STOLEN/); assert.match(r.text, /env: reads the server's environment/);
});
