// The tamper suite as data: each case acts as an attacker with write access to a ledger's tables
// (but not to the key that signs it) and says what verification must report. The single-node
// store suite (suite.ts) runs every case on SQLite and PostgreSQL; the cluster test runs every
// case on a node chain and checks `verify --cluster` catches it too.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { recordHash, verifyLedger, type Ledger, type VerifyReport } from '../../src/audit/index.ts';
import { episodeEvents } from './events.ts';

export const EVENTS_PER_EPISODE = 58; // episodeEvents with 5 steps
export const TAMPER_RECORDS = 2 * EVENTS_PER_EPISODE;
/** openLedger options the tamper ledger is written with (its checkpoints seal 30, 60, 90, 116). */
export const TAMPER_LEDGER_OPTIONS = { checkpointEvery: 25 } as const;

/**
 * Writes the ledger every case tampers with: two episodes, committed 10 records at a time with
 * a checkpoint due every 25 — checkpoints seal records 30, 60, 90, 116, then close adds its mark.
 */
export async function writeTamperLedger(l: Ledger): Promise<void> {
  let i = 0;
  for (const ep of ['ep-a', 'ep-b']) {
    for (const e of episodeEvents({ episodeId: ep, sandboxId: `sb-${ep}`, steps: 5 })) {
      l.append(e);
      if (++i % 10 === 0) await l.flush();
    }
  }
  await l.close();
}

export type TamperTarget = {
  /** 'sqlite' or 'postgres' (a trigger is planted in each one's own dialect). */
  backend: 'sqlite' | 'postgres';
  /** openLedger options naming the location. */
  where(db: string): { path: string } | { url: string };
  exec(db: string, sql: string): Promise<void>;
  query(db: string, sql: string): Promise<Record<string, unknown>[]>;
  /** Removes the ledger entirely (the first half of replacing it with a forgery). */
  wipe(db: string): Promise<void>;
};

export type TamperContext = {
  t: TamperTarget;
  /** The ledger written by writeTamperLedger. */
  db: string;
  /** The state directory that wrote it (holding the key and the witness). */
  state: string;
  /** A fresh state directory (another key: the forger's). */
  newStateDir(): string;
  /** Opens a ledger for writing at the location (the forger rewrites the chain with it). */
  open(db: string, stateDir: string): Promise<Ledger>;
};

export type TamperCase = {
  name: string;
  tamper(ctx: TamperContext): Promise<void>;
  /** What the single-node verification (with the state directory's key and witness) reports. */
  check(r: VerifyReport): void;
  /** The record a cluster-wide verification must name (when the case is about one record). */
  seq?: number;
  /**
   * When a node chain, verified without its state directory, looks self-consistent after the
   * tamper (the witness caught it on one host): what the cluster's anchors must report instead.
   */
  anchorReason?: RegExp;
};

const firstBad = (r: VerifyReport): string => `${r.problems[0]?.where}: ${r.problems[0]?.reason}`;
const sqlText = (s: string): string => s.replaceAll("'", "''");

export const TAMPER_CASES: TamperCase[] = [
  {
    name: 'an edited body',
    seq: 6,
    tamper: ({ t, db }) => t.exec(db, "UPDATE ledger_records SET body = replace(body, 'curl', 'wget') WHERE seq = 6"),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 6, firstBad(r));
      assert.match(r.problems[0]!.reason, /hash does not match/);
    },
  },
  {
    name: 'an edited indexed column (what trace reads)',
    seq: 12,
    tamper: ({ t, db }) => t.exec(db, "UPDATE ledger_records SET episode_id = 'ep-innocent' WHERE seq = 12"),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 12, firstBad(r));
      assert.match(r.problems[0]!.reason, /column episode_id/);
    },
  },
  {
    name: 'an edit whose own hash was recomputed',
    seq: 7,
    tamper: async ({ t, db }) => {
      const [p] = await t.query(db, 'SELECT hash FROM ledger_records WHERE seq = 5');
      const [row] = await t.query(db, 'SELECT body FROM ledger_records WHERE seq = 6');
      const body = String(row!.body).replace('curl', 'wget');
      assert.notEqual(body, String(row!.body));
      await t.exec(db, `UPDATE ledger_records SET body = '${sqlText(body)}', hash = '${recordHash(String(p!.hash), 6, body)}' WHERE seq = 6`);
    },
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 7, firstBad(r));
    },
  },
  {
    name: 'a rewrite re-chained to the end (signed checkpoints disagree)',
    seq: 30,
    tamper: async ({ t, db }) => {
      const rows = await t.query(db, 'SELECT seq, body, hash FROM ledger_records WHERE seq >= 5 ORDER BY seq');
      let prev = String(rows[0]!.hash);
      for (const row of rows.slice(1)) {
        const seq = Number(row.seq);
        const body = seq === 6 ? String(row.body).replace('curl', 'wget') : String(row.body);
        prev = recordHash(prev, seq, body);
        await t.exec(db, `UPDATE ledger_records SET body = '${sqlText(body)}', hash = '${prev}' WHERE seq = ${seq}`);
      }
    },
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 30, firstBad(r));
      assert.match(r.problems[0]!.reason, /differs from the hash signed in checkpoint 2/);
    },
  },
  {
    name: 'a deleted record',
    seq: 21,
    tamper: ({ t, db }) => t.exec(db, 'DELETE FROM ledger_records WHERE seq = 20'),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 21, firstBad(r));
      assert.match(r.problems[0]!.reason, /20\.\.20 are missing/);
    },
  },
  {
    name: 'reordered records',
    seq: 30,
    tamper: async ({ t, db }) => {
      await t.exec(db, 'UPDATE ledger_records SET seq = -1 WHERE seq = 30');
      await t.exec(db, 'UPDATE ledger_records SET seq = 30 WHERE seq = 31');
      await t.exec(db, 'UPDATE ledger_records SET seq = 31 WHERE seq = -1');
    },
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 30, firstBad(r));
    },
  },
  {
    name: 'a truncated tail',
    seq: TAMPER_RECORDS - 2,
    tamper: ({ t, db }) => t.exec(db, `DELETE FROM ledger_records WHERE seq > ${TAMPER_RECORDS - 3}`),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(firstBad(r), /truncated/);
    },
  },
  {
    name: 'a tail cut back to an older checkpoint, records and checkpoints together (witness)',
    seq: TAMPER_RECORDS,
    anchorReason: /cut back below the anchor/,
    tamper: async ({ t, db, state }) => {
      await t.exec(db, 'DELETE FROM ledger_records WHERE seq > 60');
      await t.exec(db, 'DELETE FROM ledger_checkpoints WHERE seq > 60');
      const consistent = await verifyLedger({ db, pubkeyFile: join(state, 'audit', 'ledger-signing-key.pub.pem') });
      assert.equal(consistent.ok, true, 'without the state directory the cut-back ledger is self-consistent');
    },
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(firstBad(r), /rolled back/);
    },
  },
  {
    name: 'records cut off the front without a signed prune',
    seq: 31,
    tamper: ({ t, db }) => t.exec(db, 'DELETE FROM ledger_records WHERE seq <= 30'),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.equal(r.problems[0]?.seq, 31, firstBad(r));
    },
  },
  {
    name: 'a deleted checkpoint',
    tamper: ({ t, db }) => t.exec(db, 'DELETE FROM ledger_checkpoints WHERE n = 3'),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(firstBad(r), /checkpoint 3 is missing/);
    },
  },
  {
    name: 'an edited checkpoint',
    tamper: ({ t, db }) => t.exec(db, "UPDATE ledger_checkpoints SET payload = replace(payload, '\"reason\":\"interval\"', '\"reason\":\"close\"') WHERE n = 2"),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(firstBad(r), /checkpoint 2: signature does not verify/);
    },
  },
  {
    name: 'a trigger planted on the ledger',
    tamper: ({ t, db }) => t.exec(db, t.backend === 'sqlite'
      ? 'CREATE TRIGGER evil AFTER INSERT ON ledger_records BEGIN SELECT 1; END'
      : 'CREATE FUNCTION evil() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$; CREATE TRIGGER evil BEFORE INSERT ON ledger_records FOR EACH ROW EXECUTE FUNCTION evil()'),
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(firstBad(r), /unexpected object trigger:evil/);
    },
  },
  {
    name: 'the whole ledger replaced by a re-chained forgery signed by another key',
    tamper: async ({ t, db, newStateDir, open }) => {
      await t.wipe(db);
      const forger = newStateDir();
      const l = await open(db, forger);
      for (const e of episodeEvents({ episodeId: 'ep-a', sandboxId: 'sb-ep-a', steps: 5 })) l.append(e);
      await l.close();
      assert.equal((await verifyLedger({ db, stateDir: forger })).ok, true, 'the forgery is self-consistent under its own key');
    },
    check: (r) => {
      assert.equal(r.ok, false);
      assert.match(r.problems.map((p) => p.reason).join('\n'), /signature does not verify with the trusted key/);
      assert.match(r.problems.map((p) => p.reason).join('\n'), /no checkpoint signed by the trusted key/);
    },
  },
];
