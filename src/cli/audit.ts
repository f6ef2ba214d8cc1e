// `praetor audit verify|export|prune`: thin over src/audit. verify exits 0 only for an intact
// ledger and otherwise names the first bad record and why; it trusts only the state
// directory's key or --pubkey, never a key the ledger carries.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { exportAtif, exportJsonl, ledgerAt, openLedger, openReader, resolveDb, verifyCluster, verifyLedger } from '../audit/index.ts';
import { PraetorError } from '../errors.ts';
import { parseFlags, parseNumberFlag, stateDir } from './common.ts';

const USAGE = `praetor audit <verify|export|prune> [options]

  verify [--db PATH|URL] [--pubkey FILE] [--state DIR] [--json]
      check every record, checkpoint and table; exit 0 when intact, 1 when not
  verify --cluster URL --pubkey FILE [--state DIR] [--json]
      a cluster's shared ledger: the cluster chain (under the cluster ledger key FILE), every
      node chain (under the key the cluster chain pinned for it) and every anchor; --state: a
      control replica's state directory, whose witness catches the cluster chain cut back
  export --format jsonl|atif [--episode ID] [--out FILE] [--db PATH|URL] [--state DIR]
      jsonl: every record (seq, hash, event); atif: ATIF-v1.4 trajectories, one per episode
  prune --through-seq N | --older-than DAYS [--db PATH|URL] [--state DIR]
      delete old records through the newest checkpoint at or below that point; the prune is
      itself a signed checkpoint, so the ledger still verifies and an unsigned cut does not

--db defaults to <state>/audit/ledger.db; --state defaults to $PRAETOR_STATE or /var/lib/praetor.`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verify(rest);
  if (sub === 'export') return exportCmd(rest);
  if (sub === 'prune') return prune(rest);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`usage: ${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  throw new PraetorError('BAD_ARGUMENT', `unknown audit subcommand "${sub}"`, { hint: 'use verify, export or prune' });
}

async function verify(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    db: { type: 'string' }, pubkey: { type: 'string' }, state: { type: 'string' }, json: { type: 'boolean' }, cluster: { type: 'string' },
  }, USAGE);
  if (values.cluster !== undefined) return verifyClusterCmd(values.cluster, values);
  const state = stateDir(values.state);
  const r = await verifyLedger({ db: resolveDb({ db: values.db, stateDir: state }), stateDir: state, pubkeyFile: values.pubkey });
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return r.ok ? 0 : 1;
  }
  for (const w of r.warnings) process.stderr.write(`praetor: warning: ${w}\n`);
  if (r.ok) {
    process.stdout.write(`ledger ${r.ledgerId} intact: ${r.records} records (${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}), ` +
      `${r.checkpoints} signed checkpoints, sealed through ${r.sealedThrough}` +
      `${r.prunedThrough > 0 ? `, pruned through ${r.prunedThrough}` : ''} — verified in ${r.durationMs} ms\n`);
    return 0;
  }
  const [first, ...more] = r.problems;
  process.stdout.write(`LEDGER NOT INTACT (${r.location}): ${first!.where}: ${first!.reason}\n`);
  for (const p of more) process.stdout.write(`  also ${p.where}: ${p.reason}\n`);
  return 1;
}

async function verifyClusterCmd(url: string, values: { db?: string | undefined; pubkey?: string | undefined; state?: string | undefined; json?: boolean | undefined }): Promise<number> {
  if (values.db !== undefined) throw new PraetorError('BAD_ARGUMENT', '--cluster and --db name two ledgers', { hint: 'give one: --cluster URL for the whole cluster, --db URL for one chain' });
  if (values.pubkey === undefined) {
    throw new PraetorError('BAD_ARGUMENT', 'verify --cluster needs --pubkey FILE: the cluster ledger public key', {
      hint: 'pass the ledger-key.pub.pem written beside the cluster CA by praetor cluster init; the key stored in the database is never trusted',
    });
  }
  const r = await verifyCluster({ url, pubkeyFile: values.pubkey, stateDir: values.state });
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return r.ok ? 0 : 1;
  }
  for (const w of r.warnings) process.stderr.write(`praetor: warning: ${w}\n`);
  const records = r.nodes.reduce((s, n) => s + n.records, 0);
  const anchors = r.nodes.reduce((s, n) => s + n.anchors, 0);
  if (r.ok) {
    process.stdout.write(`cluster ledger intact: ${r.nodes.length} node chains (${records} records), ${anchors} anchors, ` +
      `cluster chain ${r.cluster?.ledgerId} of ${r.cluster?.records} records — verified in ${r.durationMs} ms\n`);
    for (const n of r.nodes) process.stdout.write(`  node ${n.nodeId}: ${n.records} records through ${n.lastSeq ?? '-'}, key ${n.keyId}, anchored through ${n.anchoredThrough}\n`);
    return 0;
  }
  process.stdout.write(`CLUSTER LEDGER NOT INTACT (${r.location || url}): ${r.problems.length} problem(s)\n`);
  for (const p of r.problems) process.stdout.write(`  ${p.message}\n`);
  return 1;
}

async function exportCmd(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    format: { type: 'string' }, episode: { type: 'string' }, out: { type: 'string' }, db: { type: 'string' }, state: { type: 'string' },
  }, USAGE);
  if (values.format !== 'jsonl' && values.format !== 'atif') {
    throw new PraetorError('BAD_ARGUMENT', `--format ${values.format ?? '(missing)'} is not supported`, { hint: 'use --format jsonl or --format atif' });
  }
  const { store } = await openReader(resolveDb({ db: values.db, stateDir: stateDir(values.state) }));
  const out = values.out === undefined ? process.stdout : createWriteStream(values.out);
  // Respect backpressure: a million records must not pile up in memory ahead of a slow pipe.
  const write = async (chunk: string): Promise<void> => { if (!out.write(chunk)) await once(out, 'drain'); };
  try {
    if (values.format === 'jsonl') {
      await exportJsonl(store, write, { episodeId: values.episode });
    } else {
      const episodes = values.episode !== undefined ? [values.episode] : (await store.episodes()).sort();
      if (values.episode !== undefined && (await store.episodeRecords(values.episode)).length === 0) {
        throw new PraetorError('NOT_FOUND', `no records for episode ${values.episode}`, { hint: 'list episodes with praetor audit export --format atif' });
      }
      // One episode: one ATIF document; several: one trajectory per line.
      for (const ep of episodes) await write(JSON.stringify(await exportAtif(store, ep), null, values.episode !== undefined ? 2 : undefined) + '\n');
    }
  } finally {
    await store.close();
    if (out !== process.stdout) { out.end(); await once(out, 'finish'); }
  }
  return 0;
}

async function prune(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { 'through-seq': { type: 'string' }, 'older-than': { type: 'string' }, db: { type: 'string' }, state: { type: 'string' } }, USAGE);
  const state = stateDir(values.state);
  const db = resolveDb({ db: values.db, stateDir: state });
  let through = parseNumberFlag('through-seq', values['through-seq'], { int: true, min: 1 });
  const days = parseNumberFlag('older-than', values['older-than'], { min: 0 });
  if ((through === undefined) === (days === undefined)) {
    throw new PraetorError('BAD_ARGUMENT', 'give exactly one of --through-seq N or --older-than DAYS', { hint: 'praetor audit prune --older-than 90' });
  }
  if (days !== undefined) {
    const { store } = await openReader(db);
    try { through = await store.lastSeqBefore((Date.now() - days * 86_400_000) * 1e6); } finally { await store.close(); }
    if (through === 0) { process.stdout.write(`nothing older than ${days} days\n`); return 0; }
  }
  const l = await openLedger({ ...ledgerAt(db), stateDir: state });
  try {
    const anchor = await l.prune(through!);
    process.stdout.write(anchor === 0 ? `nothing to prune: no checkpoint at or below ${through} beyond what is already pruned\n` : `pruned records through ${anchor} (signed prune checkpoint written)\n`);
  } finally {
    await l.close();
  }
  return 0;
}
