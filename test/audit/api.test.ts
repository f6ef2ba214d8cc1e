// The ledger API the sandbox manager and server rely on, and its pinned export list.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as audit from '../../src/audit/index.ts';
import { isPraetorError } from '../../src/errors.ts';
import type { PraetorEvent } from '../../src/events/schema.ts';
import { episodeEvents } from './events.ts';

describe('audit API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'praetor-audit-api-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exports exactly the pinned names', () => {
    assert.deepEqual(Object.keys(audit).sort(), [
      'CLUSTER_LEDGER_KEY_FILES', 'ClusterLedger', 'LEDGER_FORMAT', 'Ledger', 'LedgerOptionsSchema', 'canonicalJson',
      'clusterChainUrl', 'createClusterLedgerKey', 'defaultLedgerPath', 'exportAtif', 'exportJsonl', 'findEpisodeNodes', 'genesisHash',
      'ledgerAt', 'loadTrustedPublicKey', 'nodeChainSchema', 'nodeChainUrl', 'nodeLedgerPublicKey', 'openLedger',
      'openNodeLedger', 'openNodeReader', 'openReader', 'publicKeyPath', 'recordHash', 'renderTrace', 'resolveDb',
      'traceEpisode', 'verifyCluster', 'verifyLedger',
    ]);
  });

  it('ledgerAt: a postgres:// or postgresql:// URL is the shared store, anything else a SQLite path', () => {
    assert.deepEqual(audit.ledgerAt('postgres://u@h/db'), { url: 'postgres://u@h/db' });
    assert.deepEqual(audit.ledgerAt('postgresql://h/db'), { url: 'postgresql://h/db' });
    assert.deepEqual(audit.ledgerAt('/var/lib/praetor/ledger.db'), { path: '/var/lib/praetor/ledger.db' });
    assert.deepEqual(audit.ledgerAt('postgres-ledger.db'), { path: 'postgres-ledger.db' }, 'the old startsWith test took this for a URL');
  });

  for (const inProcess of [false, true]) {
    it(`flush() means durable and visible to other readers (${inProcess ? 'in-process' : 'writer thread'})`, async () => {
      const state = mkdtempSync(join(dir, 's-'));
      const l = await audit.openLedger({ stateDir: state, inProcess, batchMs: 1000 });
      const events = episodeEvents({ episodeId: 'ep', sandboxId: 'sb', steps: 2 });
      for (const e of events) l.append(e);
      assert.equal(l.backlog, events.length);
      await l.flush();
      assert.equal(l.backlog, 0);
      assert.equal(l.acknowledged, events.length);
      const d = new DatabaseSync(audit.defaultLedgerPath(state), { readOnly: true });
      assert.equal((d.prepare('SELECT count(*) AS n FROM ledger_records').get() as { n: number }).n, events.length);
      d.close();
      await l.close();
      assert.equal(l.healthy, false);
      assert.throws(() => l.append(events[0]!), (e) => isPraetorError(e) && e.code === 'BAD_STATE');
    });
  }

  it('records the event as it was when appended, not as later mutated', async () => {
    const state = mkdtempSync(join(dir, 's-'));
    const l = await audit.openLedger({ stateDir: state });
    const e = episodeEvents({ episodeId: 'ep', sandboxId: 'sb', steps: 1 })[3]! as PraetorEvent & { input: string };
    l.append(e);
    e.input = 'rm -rf / (rewritten after the fact)';
    await l.close();
    const d = new DatabaseSync(audit.defaultLedgerPath(state), { readOnly: true });
    const body = (d.prepare('SELECT body FROM ledger_records WHERE seq = 1').get() as { body: string }).body;
    d.close();
    assert.doesNotMatch(body, /rewritten/);
    assert.equal(body, audit.canonicalJson({ ...e, input: '{"cmd":"curl http://203.0.113.9:3333"}' }));
  });

  it('rejects unknown options with the key named', async () => {
    await assert.rejects(audit.openLedger({ stateDir: dir, batchSz: 10 } as never), (e) => isPraetorError(e) && e.code === 'BAD_ARGUMENT' && /batchSz|unrecognized/i.test(e.message));
  });

  it('refuses to extend a ledger under a different state directory key', async () => {
    const a = mkdtempSync(join(dir, 'a-'));
    const b = mkdtempSync(join(dir, 'b-'));
    const path = join(dir, 'shared.db');
    await (await audit.openLedger({ path, stateDir: a })).close();
    await assert.rejects(audit.openLedger({ path, stateDir: b }), (e) => isPraetorError(e) && e.code === 'LEDGER_UNAVAILABLE');
  });
});
