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
    redirectUri: 'https://c.example/cb',
    clientState: null,
    codeChallenge: 'x'.repeat(43),
    resource: 'https://mcp.example/mcp',
    scopes: ['mcp'],
    upstreamStateHash: null,
    upstreamVerifier: null,
    expiresAt,
  });

  it('bounds the number of live pending authorizations; expired ones do not count', async () => {
    assert.equal(await store.insertAuthRequest(request(now - 1), now, 2), true);
    assert.equal(await store.insertAuthRequest(request(), now, 2), true);
    assert.equal(await store.insertAuthRequest(request(), now, 2), true);
    assert.equal(await store.insertAuthRequest(request(), now, 2), false);
  });

  it('approves once, seals the verifier, and gives the request back by its state exactly once', async () => {
    const r = request();
    await store.insertAuthRequest(r, now, 100);
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
    await store.insertAuthRequest(r, now, 100);
    const state = hashSecret('s2');
    assert.equal(await store.approveAuthRequest(r.idHash, state, 'v'.repeat(43), now + 10, now), true);
    assert.equal(await store.takeAuthRequestByState(state, now + 20), undefined);
    assert.equal(await store.getAuthRequest(r.idHash), undefined);
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
