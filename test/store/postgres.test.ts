// The store contract on PostgreSQL (a throwaway cluster, a fresh database per group), and what only
// PostgreSQL has: its migration runner with replicas starting together, and the URL in messages.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { UpstreamGrantError } from '../../src/forgejo/client.ts';
import { CredentialManager } from '../../src/forgejo/credentials.ts';
import { createLogger } from '../../src/log/log.ts';
import { createBearerVerifier } from '../../src/oauth/bearer.ts';
import { readPostgresMigrations } from '../../src/store/postgres/migrate.ts';
import { describePostgresUrl, PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import type { Migration } from '../../src/store/sqlite/migrate.ts';
import { type BrokerStore, StoreError } from '../../src/store/store.ts';
import { type PostgresCluster, startPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait.ts';
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

describe('PostgreSQL store: the change feed', () => {
  let url: string;
  before(async () => {
    url = await (await cluster).createDatabase();
  });

  const revokedGrants = (s: BrokerStore) => {
    const seen: string[] = [];
    s.events.on('grantRevoked', (g) => seen.push(g.grantId));
    return seen;
  };

  it('a notification wakes the other store at once, long before its periodic re-read', async () => {
    const [a, b] = [await openOn(url), await openOn(url)];
    const seen = revokedGrants(b);
    const stop = b.watchChanges(60_000);
    try {
      await eventuallyListening(url, 1);
      const at = Date.now();
      await a.revokeGrant(await someGrant(a));
      await waitFor(() => seen.length === 1, { timeoutMs: 1000, what: 'the notified revocation' });
      assert.ok(Date.now() - at < 1000);
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });

  it('a revocation made while the listening connection was cut is still replayed, once', async () => {
    const [a, b] = [await openOn(url), await openOn(url)];
    const seen = revokedGrants(b);
    const stop = b.watchChanges(200);
    try {
      await eventuallyListening(url, 1);
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'");
      await admin.end();
      const grantId = await someGrant(a);
      await a.revokeGrant(grantId);
      await waitFor(() => seen.length === 1, { timeoutMs: 3000, what: 'the missed revocation' });
      assert.deepEqual(seen, [grantId]);
      await eventuallyListening(url, 1);
      const second = await someGrant(a);
      await a.revokeGrant(second);
      await waitFor(() => seen.length === 2, {
        timeoutMs: 3000,
        what: 'the next revocation after reconnecting',
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(seen, [grantId, second]);
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });
});

/** Waits until `n` connections LISTEN on the database. */
async function eventuallyListening(url: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const r = await c.query(
        "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
      );
      if (r.rows[0].n >= n) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('no store listens');
  } finally {
    await c.end();
  }
}

async function someGrant(store: BrokerStore): Promise<string> {
  const grantId = `g-${Math.random().toString(36).slice(2)}`;
  await store.createGrant(
    { grantId, userId: 1, login: 'u', clientId: 'c', scopes: [], resource: 'r', createdAt: 1 },
    {
      codeHash: `h-${grantId}`,
      grantId,
      clientId: 'c',
      redirectUri: 'r',
      codeChallenge: 'x',
      resource: 'r',
      expiresAt: 2,
      usedAt: null,
    },
  );
  return grantId;
}

describe('PostgreSQL store: the bearer check of another replica', () => {
  it("forgets a token revoked on another replica within a second, so that replica's calls are refused", async () => {
    const url = await (await cluster).createDatabase();
    const [a, b] = [await openOn(url), await openOn(url)];
    const stop = b.watchChanges(60_000);
    try {
      await eventuallyListening(url, 1);
      const resource = 'https://broker.example/mcp';
      const grantId = `g-${Math.random().toString(36).slice(2)}`;
      const code = newSecret();
      const access = newSecret('mcpat_');
      const now = Date.now();
      await a.createGrant(
        { grantId, userId: 5, login: 'u5', clientId: 'c', scopes: ['mcp'], resource, createdAt: now },
        {
          codeHash: hashSecret(code),
          grantId,
          clientId: 'c',
          redirectUri: 'https://c.example/cb',
          codeChallenge: 'x',
          resource,
          expiresAt: now + 60_000,
          usedAt: null,
        },
      );
      assert.equal(
        await a.redeemCode(hashSecret(code), now, {
          accessHash: hashSecret(access),
          accessExpiresAt: now + 600_000,
          refreshHash: hashSecret(newSecret()),
          refreshExpiresAt: now + 600_000,
        }),
        'ok',
      );
      const verifyOnB = createBearerVerifier(b, resource);
      assert.ok((await verifyOnB(`Bearer ${access}`)).ok, 'verified, and now cached on B');
      const at = Date.now();
      await a.revokeGrant(grantId);
      while ((await verifyOnB(`Bearer ${access}`)).ok) {
        assert.ok(Date.now() - at < 1000, "B's bearer check still accepts the token A revoked");
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });
});

describe('PostgreSQL store: one Forgejo refresh across replicas', () => {
  let url: string;
  before(async () => {
    url = await (await cluster).createDatabase();
  });

  it("holds a user's credential lock across stores; other users do not wait", async () => {
    const [a, b] = [await openOn(url), await openOn(url)];
    try {
      const order: string[] = [];
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      let entered: () => void = () => {};
      const inside = new Promise<void>((r) => {
        entered = r;
      });
      const first = a.withCredentialLock(1, async () => {
        order.push('a in');
        entered();
        await held;
        order.push('a out');
      });
      await inside;
      const second = b.withCredentialLock(1, async () => void order.push('b in'));
      await b.withCredentialLock(2, async () => void order.push('other user'));
      await new Promise((r) => setTimeout(r, 200));
      release();
      await Promise.all([first, second]);
      assert.deepEqual(order, ['a in', 'other user', 'a out', 'b in']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two replicas refreshing one expiring credential at once spend its refresh token once', async () => {
    const [a, b] = [await openOn(url), await openOn(url)];
    try {
      await a.putCredential({
        userId: 5,
        login: 'eve',
        accessToken: 'old-access',
        refreshToken: 'rt-0',
        expiresAt: Date.now() + 1000,
        updatedAt: Date.now(),
      });
      // Forgejo's refresh tokens are single-use: a second use fails the grant.
      const spent = new Set<string>();
      let n = 0;
      const forgejo = {
        async refresh(rt: string) {
          if (spent.has(rt)) throw new UpstreamGrantError('token was already used');
          spent.add(rt);
          await new Promise((r) => setTimeout(r, 100));
          n++;
          return { accessToken: `access-${n}`, refreshToken: `rt-${n}`, expiresAt: Date.now() + 3_600_000 };
        },
        accessTokenRejected: async () => false,
      };
      const log = createLogger('silent');
      const managers = [a, b].map(
        (store) => new CredentialManager({ store, forgejo, log, refreshMarginMs: 60_000 }),
      );
      const tokens = await Promise.all(managers.map((m) => m.accessToken(5)));
      assert.equal(n, 1, 'one refresh at Forgejo');
      assert.deepEqual(
        tokens.map((t) => t.token),
        ['access-1', 'access-1'],
      );
      assert.equal((await b.getCredential(5))?.refreshToken, 'rt-1', 'nobody was signed out');
    } finally {
      await a.close();
      await b.close();
    }
  });
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

  it('005 stops repeating the id, name and redirect URIs in stored metadata, and reads them back whole', async () => {
    const older = await (await cluster).createDatabase();
    const upTo4 = readPostgresMigrations().filter((m) => m.version <= 4);
    await (await openOn(older, { migrations: upTo4 })).close();
    const c = new pg.Client({ connectionString: older });
    await c.connect();
    const metadata = {
      client_id: 'old',
      client_name: 'Old',
      redirect_uris: ['https://old.example/cb'],
      token_endpoint_auth_method: 'none',
    };
    await c.query(
      `INSERT INTO oauth_client (client_id, auth_method, name, redirect_uris, metadata, created_at)
       VALUES ('old', 'none', 'Old', '["https://old.example/cb"]', $1, 1)`,
      [JSON.stringify(metadata)],
    );
    const store = await openOn(older);
    assert.deepEqual(
      store.appliedMigrations,
      readPostgresMigrations()
        .filter((m) => m.version >= 5)
        .map((m) => m.version),
    );
    const row = await c.query("SELECT metadata FROM oauth_client WHERE client_id = 'old'");
    await c.end();
    assert.deepEqual(JSON.parse(row.rows[0].metadata), { token_endpoint_auth_method: 'none' });
    assert.deepEqual((await store.getClient('old'))?.metadata, metadata);
    await store.close();
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
