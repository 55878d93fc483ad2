import { DatabaseSync } from 'node:sqlite';
import { keyCheck } from '../secrets.ts';
import { type Store, StoreError } from '../store.ts';
import { type Migration, migrate, readMigrations } from './migrate.ts';

export type SqliteStoreOptions = {
  path: string;
  secretKey: Buffer;
  /** For tests of the migration runner; the shipped migrations otherwise. */
  migrations?: Migration[];
  busyTimeoutMs?: number;
};

export class SqliteStore implements Store {
  readonly db: DatabaseSync;
  readonly appliedMigrations: number[];
  readonly #key: Buffer;

  constructor(options: SqliteStoreOptions) {
    this.#key = options.secretKey;
    try {
      this.db = new DatabaseSync(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    } catch (e) {
      throw new StoreError(`cannot open database ${options.path}: ${(e as Error).message}`);
    }
    try {
      // WAL lets readers run beside the one writer; NORMAL sync is durable at each checkpoint
      // and safe against corruption in WAL mode.
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      this.appliedMigrations = migrate(this.db, options.migrations ?? readMigrations(), options.path);
      this.#checkKey(options.path);
    } catch (e) {
      this.db.close();
      throw e instanceof StoreError ? e : new StoreError(`database ${options.path}: ${(e as Error).message}`);
    }
  }

  #checkKey(label: string): void {
    const hasInstance = this.db
      .prepare("SELECT 1 AS ok FROM sqlite_master WHERE type = 'table' AND name = 'instance'")
      .get();
    if (!hasInstance) return;
    const check = keyCheck(this.#key);
    const row = this.db.prepare('SELECT key_check FROM instance WHERE id = 1').get() as
      | { key_check: string }
      | undefined;
    if (!row) {
      this.db
        .prepare('INSERT INTO instance (id, created_at, key_check) VALUES (1, ?, ?)')
        .run(Date.now(), check);
    } else if (row.key_check !== check) {
      throw new StoreError(
        `database ${label} was created with another BROKER_SECRET_KEY; set the original key (or its secret.key file) back`,
      );
    }
  }

  async health(): Promise<void> {
    if (!this.db.isOpen) throw new StoreError('database is closed');
    try {
      this.db.prepare('SELECT COUNT(*) FROM schema_version').get();
    } catch (e) {
      throw new StoreError(`database does not answer: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
