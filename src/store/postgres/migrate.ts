import { join } from 'node:path';
import type pg from 'pg';
import { type Migration, readMigrations } from '../sqlite/migrate.ts';
import { StoreError } from '../store.ts';

export const POSTGRES_MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export function readPostgresMigrations(): Migration[] {
  return readMigrations(POSTGRES_MIGRATIONS_DIR);
}

/** Any constant: replicas starting together wait on it, so one migrates and the others see it. */
const MIGRATION_LOCK = 0x666d62_01;

/**
 * Applies what is missing, each migration in its own transaction with its version row (DDL is
 * transactional here), under a session advisory lock so replicas starting at once never race.
 */
export async function migratePostgres(
  client: pg.ClientBase,
  migrations: Migration[],
  label: string,
): Promise<number[]> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at BIGINT NOT NULL
    )`);
    const row = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
    const current = row.rows[0]?.v ?? 0;
    const newest = migrations.at(-1)?.version ?? 0;
    if (current > newest) {
      throw new StoreError(
        `database ${label} has schema version ${current}, newer than this broker knows (${newest}); ` +
          'run a newer broker or point BROKER_DB at another database',
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new StoreError(`migration ${m.version}_${m.name} failed: ${(e as Error).message}`);
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
