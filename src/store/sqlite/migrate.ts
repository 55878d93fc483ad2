import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { StoreError } from '../store.ts';

export type Migration = { version: number; name: string; sql: string };

export const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

/** Reads NNN_name.sql files in version order; a gap or a duplicate number is a packaging bug. */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => {
      const m = /^(\d+)_([\w-]+)\.sql$/.exec(f);
      if (!m) throw new StoreError(`migration file ${f} is not named NNN_name.sql`);
      return { version: Number(m[1]), name: m[2] as string, sql: readFileSync(join(dir, f), 'utf8') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StoreError(`migrations must be numbered 1, 2, 3…; found ${m.version} at place ${i + 1}`);
  });
  return migrations;
}

/**
 * Applies what is missing, each migration in its own transaction together with its version row,
 * so a failure leaves the database at the last whole version. Returns the versions applied.
 */
export function migrate(db: DatabaseSync, migrations: Migration[], label: string): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new StoreError(
      `database ${label} has schema version ${current}, newer than this broker knows (${newest}); ` +
        'run a newer broker or point BROKER_DB at another file',
    );
  }
  const applied: number[] = [];
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw new StoreError(`migration ${m.version}_${m.name} failed: ${(e as Error).message}`);
    }
    applied.push(m.version);
  }
  return applied;
}
