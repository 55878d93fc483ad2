// Migration 005 (per-grant mode, what the connected-apps page shows, its sign-ins and sessions):
// grants made before it keep working as "read and write" (the rest is in the store contract).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readMigrations } from '../../src/store/sqlite/migrate.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-apps-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const key = Buffer.alloc(32, 7);

const grant = (grantId: string, createdAt: number) => ({
  grantId,
  userId: 5,
  login: 'eve',
  clientId: 'c1',
  scopes: ['mcp'],
  resource: 'http://x/mcp',
  createdAt,
});
const code = (grantId: string) => ({
  codeHash: `h-${grantId}`,
  grantId,
  clientId: 'c1',
  redirectUri: 'http://127.0.0.1/cb',
  codeChallenge: 'x'.repeat(43),
  resource: 'http://x/mcp',
  expiresAt: Date.now() + 60_000,
  usedAt: null,
});

describe('connected-apps store', () => {
  it('a grant made before migration 005 reads back as read and write, never used', async () => {
    const path = join(tmp, 'old.sqlite');
    const before = readMigrations().filter((m) => m.version < 5);
    const old = new SqliteStore({ path, secretKey: key, migrations: before });
    // As the broker before it wrote a grant (the store's own insert knows the new columns).
    old.db
      .prepare(
        'INSERT INTO oauth_grant (grant_id, user_id, login, client_id, scopes, resource, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run('g-old', 5, 'eve', 'c1', 'mcp', 'http://x/mcp', 1);
    await old.close();
    const s = new SqliteStore({ path, secretKey: key });
    assert.deepEqual(
      s.appliedMigrations,
      readMigrations()
        .filter((m) => m.version >= 5)
        .map((m) => m.version),
    );
    const [g] = await s.listGrants(5);
    assert.equal(g?.mode, 'write');
    assert.equal(g?.lastUsedAt, null);
    await s.createGrant(
      { ...grant('g-new', 2), mode: 'read', clientName: 'Cursor', redirectUri: 'cursor://x/cb' },
      code('g-new'),
    );
    const listed = await s.listGrants(5);
    assert.deepEqual(
      listed.map((x) => [x.grantId, x.mode, x.clientName, x.redirectUri]),
      [
        ['g-new', 'read', 'Cursor', 'cursor://x/cb'],
        ['g-old', 'write', '', ''],
      ],
    );
    await s.close();
  });
});
