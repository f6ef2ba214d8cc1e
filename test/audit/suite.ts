// The store-parity suite: every ledger guarantee, run unchanged against SQLite and PostgreSQL.
// The tamper cases (tamper-cases.ts, shared with the cluster test) act as an attacker with write
// access to the ledger (but not to the state directory holding the key) and must be detected,
// naming the first bad record and why.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openLedger, openReader, traceEpisode, verifyLedger, exportAtif, type VerifyReport } from '../../src/audit/index.ts';
import { isPraetorError } from '../../src/errors.ts';
import { episodeEvents } from './events.ts';
import { EVENTS_PER_EPISODE, TAMPER_CASES, TAMPER_LEDGER_OPTIONS, writeTamperLedger } from './tamper-cases.ts';

export type SuiteTarget = {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh, empty ledger location. */
  fresh(): Promise<string>;
  /** openLedger options naming the location. */
  where(db: string): { path: string } | { url: string };
  /** Raw SQL as an attacker with write access to the ledger. */
  exec(db: string, sql: string): Promise<void>;
  query(db: string, sql: string): Promise<Record<string, unknown>[]>;
  /** Removes the ledger entirely (the first half of replacing it with a forgery). */
  wipe(db: string): Promise<void>;
};

export { EVENTS_PER_EPISODE } from './tamper-cases.ts';

export function ledgerSuite(t: SuiteTarget): void {
  describe(`ledger on ${t.name}`, () => {
    const dirs: string[] = [];
    const stateDir = (): string => { const d = mkdtempSync(join(tmpdir(), 'praetor-audit-')); dirs.push(d); return d; };
    before(() => t.setup());
    after(async () => {
      await t.teardown();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    /** A closed ledger written by writeTamperLedger (checkpoints seal 30, 60, 90, 116, then close). */
    async function written(state = stateDir()): Promise<{ db: string; state: string }> {
      const db = await t.fresh();
      await writeTamperLedger(await openLedger({ ...t.where(db), stateDir: state, ...TAMPER_LEDGER_OPTIONS }));
      return { db, state };
    }
    const verify = (db: string, state: string): Promise<VerifyReport> => verifyLedger({ db, stateDir: state });
    const firstBad = (r: VerifyReport): string => `${r.problems[0]?.where}: ${r.problems[0]?.reason}`;

    it('an intact ledger verifies, sealed to the last record', async () => {
      const { db, state } = await written();
      const r = await verify(db, state);
      assert.equal(r.ok, true, JSON.stringify(r.problems));
      assert.equal(r.records, 2 * EVENTS_PER_EPISODE);
      assert.equal(r.unsealed, 0);
      assert.equal(r.checkpoints, 6); // genesis, 30, 60, 90, 116, and the close mark
      assert.equal(r.sealedThrough, 116);
      assert.deepEqual(r.warnings, []);
    });

    it('reopening continues the same chain', async () => {
      const { db, state } = await written();
      const l = await openLedger({ ...t.where(db), stateDir: state });
      for (const e of episodeEvents({ episodeId: 'ep-c', sandboxId: 'sb-c', steps: 1 })) l.append(e);
      await l.close();
      const r = await verify(db, state);
      assert.equal(r.ok, true, JSON.stringify(r.problems));
      assert.equal(r.records, 2 * EVENTS_PER_EPISODE + 14);
    });

    for (const c of TAMPER_CASES) {
      it(`detects ${c.name}`, async () => {
        const { db, state } = await written();
        await c.tamper({
          t: { backend: t.name === 'sqlite' ? 'sqlite' : 'postgres', where: t.where, exec: t.exec, query: t.query, wipe: t.wipe },
          db, state, newStateDir: stateDir,
          open: (at, s) => openLedger({ ...t.where(at), stateDir: s, ...TAMPER_LEDGER_OPTIONS }),
        });
        c.check(await verify(db, state));
      });
    }

    it('refuses a second writer', async () => {
      const db = await t.fresh();
      const state = stateDir();
      const l = await openLedger({ ...t.where(db), stateDir: state });
      try {
        await assert.rejects(openLedger({ ...t.where(db), stateDir: state }), (e) => isPraetorError(e) && e.code === 'CONFLICT');
      } finally {
        await l.close();
      }
    });

    it('prunes at a checkpoint and still verifies; cutting more off the front is detected', async () => {
      const { db, state } = await written();
      const l = await openLedger({ ...t.where(db), stateDir: state });
      const anchor = await l.prune(70);
      await l.close();
      assert.equal(anchor, 60);
      const r = await verify(db, state);
      assert.equal(r.ok, true, JSON.stringify(r.problems));
      assert.equal(r.firstSeq, 61);
      assert.equal(r.prunedThrough, 60);
      assert.equal(r.records, 116 - 60);
      await t.exec(db, 'DELETE FROM ledger_records WHERE seq = 61');
      const r2 = await verify(db, state);
      assert.equal(r2.ok, false);
      assert.equal(r2.problems[0]?.seq, 62, firstBad(r2));
    });

    it('traces an episode from reward back to the packet and the containment', async () => {
      const { db } = await written();
      const { store } = await openReader(db);
      try {
        const tr = await traceEpisode(store, 'ep-a');
        assert.equal(tr.totalReward, 1);
        assert.deepEqual(tr.sandboxes, ['sb-ep-a']);
        assert.equal(tr.steps.length, 5);
        const step = tr.steps[0]!;
        assert.equal(step.rewards.length, 1);
        const model = step.calls[0]!;
        assert.equal(model.kind, 'model.call');
        const tool = model.children[0]!;
        assert.equal(tool.kind, 'tool.call');
        const cmd = tool.children[0]!;
        assert.equal(cmd.kind, 'command.start');
        const exec = cmd.children.find((c) => c.kind === 'process.exec')!;
        const flow = exec.children.find((c) => c.kind === 'net.flow')!;
        const alert = flow.children.find((c) => c.kind === 'alert')!;
        assert.equal(alert.children[0]?.kind, 'containment');
        assert.equal(tr.unlinked.length, 0);
        const atif = await exportAtif(store, 'ep-a');
        assert.equal(atif.schema_version, 'ATIF-v1.4');
        assert.equal(atif.session_id, 'ep-a');
        assert.deepEqual(atif.steps.map((s) => s.step_id), atif.steps.map((_, i) => i + 1));
        const agentStep = atif.steps.find((s) => s.source === 'agent')!;
        assert.equal(agentStep.tool_calls?.[0]?.function_name, 'bash');
        assert.deepEqual(agentStep.tool_calls?.[0]?.arguments, { cmd: 'curl http://203.0.113.9:3333' });
        assert.match(agentStep.observation!.results[0]!.content, /ALERT \[critical\] mining-pool-connection/);
      } finally {
        await store.close();
      }
    });
  });
}
