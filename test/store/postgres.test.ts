// The store contract on PostgreSQL (a throwaway cluster, a fresh database per group), and what only
// PostgreSQL has: its migration runner with replicas starting together, and the URL in messages.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { readPostgresMigrations } from '../../src/store/postgres/migrate.ts';
import { describePostgresUrl, PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { Migration } from '../../src/store/sqlite/migrate.ts';
import { type BrokerStore, StoreError } from '../../src/store/store.ts';
import { type PostgresCluster, startPostgres } from '../support/postgres.ts';
import { storeContract } from './contract.ts';

const KEY = Buffer.alloc(32, 9);
const cluster: Promise<PostgresCluster> = startPostgres();
after(async () => (await cluster).stop());

async function openOn(
  url: string,
  o: { secretKey?: Buffer; previousKeys?: Buffer[]; migrations?: Migration[] } = {},
) {
  const store = new PostgresStore({
    url,
    secretKey: o.secretKey ?? KEY,
    previousKeys: o.previousKeys,
    migrations: o.migrations,
    maxConnections: 4,
  });
  try {
    await store.ready();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

storeContract({
  name: 'PostgreSQL',
  async database() {
    const url = await (await cluster).createDatabase();
    const stores: BrokerStore[] = [];
    const raw = new pg.Pool({ connectionString: url, max: 2 });
    return {
      async open(o = {}) {
        const store = await openOn(url, o);
        stores.push(store);
        return store;
      },
      async raw(sql, params = []) {
        return (await raw.query(sql, params)).rows;
      },
      async close() {
        for (const s of stores) await s.close();
        await raw.end();
      },
    };
  },
});

describe('PostgreSQL store: migrations', () => {
  let url: string;
  before(async () => {
    url = await (await cluster).createDatabase();
  });
  const versions = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query('SELECT version FROM schema_version ORDER BY version')).rows.map(
        (r) => r.version,
      );
    } finally {
      await c.end();
    }
  };

  it('replicas starting together on a fresh database: one migrates, all open', async () => {
    const shipped = readPostgresMigrations().map((m) => m.version);
    const stores = await Promise.all([openOn(url), openOn(url), openOn(url)]);
    assert.deepEqual(
      stores.map((s) => s.appliedMigrations).sort((a, b) => b.length - a.length),
      [shipped, [], []],
    );
    for (const s of stores) await s.close();
    assert.deepEqual(await versions(), shipped);
    const again = await openOn(url);
    assert.deepEqual(again.appliedMigrations, []);
    await again.close();
  });

  it('refuses a database from a newer broker, and rolls a failing migration back whole', async () => {
    const shipped = readPostgresMigrations();
    const newer = [
      ...shipped,
      { version: shipped.length + 1, name: 'future', sql: 'CREATE TABLE f (x INTEGER)' },
    ];
    await (await openOn(url, { migrations: newer })).close();
    await assert.rejects(
      openOn(url),
      (e: unknown) =>
        e instanceof StoreError &&
        e.message.includes(
          `schema version ${newer.length}, newer than this broker knows (${shipped.length})`,
        ),
    );
    const bad = [
      ...newer,
      {
        version: newer.length + 1,
        name: 'bad',
        sql: 'CREATE TABLE half (x INTEGER); INSERT INTO missing_table VALUES (1);',
      },
    ];
    await assert.rejects(openOn(url, { migrations: bad }), /migration \d+_bad failed/);
    assert.equal((await versions()).at(-1), newer.length);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const half = await c.query("SELECT to_regclass('half') AS t");
    await c.end();
    assert.equal(half.rows[0].t, null, 'the half-applied table is rolled back');
  });

  it('says which database it cannot reach without its password', async () => {
    const port = (await cluster).port;
    const wrong = `postgres://broker:not-the-password@127.0.0.1:${port}/postgres`;
    await assert.rejects(
      openOn(wrong),
      (e: unknown) => e instanceof StoreError && !e.message.includes('not-the-password'),
    );
    assert.equal(describePostgresUrl(wrong), `postgres://broker:***@127.0.0.1:${port}/postgres`);
  });
});
