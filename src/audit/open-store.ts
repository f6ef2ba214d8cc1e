// Opens a ledger for reading (verify, trace, export): a postgres:// URL or a SQLite file.
import { existsSync } from 'node:fs';
import { PraetorError } from '../errors.ts';
import { POSTGRES_URL, type LedgerStore } from './store.ts';

export async function openReader(db: string): Promise<{ store: LedgerStore; expectedObjects: string[] }> {
  if (POSTGRES_URL.test(db)) {
    const { PostgresStore, POSTGRES_OBJECTS } = await import('./stores/postgres.ts');
    return { store: await PostgresStore.connect(db, { writer: false }), expectedObjects: POSTGRES_OBJECTS };
  }
  if (!existsSync(db)) {
    throw new PraetorError('NOT_FOUND', `no ledger at ${db}`, { hint: 'pass --db PATH (or --state DIR whose audit/ledger.db exists)' });
  }
  const { SqliteStore, SQLITE_OBJECTS } = await import('./stores/sqlite.ts');
  return { store: new SqliteStore(db, { readOnly: true }), expectedObjects: SQLITE_OBJECTS };
}
