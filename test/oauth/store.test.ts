import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { AuthRequestRecord, TokenPair } from '../../src/store/store.ts';

/** A store in a temporary folder, closed and removed after the suite. */
function openStore(): SqliteStore {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-oauth-store-'));
  const store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 9) });
  after(async () => {
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  return store;
}

describe('SqliteStore: pending authorizations', () => {
  const store = openStore();
  const now = 1_000_000;
  const request = (expiresAt = now + 600_000): AuthRequestRecord => ({
    idHash: hashSecret(newSecret()),
    browserHash: hashSecret(newSecret()),
    csrfHash: hashSecret(newSecret()),
    clientId: 'c',
    clientName: 'C',
    source: '192.0.2.1',
    redirectUri: 'https://c.example/cb',
    clientState: null,
    codeChallenge: 'x'.repeat(43),
    resource: 'https://mcp.example/mcp',
    scopes: ['mcp'],
    upstreamStateHash: null,
    upstreamVerifier: null,
    expiresAt,
  });

  const wide = { total: 100, perSource: 100, perClient: 100 };

  it('approves once, seals the verifier, and gives the request back by its state exactly once', async () => {
    const r = request();
    await store.insertAuthRequest(r, now, wide);
    const state = hashSecret('upstream-state');
    assert.equal(
      await store.approveAuthRequest(r.idHash, state, 'verifier-plaintext-0123456789', now + 600_000, now),
      true,
    );
    assert.equal(
      await store.approveAuthRequest(r.idHash, hashSecret('other'), 'v', now + 600_000, now),
      false,
    );
    const raw = store.db
      .prepare('SELECT upstream_verifier FROM auth_request WHERE id_hash = ?')
      .get(r.idHash);
    assert.ok(!String(raw?.['upstream_verifier']).includes('verifier-plaintext'));
    const taken = await store.takeAuthRequestByState(state, now);
    assert.equal(taken?.upstreamVerifier, 'verifier-plaintext-0123456789');
    assert.equal(await store.takeAuthRequestByState(state, now), undefined);
  });

  it('an expired approved request is consumed but not returned', async () => {
    const r = request(now + 10);
    await store.insertAuthRequest(r, now, wide);
    const state = hashSecret('s2');
    assert.equal(await store.approveAuthRequest(r.idHash, state, 'v'.repeat(43), now + 10, now), true);
    assert.equal(await store.takeAuthRequestByState(state, now + 20), undefined);
    assert.equal(await store.getAuthRequest(r.idHash), undefined);
  });
});

describe('SqliteStore: pending authorizations are bounded per source, per client and in total', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-pending-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  const fresh = () => new SqliteStore({ path: join(tmp, `p-${++n}.db`), secretKey: Buffer.alloc(32, 9) });
  const now = 1_000_000;
  let seq = 0;
  /** Later requests expire later: `seq` orders them oldest first. */
  const request = (source: string, clientId: string): AuthRequestRecord => ({
    idHash: hashSecret(newSecret()),
    browserHash: hashSecret(newSecret()),
    csrfHash: hashSecret(newSecret()),
    clientId,
    clientName: 'C',
    source,
    redirectUri: 'https://c.example/cb',
    clientState: null,
    codeChallenge: 'x'.repeat(43),
    resource: 'https://mcp.example/mcp',
    scopes: ['mcp'],
    upstreamStateHash: null,
    upstreamVerifier: null,
    expiresAt: now + 600_000 + ++seq,
  });
  const alive = async (store: SqliteStore, r: AuthRequestRecord) =>
    (await store.getAuthRequest(r.idHash)) !== undefined;

  it('a source at its bound sheds its own oldest request, and nobody else’s', async () => {
    const store = fresh();
    const limits = { total: 100, perSource: 3, perClient: 100 };
    const victim = request('198.51.100.7', 'c');
    assert.equal(await store.insertAuthRequest(victim, now, limits), true);
    const flood = Array.from({ length: 10 }, () => request('203.0.113.9', 'c'));
    for (const r of flood) assert.equal(await store.insertAuthRequest(r, now, limits), true);
    assert.equal(await alive(store, victim), true);
    const kept = await Promise.all(flood.map((r) => alive(store, r)));
    assert.deepEqual(kept, [...Array(7).fill(false), true, true, true]);
    await store.close();
  });

  it('a client at its bound sheds its own oldest request', async () => {
    const store = fresh();
    const limits = { total: 100, perSource: 100, perClient: 2 };
    const other = request('192.0.2.1', 'other');
    await store.insertAuthRequest(other, now, limits);
    const mine = [1, 2, 3].map((i) => request(`192.0.2.${i + 1}`, 'busy'));
    for (const r of mine) assert.equal(await store.insertAuthRequest(r, now, limits), true);
    assert.deepEqual(await Promise.all(mine.map((r) => alive(store, r))), [false, true, true]);
    assert.equal(await alive(store, other), true);
    await store.close();
  });

  it('a full table sheds the oldest unconsented request, never one the user already approved', async () => {
    const store = fresh();
    const limits = { total: 3, perSource: 100, perClient: 100 };
    const approved = request('192.0.2.1', 'a');
    const old = request('192.0.2.2', 'b');
    const newer = request('192.0.2.3', 'c');
    for (const r of [approved, old, newer]) await store.insertAuthRequest(r, now, limits);
    assert.equal(
      await store.approveAuthRequest(approved.idHash, hashSecret('s'), 'v', now + 700_000, now),
      true,
    );
    const late = request('192.0.2.4', 'd');
    assert.equal(await store.insertAuthRequest(late, now, limits), true);
    assert.deepEqual(await Promise.all([approved, old, newer, late].map((r) => alive(store, r))), [
      true,
      false,
      true,
      true,
    ]);
    await store.close();
  });

  it('refuses (false) only when every request in the way is already approved; expired ones never count', async () => {
    const store = fresh();
    const limits = { total: 2, perSource: 100, perClient: 100 };
    const expired = { ...request('192.0.2.9', 'x'), expiresAt: now - 1 };
    await store.insertAuthRequest(expired, now - 10, limits);
    const a = request('192.0.2.1', 'a');
    const b = request('192.0.2.2', 'b');
    for (const r of [a, b]) assert.equal(await store.insertAuthRequest(r, now, limits), true);
    for (const r of [a, b])
      assert.equal(
        await store.approveAuthRequest(r.idHash, hashSecret(r.idHash), 'v', now + 700_000, now),
        true,
      );
    assert.equal(await store.insertAuthRequest(request('192.0.2.3', 'c'), now, limits), false);
    assert.equal(await alive(store, a), true);
    assert.equal(await alive(store, b), true);
    await store.close();
  });
});

describe('SqliteStore: refresh grace', () => {
  const store = openStore();
  const now = 1_000_000;
  const pair = (): TokenPair => ({
    accessHash: hashSecret(newSecret()),
    accessExpiresAt: now + 3_600_000,
    refreshHash: hashSecret(newSecret()),
    refreshExpiresAt: now + 86_400_000,
  });
  const tokens = () => Number(store.db.prepare('SELECT COUNT(*) AS n FROM oauth_token').get()?.['n']);

  async function grantWithTokens(): Promise<TokenPair> {
    const grantId = newSecret();
    const codeHash = hashSecret(newSecret());
    await store.createGrant(
      { grantId, userId: 1, login: 'u', clientId: 'c', scopes: ['mcp'], resource: 'r', createdAt: now },
      {
        codeHash,
        grantId,
        clientId: 'c',
        redirectUri: 'https://c.example/cb',
        codeChallenge: 'x'.repeat(43),
        resource: 'r',
        expiresAt: now + 60_000,
        usedAt: null,
      },
    );
    const first = pair();
    assert.equal(await store.redeemCode(codeHash, now, first), 'ok');
    return first;
  }

  it('answers a retry with the successor it stored, storing nothing, and keeps a revoked access token revoked', async () => {
    const first = await grantWithTokens();
    const next = pair();
    const a = await store.rotateRefreshToken(first.refreshHash, 'c', now, 30_000, next);
    assert.ok(a.ok && !a.graceReuse);
    assert.equal(a.accessExpiresAt, next.accessExpiresAt);
    const before = tokens();
    assert.equal(await store.revokeToken(next.accessHash, 'c'), 'access');
    const b = await store.rotateRefreshToken(first.refreshHash, 'c', now + 1000, 30_000, next);
    assert.ok(b.ok && b.graceReuse);
    assert.equal(b.accessExpiresAt, now + 1000, 'the revoked access token is not re-created: expires now');
    assert.equal(tokens(), before - 1, 'nothing was stored for the retry');
    assert.equal(await store.findAccessToken(next.accessHash), undefined);
  });

  it('stores the successor on a retry only when it was never stored (rotated under an earlier key)', async () => {
    const first = await grantWithTokens();
    assert.ok((await store.rotateRefreshToken(first.refreshHash, 'c', now, 30_000, pair())).ok);
    const other = pair();
    const b = await store.rotateRefreshToken(first.refreshHash, 'c', now + 1000, 30_000, other);
    assert.ok(b.ok && b.graceReuse);
    assert.ok(await store.findAccessToken(other.accessHash));
    const c = await store.rotateRefreshToken(first.refreshHash, 'c', now + 2000, 30_000, other);
    assert.deepEqual(c, { ok: false, reason: 'reused' }, 'the grace is still used once');
  });
});
