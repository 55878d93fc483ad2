// Opens the backend the configuration names: SQLite (one process, the default) or PostgreSQL
// (several replicas sharing one database).
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { BrokerStore } from './store.ts';

export type OpenStoreOptions = {
  kind: 'sqlite' | 'postgres';
  /** The SQLite file, or the postgres:// URL. */
  db: string;
  secretKey: Buffer;
  previousKeys?: Buffer[];
};

/** SQLite opens (and throws) at once; PostgreSQL connects in the background: await `ready()`. */
export function openStore(o: OpenStoreOptions): BrokerStore {
  return o.kind === 'postgres'
    ? new PostgresStore({ url: o.db, secretKey: o.secretKey, previousKeys: o.previousKeys })
    : new SqliteStore({ path: o.db, secretKey: o.secretKey, previousKeys: o.previousKeys });
}
