// The session registry in front of a shared store (SQLite here; the store's own behaviour is in
// test/store/contract.ts on both backends): what a call costs the store (nothing), when sightings
// are written (batched, at most about once a minute per session), and what another replica's
// registry finds.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test';
import {
  type NewSession,
  SessionRegistry,
  SIGHTING_EVERY_MS,
  SIGHTING_LAG_MS,
} from '../../src/gateway/sessions.ts';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { McpSessionStore } from '../../src/store/store.ts';

const IDLE = 10 * 60_000;
let tmp: string;
let store: SqliteStore;
let grantId: string;
const calls: Record<string, number> = {};

/** The store, counting what the registry asks of it. */
function counted(s: McpSessionStore): McpSessionStore {
  const count =
    <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) =>
    (...a: A) => {
      calls[name] = (calls[name] ?? 0) + 1;
      return f(...a);
    };
  return {
    insertMcpSession: count('insert', (r, m) => s.insertMcpSession(r, m)),
    getMcpSession: count('get', (h) => s.getMcpSession(h)),
    touchMcpSessions: count('touch', (x) => s.touchMcpSessions(x)),
    deleteMcpSession: count('delete', (h) => s.deleteMcpSession(h)),
    pruneMcpSessions: count('prune', (t) => s.pruneMcpSessions(t)),
  };
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'broker-sessions-'));
  store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 3) });
  grantId = newSecret();
  await store.createGrant(
    { grantId, userId: 1, login: 'u', clientId: 'c', scopes: [], resource: 'r', createdAt: Date.now() },
    {
      codeHash: hashSecret(newSecret()),
      grantId,
      clientId: 'c',
      redirectUri: 'https://c.example/cb',
      codeChallenge: 'x'.repeat(43),
      resource: 'r',
      expiresAt: Date.now() + 60_000,
      usedAt: null,
    },
  );
});
after(async () => {
  await store.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  for (const k of Object.keys(calls)) delete calls[k];
});
afterEach(() => mock.timers.reset());

const init = (o: Partial<NewSession> = {}): NewSession => ({
  userId: 1,
  login: 'u',
  grantId,
  protocolVersion: '2025-06-18',
  clientInfo: { name: 'c', version: '1' },
  clientCapabilities: { sampling: {} },
  tokenHash: 't1',
  ...o,
});

const replica = () => new SessionRegistry({ maxPerUser: 10, idleMs: IDLE, store: counted(store) });

describe('sessions in front of the store', () => {
  it('calls on a session held here never reach the store; sightings go out in one batch once due', async () => {
    const a = replica();
    const one = (await a.create(init()))?.session;
    const two = (await a.create(init()))?.session;
    assert.ok(one && two);
    assert.equal(calls['insert'], 2);
    for (let i = 0; i < 1000; i++) assert.ok(a.get(one.id, 1));
    await a.share();
    assert.equal(calls['touch'] ?? 0, 0, 'nothing due yet: no write');
    assert.equal(calls['get'] ?? 0, 0, 'no read either');
    mock.timers.tick(SIGHTING_EVERY_MS);
    a.get(one.id, 1);
    a.get(two.id, 1);
    await a.share();
    assert.equal(calls['touch'], 1, 'one write for both');
    assert.equal((await store.getMcpSession(one.idHash))?.lastSeenAt, Date.now());
    await a.share();
    assert.equal(calls['touch'], 1, 'written once');
    // A new access token on the session is written at the next flush, due or not.
    one.tokenHash = 't2';
    await a.share();
    assert.equal(calls['touch'], 2);
    assert.equal((await store.getMcpSession(one.idHash))?.tokenHash, 't2');
  });

  it('another replica finds the session, for its own user and grant only, and not once it is idle', async () => {
    const a = replica();
    const s = (await a.create(init()))?.session;
    assert.ok(s);
    const b = replica();
    assert.equal(await b.load(s.id, 2, grantId), undefined, "another user's");
    assert.equal(await b.load(s.id, 1, 'another grant'), undefined, "another app's");
    assert.equal(b.holds(s.id), false, 'neither is held');
    const found = await b.load(s.id, 1, grantId);
    assert.deepEqual(
      {
        v: found?.protocolVersion,
        caps: found?.clientCapabilities,
        info: found?.clientInfo,
        t: found?.tokenHash,
      },
      { v: '2025-06-18', caps: { sampling: {} }, info: { name: 'c', version: '1' }, t: 't1' },
    );
    assert.equal(b.get(s.id, 1), found, 'held from now on');
    const reads = calls['get'];
    b.get(s.id, 1);
    assert.equal(calls['get'], reads, 'read once');

    const idle = (await a.create(init()))?.session;
    assert.ok(idle);
    mock.timers.tick(IDLE + SIGHTING_LAG_MS + 1);
    assert.equal(await replica().load(idle.id, 1, grantId), undefined, 'idle past the limit');
  });

  it('concurrent first requests read once; a session ended meanwhile is not held', async () => {
    const s = (await replica().create(init()))?.session;
    assert.ok(s);
    const b = replica();
    const before = calls['get'] ?? 0;
    const [x, y] = await Promise.all([b.load(s.id, 1, grantId), b.load(s.id, 1, grantId)]);
    assert.equal(calls['get'], before + 1);
    assert.ok(x && x === y);

    const t = (await replica().create(init()))?.session;
    assert.ok(t);
    const c = replica();
    const loading = c.load(t.id, 1, grantId);
    c.endedElsewhere(t.idHash);
    assert.equal(await loading, undefined);
    assert.equal(c.holds(t.id), false);
  });

  it('flushing names the sessions held here that another replica ended, and prunes idle records', async () => {
    const a = replica();
    const s = (await a.create(init()))?.session;
    const idle = (await a.create(init()))?.session;
    assert.ok(s && idle);
    await store.deleteMcpSession(s.idHash);
    mock.timers.tick(SIGHTING_EVERY_MS);
    a.get(s.id, 1);
    assert.deepEqual(
      (await a.share()).map((g) => g.id),
      [s.id],
    );
    mock.timers.tick(IDLE + SIGHTING_LAG_MS);
    await replica().share();
    assert.equal(await store.getMcpSession(idle.idHash), undefined, 'pruned');
  });
});
