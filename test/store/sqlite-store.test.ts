import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { type Migration, readMigrations } from '../../src/store/sqlite/migrate.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { StoreError } from '../../src/store/store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(tmp, `db-${++n}.sqlite`);
const key = Buffer.alloc(32, 1);

function schemaOf(path: string): { versions: number[]; tables: string[] } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const versions = (
      db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[]
    ).map((r) => r.version);
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    return { versions, tables };
  } finally {
    db.close();
  }
}

// What only SQLite has (its migration runner, WAL, its files); the behaviour both backends share is
// the contract in contract.ts, run by sqlite.test.ts and postgres.test.ts.
describe('SqliteStore migrations', () => {
  it('ships migrations numbered 1..n with a version row each', () => {
    const shipped = readMigrations();
    assert.ok(shipped.length >= 1);
    assert.deepEqual(
      shipped.map((m) => m.version),
      shipped.map((_, i) => i + 1),
    );
  });

  it('migrates a fresh database to the newest version', async () => {
    const path = dbPath();
    const store = new SqliteStore({ path, secretKey: key });
    const shipped = readMigrations();
    assert.deepEqual(
      store.appliedMigrations,
      shipped.map((m) => m.version),
    );
    await store.health();
    await store.close();
    const { versions, tables } = schemaOf(path);
    assert.deepEqual(
      versions,
      shipped.map((m) => m.version),
    );
    assert.ok(tables.includes('schema_version') && tables.includes('instance'));
  });

  it('changes nothing when opened again (migrations applied twice)', async () => {
    const path = dbPath();
    await new SqliteStore({ path, secretKey: key }).close();
    const before = schemaOf(path);
    const again = new SqliteStore({ path, secretKey: key });
    assert.deepEqual(again.appliedMigrations, []);
    await again.close();
    assert.deepEqual(schemaOf(path), before);
  });

  it('applies only the new migrations to an older database', async () => {
    const path = dbPath();
    const m1: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE a (x INTEGER) STRICT;' };
    const m2: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE b (y INTEGER) STRICT;' };
    await new SqliteStore({ path, secretKey: key, migrations: [m1] }).close();
    const s = new SqliteStore({ path, secretKey: key, migrations: [m1, m2] });
    assert.deepEqual(s.appliedMigrations, [2]);
    await s.close();
    assert.deepEqual(schemaOf(path).versions, [1, 2]);
  });

  it('007 keeps the change log and its numbering while it learns the session kind', async () => {
    const path = dbPath();
    const upTo6 = readMigrations().filter((m) => m.version <= 6);
    const old = new SqliteStore({ path, secretKey: key, migrations: upTo6 });
    old.db
      .prepare(
        "INSERT INTO change_log (origin, kind, grant_id, user_id, token_hash, at) VALUES ('o', 'grant', 'g', 1, NULL, 5)",
      )
      .run();
    await old.close();
    const store = new SqliteStore({ path, secretKey: key });
    assert.deepEqual(
      store.appliedMigrations,
      readMigrations()
        .filter((m) => m.version >= 7)
        .map((m) => m.version),
    );
    const rows = store.db.prepare('SELECT seq, kind, grant_id FROM change_log').all();
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [{ seq: 1, kind: 'grant', grant_id: 'g' }],
    );
    store.db
      .prepare(
        "INSERT INTO change_log (origin, kind, grant_id, user_id, token_hash, at) VALUES ('o', 'session', 'g', 1, 'h', 6)",
      )
      .run();
    assert.equal((store.db.prepare('SELECT MAX(seq) AS s FROM change_log').get() as { s: number }).s, 2);
    await store.close();
  });

  it('refuses a database from a newer broker with a clear error', async () => {
    const path = dbPath();
    const newer: Migration[] = [
      ...readMigrations(),
      { version: 99, name: 'future', sql: 'CREATE TABLE f (x INTEGER);' },
    ];
    newer[newer.length - 1] = { ...(newer.at(-1) as Migration), version: newer.length };
    await new SqliteStore({ path, secretKey: key, migrations: newer }).close();
    assert.throws(
      () => new SqliteStore({ path, secretKey: key }),
      (e: unknown) =>
        e instanceof StoreError &&
        new RegExp(
          `schema version ${newer.length}, newer than this broker knows \\(${newer.length - 1}\\)`,
        ).test(e.message),
    );
  });

  it('rolls back a failing migration whole and keeps the previous version', () => {
    const path = dbPath();
    const good: Migration = { version: 1, name: 'good', sql: 'CREATE TABLE a (x INTEGER) STRICT;' };
    const bad: Migration = {
      version: 2,
      name: 'bad',
      sql: 'CREATE TABLE half (x INTEGER) STRICT; INSERT INTO missing_table VALUES (1);',
    };
    assert.throws(
      () => new SqliteStore({ path, secretKey: key, migrations: [good, bad] }),
      /migration 2_bad failed/,
    );
    const { versions, tables } = schemaOf(path);
    assert.deepEqual(versions, [1]);
    assert.ok(!tables.includes('half'), 'the half-applied table must be rolled back');
  });

  it('refuses misnamed or gapped migration files', () => {
    const dir = join(tmp, 'mig-gap');
    mkdirSync(dir);
    writeFileSync(join(dir, '001_a.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '003_c.sql'), 'SELECT 1;');
    assert.throws(() => readMigrations(dir), /numbered 1, 2, 3/);
    const dir2 = join(tmp, 'mig-name');
    mkdirSync(dir2);
    writeFileSync(join(dir2, 'one.sql'), 'SELECT 1;');
    assert.throws(() => readMigrations(dir2), /not named NNN_name\.sql/);
  });

  it('runs in WAL mode with foreign keys on and a busy timeout', async () => {
    const store = new SqliteStore({ path: dbPath(), secretKey: key });
    assert.equal(
      (store.db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode,
      'wal',
    );
    assert.equal((store.db.prepare('PRAGMA foreign_keys').get() as { foreign_keys: number }).foreign_keys, 1);
    assert.equal((store.db.prepare('PRAGMA busy_timeout').get() as { timeout: number }).timeout, 5000);
    await store.close();
  });

  it('leaves no stray files but the database and its WAL companions', async () => {
    const dir = join(tmp, 'files');
    mkdirSync(dir);
    const store = new SqliteStore({ path: join(dir, 'b.db'), secretKey: key });
    await store.close();
    assert.deepEqual(
      readdirSync(dir).filter((f) => !/^b\.db(-wal|-shm)?$/.test(f)),
      [],
    );
  });

  it('creates the database, its -wal and -shm and its folder owner-only even under umask 022', async () => {
    const old = process.umask(0o022);
    try {
      const dir = join(tmp, 'private', 'nested');
      const loaded = loadConfig(
        {
          BROKER_PUBLIC_URL: 'http://127.0.0.1:8080',
          FORGEJO_URL: 'http://127.0.0.1:3000',
          FORGEJO_CLIENT_ID: 'x',
          FORGEJO_CLIENT_SECRET: 'y',
          BROKER_DB: join(dir, 'broker.db'),
          // Any command on the machine: the config checks that the child command exists.
          BROKER_CHILD_COMMAND: process.execPath,
        },
        [],
      );
      assert.ok(loaded.ok);
      const store = new SqliteStore({ path: loaded.config.db, secretKey: loaded.config.secretKey });
      await store.insertClient({
        clientId: 'c1',
        secretHash: null,
        authMethod: 'none',
        name: 'n',
        redirectUris: ['https://a.example/cb'],
        metadata: {},
        createdAt: 1,
        usedAt: null,
      });
      const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
      assert.equal(mode(join(tmp, 'private')), '700');
      assert.equal(mode(dir), '700');
      for (const f of ['broker.db', 'broker.db-wal', 'broker.db-shm', 'secret.key'])
        assert.equal(mode(join(dir, f)), '600', f);
      await store.close();

      // A database an older broker left world-readable is tightened when opened.
      const legacy = join(tmp, 'legacy.db');
      new SqliteStore({ path: legacy, secretKey: key }).close();
      for (const f of [legacy, `${legacy}-wal`, `${legacy}-shm`])
        writeFileSync(f, '', { flag: 'a', mode: 0o644 });
      for (const f of [legacy, `${legacy}-wal`, `${legacy}-shm`]) chmodSync(f, 0o644);
      const reopened = new SqliteStore({ path: legacy, secretKey: key });
      for (const f of [legacy, `${legacy}-wal`, `${legacy}-shm`]) assert.equal(mode(f), '600', f);
      await reopened.close();
    } finally {
      process.umask(old);
    }
  });
});
