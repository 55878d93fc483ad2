// The store's contract, checked against every backend (test/store/sqlite.test.ts and
// postgres.test.ts): what the broker relies on, including what two processes on one database see.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import type {
  AuthRequestRecord,
  BrokerStore,
  ClientRecord,
  CodeRecord,
  GrantRecord,
  McpSessionRecord,
  PendingLimits,
  TokenPair,
} from '../../src/store/store.ts';
import { waitFor } from '../support/wait.ts';

export type Row = Record<string, unknown>;

/** One database of a backend: stores opened on it and plain SQL ($1, $2… placeholders) beside them. */
export type TestDatabase = {
  open(o?: { secretKey?: Buffer; previousKeys?: Buffer[] }): Promise<BrokerStore>;
  raw(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Closes every store opened on it and drops it. */
  close(): Promise<void>;
};

export type Backend = { name: string; database(): Promise<TestDatabase> };

const KEY = Buffer.alloc(32, 9);
const now = 1_000_000;

/** Bounds on pending authorizations no test here reaches. */
const WIDE: PendingLimits = { total: 1000, perSource: 1000, perClient: 1000 };

function authRequest(expiresAt = now + 600_000, clientId = 'c', source = '192.0.2.1'): AuthRequestRecord {
  return {
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
    mode: null,
    expiresAt,
  };
}

function pair(): TokenPair {
  return {
    accessHash: hashSecret(newSecret()),
    accessExpiresAt: now + 3_600_000,
    refreshHash: hashSecret(newSecret()),
    refreshExpiresAt: now + 86_400_000,
  };
}

function client(clientId = newSecret()): ClientRecord {
  return {
    clientId,
    secretHash: hashSecret('s'),
    authMethod: 'client_secret_post',
    name: 'App',
    redirectUris: ['https://app.example/cb'],
    metadata: { client_name: 'App' },
    createdAt: now,
    usedAt: null,
    registrationTokenHash: hashSecret('rt'),
  };
}

async function grantWithCode(
  store: BrokerStore,
  o: { userId?: number; clientId?: string } = {},
): Promise<{ grant: GrantRecord; code: CodeRecord }> {
  const grantId = newSecret();
  const grant: GrantRecord = {
    grantId,
    userId: o.userId ?? 1,
    login: `u${o.userId ?? 1}`,
    clientId: o.clientId ?? 'c',
    scopes: ['mcp'],
    resource: 'r',
    createdAt: now,
    // As a grant reads back: the defaults of a grant made without a mode or a page name.
    mode: 'write',
    clientName: '',
    redirectUri: '',
    lastUsedAt: null,
  };
  const code: CodeRecord = {
    codeHash: hashSecret(newSecret()),
    grantId,
    clientId: grant.clientId,
    redirectUri: 'https://c.example/cb',
    codeChallenge: 'x'.repeat(43),
    resource: 'r',
    expiresAt: now + 60_000,
    usedAt: null,
  };
  await store.createGrant(grant, code);
  return { grant, code };
}

async function grantWithTokens(store: BrokerStore, o: { userId?: number; clientId?: string } = {}) {
  const { grant, code } = await grantWithCode(store, o);
  const tokens = pair();
  assert.equal(await store.redeemCode(code.codeHash, now, tokens), 'ok');
  return { grant, tokens };
}

function mcpSession(grant: GrantRecord, o: Partial<McpSessionRecord> = {}): McpSessionRecord {
  return {
    idHash: hashSecret(newSecret()),
    grantId: grant.grantId,
    userId: grant.userId,
    login: grant.login,
    tokenHash: null,
    protocolVersion: '2025-06-18',
    clientInfo: '{"name":"c","version":"1"}',
    clientCapabilities: '{"sampling":{}}',
    createdAt: now,
    lastSeenAt: now,
    ...o,
  };
}

const count = async (db: TestDatabase, table: string) =>
  Number((await db.raw(`SELECT COUNT(*) AS n FROM ${table}`))[0]?.['n']);

export function storeContract(backend: Backend): void {
  /** A fresh database for a group of tests, closed after it. */
  const fresh = () => {
    const db = backend.database();
    after(async () => (await db).close());
    return db;
  };

  describe(`${backend.name} store: clients`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });

    it('stores, reads, updates and deletes a registration; deleting revokes its grants and sign-ins', async () => {
      const c = client();
      assert.equal(await store.insertClient(c), true);
      assert.deepEqual(await store.getClient(c.clientId), {
        ...c,
        metadata: {
          ...c.metadata,
          client_id: c.clientId,
          client_name: c.name,
          redirect_uris: c.redirectUris,
        },
      });
      assert.equal(
        await store.updateClient(c.clientId, {
          name: 'New',
          redirectUris: ['https://n.example/cb'],
          metadata: { a: 1 },
        }),
        true,
      );
      const updated = await store.getClient(c.clientId);
      assert.equal(updated?.name, 'New');
      assert.deepEqual(updated?.redirectUris, ['https://n.example/cb']);
      assert.equal(updated?.secretHash, c.secretHash, 'the secret stays');
      const { grant } = await grantWithTokens(store, { clientId: c.clientId });
      assert.ok((await store.getClient(c.clientId))?.usedAt, 'a grant marks the client used');
      await store.insertAuthRequest(authRequest(now + 600_000, c.clientId), now, WIDE);
      const revoked: unknown[] = [];
      store.events.on('grantRevoked', (g) => revoked.push(g));
      assert.equal(await store.deleteClient(c.clientId), true);
      assert.deepEqual(revoked, [{ grantId: grant.grantId, userId: 1 }]);
      assert.equal(await store.getClient(c.clientId), undefined);
      assert.equal(
        Number(
          (await db.raw('SELECT COUNT(*) AS n FROM auth_request WHERE client_id = $1', [c.clientId]))[0]?.[
            'n'
          ],
        ),
        0,
      );
      assert.equal(await store.deleteClient(c.clientId), false);
      assert.equal(
        await store.updateClient(c.clientId, { name: 'x', redirectUris: [], metadata: {} }),
        false,
      );
    });
  });

  describe(`${backend.name} store: pending authorizations`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });

    it('holds the bound when many sign-ins arrive at once, each approved as soon as it is in', async () => {
      const later = now + 10_000_000;
      const limits = { total: 5, perSource: 1000, perClient: 1000 };
      // Approved requests are never shed: a bound overshot by sign-ins racing would stay overshot.
      const approvals = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const r = authRequest(later + 600_000 + i, 'c', `198.51.100.${i}`);
          if (!(await store.insertAuthRequest(r, later, limits))) return false;
          return store.approveAuthRequest(r.idHash, hashSecret(newSecret()), 'v', later + 700_000, later);
        }),
      );
      const pending = await store.pendingAuthRequests(later);
      assert.equal(pending, approvals.filter(Boolean).length);
      assert.ok(pending >= 1 && pending <= 5, `${pending} pending`);
    });

    it('approves once, seals the verifier, and gives the request back by its state exactly once', async () => {
      const r = authRequest();
      await store.insertAuthRequest(r, now, WIDE);
      assert.deepEqual(await store.getAuthRequest(r.idHash), r);
      const state = hashSecret('upstream-state');
      assert.equal(
        await store.approveAuthRequest(r.idHash, state, 'verifier-plaintext-0123456789', now + 600_000, now),
        true,
      );
      assert.equal(
        await store.approveAuthRequest(r.idHash, hashSecret('other'), 'v', now + 600_000, now),
        false,
      );
      const [raw] = await db.raw('SELECT upstream_verifier FROM auth_request WHERE id_hash = $1', [r.idHash]);
      assert.ok(!String(raw?.['upstream_verifier']).includes('verifier-plaintext'));
      const [a, b] = await Promise.all([
        store.takeAuthRequestByState(state, now),
        store.takeAuthRequestByState(state, now),
      ]);
      assert.equal([a, b].filter(Boolean).length, 1, 'one callback gets it');
      assert.equal((a ?? b)?.upstreamVerifier, 'verifier-plaintext-0123456789');
      assert.equal(await store.takeAuthRequestByState(state, now), undefined);
    });

    it('an expired approved request is consumed but not returned; a deleted one is gone', async () => {
      const r = authRequest(now + 10);
      await store.insertAuthRequest(r, now, WIDE);
      const state = hashSecret('s2');
      assert.equal(await store.approveAuthRequest(r.idHash, state, 'v'.repeat(43), now + 10, now), true);
      assert.equal(await store.takeAuthRequestByState(state, now + 20), undefined);
      assert.equal(await store.getAuthRequest(r.idHash), undefined);
      const d = authRequest();
      await store.insertAuthRequest(d, now, WIDE);
      await store.deleteAuthRequest(d.idHash);
      assert.equal(await store.getAuthRequest(d.idHash), undefined);
    });
  });

  describe(`${backend.name} store: pending authorizations are bounded per source, per client and in total`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });
    // Each test its own time, so what earlier tests left has expired.
    let t = now;
    let seq = 0;
    /** Later requests expire later: `seq` orders them oldest first. */
    const request = (source: string, clientId: string) => authRequest(t + 600_000 + ++seq, clientId, source);
    const alive = async (r: AuthRequestRecord) => (await store.getAuthRequest(r.idHash)) !== undefined;
    const begin = () => {
      t += 10_000_000;
      return t;
    };

    it('a source at its bound sheds its own oldest request, and nobody else’s', async () => {
      const at = begin();
      const limits = { total: 100, perSource: 3, perClient: 100 };
      const victim = request('198.51.100.7', 'c');
      assert.equal(await store.insertAuthRequest(victim, at, limits), true);
      const flood = Array.from({ length: 10 }, () => request('203.0.113.9', 'c'));
      for (const r of flood) assert.equal(await store.insertAuthRequest(r, at, limits), true);
      assert.equal(await alive(victim), true);
      const kept = await Promise.all(flood.map(alive));
      assert.deepEqual(kept, [...Array(7).fill(false), true, true, true]);
    });

    it('a client at its bound sheds its own oldest request', async () => {
      const at = begin();
      const limits = { total: 100, perSource: 100, perClient: 2 };
      const other = request('192.0.2.1', 'other');
      await store.insertAuthRequest(other, at, limits);
      const mine = [1, 2, 3].map((i) => request(`192.0.2.${i + 1}`, 'busy'));
      for (const r of mine) assert.equal(await store.insertAuthRequest(r, at, limits), true);
      assert.deepEqual(await Promise.all(mine.map(alive)), [false, true, true]);
      assert.equal(await alive(other), true);
    });

    it('a full table sheds the oldest unconsented request, never one the user already approved', async () => {
      const at = begin();
      const limits = { total: 3, perSource: 100, perClient: 100 };
      const approved = request('192.0.2.1', 'a');
      const old = request('192.0.2.2', 'b');
      const newer = request('192.0.2.3', 'c');
      for (const r of [approved, old, newer]) await store.insertAuthRequest(r, at, limits);
      assert.equal(
        await store.approveAuthRequest(approved.idHash, hashSecret(newSecret()), 'v', at + 700_000, at),
        true,
      );
      const late = request('192.0.2.4', 'd');
      assert.equal(await store.insertAuthRequest(late, at, limits), true);
      assert.deepEqual(await Promise.all([approved, old, newer, late].map(alive)), [true, false, true, true]);
    });

    it('refuses (false) only when every request in the way is already approved; expired ones never count', async () => {
      const at = begin();
      const limits = { total: 2, perSource: 100, perClient: 100 };
      const expired = { ...request('192.0.2.9', 'x'), expiresAt: at - 1 };
      await store.insertAuthRequest(expired, at - 10, limits);
      const a = request('192.0.2.1', 'a');
      const b = request('192.0.2.2', 'b');
      for (const r of [a, b]) assert.equal(await store.insertAuthRequest(r, at, limits), true);
      for (const r of [a, b])
        assert.equal(
          await store.approveAuthRequest(r.idHash, hashSecret(r.idHash), 'v', at + 700_000, at),
          true,
        );
      assert.equal(await store.insertAuthRequest(request('192.0.2.3', 'c'), at, limits), false);
      assert.equal(await alive(a), true);
      assert.equal(await alive(b), true);
      assert.equal(await store.pendingAuthRequests(at), 2);
    });
  });

  describe(`${backend.name} store: the registration budget`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });
    const registration = (createdAt: number): ClientRecord => ({ ...client(), createdAt });
    const unused = async () =>
      Number((await db.raw('SELECT COUNT(*) AS n FROM oauth_client WHERE used_at IS NULL'))[0]?.['n']);
    const clear = () => db.raw('DELETE FROM oauth_client');

    it('stores the id, name and redirect URIs once, and reads the whole metadata back', async () => {
      const c = {
        ...client(),
        redirectUris: ['https://once.example/cb'],
        metadata: {
          client_id: 'x',
          client_name: 'App',
          redirect_uris: ['https://once.example/cb'],
          token_endpoint_auth_method: 'none',
        },
      };
      assert.equal(await store.insertClient(c), true);
      const [row] = await db.raw('SELECT metadata FROM oauth_client WHERE client_id = $1', [c.clientId]);
      assert.deepEqual(JSON.parse(String(row?.['metadata'])), { token_endpoint_auth_method: 'none' });
      assert.deepEqual((await store.getClient(c.clientId))?.metadata, {
        ...c.metadata,
        client_id: c.clientId,
      });
      await store.updateClient(c.clientId, {
        name: 'New',
        redirectUris: ['https://new.example/cb'],
        metadata: { client_name: 'New', redirect_uris: ['https://new.example/cb'], scope: 'mcp' },
      });
      const [updated] = await db.raw('SELECT metadata FROM oauth_client WHERE client_id = $1', [c.clientId]);
      assert.deepEqual(JSON.parse(String(updated?.['metadata'])), { scope: 'mcp' });
      await clear();
    });

    it('refuses (false, nothing stored) when the unused ones are all too young to go; used ones never count', async () => {
      const used = registration(now);
      await store.insertClient(used);
      await grantWithCode(store, { clientId: used.clientId });
      const budget = { maxUnused: 2, evictCreatedBefore: now - 1 };
      const fresh = [registration(now), registration(now)];
      for (const c of fresh) assert.equal(await store.insertClient(c, budget), true);
      const refused = registration(now);
      assert.equal(await store.insertClient(refused, budget), false);
      assert.equal(await store.getClient(refused.clientId), undefined);
      for (const c of [used, ...fresh]) assert.ok(await store.getClient(c.clientId));
      await store.insertClient(registration(now));
      assert.equal(await unused(), 3, 'without a budget it is not bounded');
      await clear();
    });

    it('makes room by deleting the oldest abandoned registrations with their sign-ins', async () => {
      const old = [registration(now - 3000), registration(now - 2000)];
      const young = registration(now);
      for (const c of [...old, young]) await store.insertClient(c);
      await store.insertAuthRequest(authRequest(now + 600_000, old[0]?.clientId), now, WIDE);
      const budget = { maxUnused: 3, evictCreatedBefore: now - 1000 };
      const next = registration(now);
      assert.equal(await store.insertClient(next, budget), true);
      assert.deepEqual(
        await Promise.all(
          [...old, young, next].map(async (c) => (await store.getClient(c.clientId)) !== undefined),
        ),
        [false, true, true, true],
      );
      const [left] = await db.raw('SELECT COUNT(*) AS n FROM auth_request WHERE client_id = $1', [
        old[0]?.clientId,
      ]);
      assert.equal(Number(left?.['n']), 0, "the abandoned registration's sign-ins went with it");
      await clear();
    });

    it('holds the budget when many registrations arrive at once', async () => {
      const budget = { maxUnused: 5, evictCreatedBefore: 0 };
      const results = await Promise.all(
        Array.from({ length: 30 }, () => store.insertClient(registration(now), budget)),
      );
      assert.equal(results.filter(Boolean).length, 5);
      assert.equal(await unused(), 5);
      await clear();
    });
  });

  describe(`${backend.name} store: Forgejo credentials`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });

    it('keeps one sealed credential per user, announces each change, and binds it to its user', async () => {
      const changed: number[] = [];
      store.events.on('tokenChanged', (u) => changed.push(u));
      const cred = {
        userId: 7,
        login: 'ann',
        accessToken: 'gto_access-7',
        refreshToken: 'gto_refresh-7',
        expiresAt: now,
        updatedAt: now,
      };
      await store.putCredential(cred);
      await store.putCredential({ ...cred, accessToken: 'gto_access-7b', updatedAt: now + 1 });
      assert.deepEqual(await store.getCredential(7), {
        ...cred,
        accessToken: 'gto_access-7b',
        updatedAt: now + 1,
      });
      assert.deepEqual(changed, [7, 7]);
      assert.equal(await count(db, 'forgejo_credential'), 1);
      const rows = JSON.stringify(await db.raw('SELECT * FROM forgejo_credential'));
      assert.ok(!rows.includes('gto_'), 'no plaintext token at rest');
      await store.putCredential({ ...cred, userId: 8, login: 'bob' });
      await db.raw(
        'UPDATE forgejo_credential SET access_token = (SELECT access_token FROM forgejo_credential WHERE user_id = 7) WHERE user_id = 8',
      );
      await assert.rejects(store.getCredential(8), 'a value copied from another user does not open');
      assert.equal(await store.getCredential(9), undefined);
    });
  });

  describe(`${backend.name} store: codes and tokens`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });

    it('redeems a code once; a second redemption revokes the grant and its tokens', async () => {
      const { grant, code } = await grantWithCode(store);
      assert.equal((await store.getCode(code.codeHash))?.usedAt, null);
      const tokens = pair();
      assert.equal(await store.redeemCode(code.codeHash, now, tokens), 'ok');
      assert.equal((await store.getCode(code.codeHash))?.usedAt, now);
      assert.deepEqual(await store.findAccessToken(tokens.accessHash), {
        grant,
        expiresAt: tokens.accessExpiresAt,
      });
      const revoked = once(store.events, 'grantRevoked');
      assert.equal(await store.redeemCode(code.codeHash, now, pair()), 'reused');
      assert.deepEqual((await revoked)[0], { grantId: grant.grantId, userId: 1 });
      assert.equal(await store.findAccessToken(tokens.accessHash), undefined);
      assert.equal(await store.redeemCode(hashSecret('never issued'), now, pair()), 'reused');
    });

    it('redemptions of one code at once: one gets tokens, the others revoke them', async () => {
      for (let round = 0; round < 5; round++) {
        const { code } = await grantWithCode(store);
        const pairs = [pair(), pair(), pair()];
        const results = await Promise.all(pairs.map((p) => store.redeemCode(code.codeHash, now, p)));
        assert.deepEqual([...results].sort(), ['ok', 'reused', 'reused']);
        for (const p of pairs) assert.equal(await store.findAccessToken(p.accessHash), undefined);
      }
    });

    it('rotates a refresh token, refuses another client, an expired or unknown one, and revokes on late reuse', async () => {
      const { grant, tokens } = await grantWithTokens(store);
      assert.deepEqual(await store.rotateRefreshToken(tokens.refreshHash, 'other', now, 30_000, pair()), {
        ok: false,
        reason: 'wrong_client',
      });
      assert.deepEqual(await store.rotateRefreshToken(hashSecret('x'), 'c', now, 30_000, pair()), {
        ok: false,
        reason: 'unknown',
      });
      assert.deepEqual(
        await store.rotateRefreshToken(tokens.refreshHash, 'c', now + 86_400_000, 30_000, pair()),
        {
          ok: false,
          reason: 'expired',
        },
      );
      const next = pair();
      const r = await store.rotateRefreshToken(tokens.refreshHash, 'c', now, 30_000, next);
      assert.deepEqual(r, { ok: true, grant, graceReuse: false, accessExpiresAt: next.accessExpiresAt });
      assert.ok(await store.findAccessToken(next.accessHash));
      assert.deepEqual(await store.rotateRefreshToken(tokens.refreshHash, 'c', now + 31_000, 30_000, next), {
        ok: false,
        reason: 'reused',
      });
      assert.equal(await store.findAccessToken(next.accessHash), undefined, 'the whole grant is gone');
    });

    it('two rotations of one refresh token at once: one rotates, the other is the grace retry', async () => {
      const { tokens } = await grantWithTokens(store);
      const next = pair();
      const results = await Promise.all([
        store.rotateRefreshToken(tokens.refreshHash, 'c', now, 30_000, next),
        store.rotateRefreshToken(tokens.refreshHash, 'c', now, 30_000, next),
      ]);
      assert.ok(results.every((r) => r.ok));
      assert.deepEqual(results.map((r) => r.ok && r.graceReuse).sort(), [false, true]);
      assert.equal(
        Number(
          (
            await db.raw('SELECT COUNT(*) AS n FROM oauth_token WHERE token_hash = $1', [next.refreshHash])
          )[0]?.['n'],
        ),
        1,
      );
    });

    it('answers a retry with the successor it stored, storing nothing, and keeps a revoked access token revoked', async () => {
      const { tokens: first } = await grantWithTokens(store);
      const next = pair();
      const a = await store.rotateRefreshToken(first.refreshHash, 'c', now, 30_000, next);
      assert.ok(a.ok && !a.graceReuse);
      assert.equal(a.accessExpiresAt, next.accessExpiresAt);
      const before = await count(db, 'oauth_token');
      assert.equal(await store.revokeToken(next.accessHash, 'c'), 'access');
      const b = await store.rotateRefreshToken(first.refreshHash, 'c', now + 1000, 30_000, next);
      assert.ok(b.ok && b.graceReuse);
      assert.equal(b.accessExpiresAt, now + 1000, 'the revoked access token is not re-created: expires now');
      assert.equal(await count(db, 'oauth_token'), before - 1, 'nothing was stored for the retry');
      assert.equal(await store.findAccessToken(next.accessHash), undefined);
    });

    it('stores the successor on a retry only when it was never stored (rotated under an earlier key)', async () => {
      const { tokens: first } = await grantWithTokens(store);
      assert.ok((await store.rotateRefreshToken(first.refreshHash, 'c', now, 30_000, pair())).ok);
      const other = pair();
      const b = await store.rotateRefreshToken(first.refreshHash, 'c', now + 1000, 30_000, other);
      assert.ok(b.ok && b.graceReuse);
      assert.ok(await store.findAccessToken(other.accessHash));
      const c = await store.rotateRefreshToken(first.refreshHash, 'c', now + 2000, 30_000, other);
      assert.deepEqual(c, { ok: false, reason: 'reused' }, 'the grace is still used once');
    });

    it('revokes an access token alone, a refresh token with its grant, and nothing for another client', async () => {
      const { grant, tokens } = await grantWithTokens(store);
      assert.equal(await store.revokeToken(tokens.accessHash, 'other'), undefined);
      const alone = once(store.events, 'accessTokenRevoked');
      assert.equal(await store.revokeToken(tokens.accessHash, 'c'), 'access');
      assert.deepEqual((await alone)[0], { tokenHash: tokens.accessHash, grantId: grant.grantId, userId: 1 });
      assert.equal(await store.findAccessToken(tokens.accessHash), undefined);
      const next = pair();
      assert.ok(
        (await store.rotateRefreshToken(tokens.refreshHash, 'c', now, 30_000, next)).ok,
        'the grant lives on',
      );
      assert.equal(await store.revokeToken(next.refreshHash, 'c'), 'refresh');
      assert.equal(await store.findAccessToken(next.accessHash), undefined);
      assert.equal(await store.revokeToken(next.refreshHash, 'c'), undefined);
    });

    it('revokes a grant, and a user with every grant and the credential', async () => {
      const a = await grantWithTokens(store, { userId: 40 });
      const b = await grantWithTokens(store, { userId: 40 });
      const other = await grantWithTokens(store, { userId: 41 });
      await store.putCredential({
        userId: 40,
        login: 'u40',
        accessToken: 'a',
        refreshToken: 'r',
        expiresAt: now,
        updatedAt: now,
      });
      await store.revokeGrant(a.grant.grantId);
      assert.equal(await store.findAccessToken(a.tokens.accessHash), undefined);
      assert.ok(await store.findAccessToken(b.tokens.accessHash));
      const user = once(store.events, 'userRevoked');
      await store.revokeUser(40);
      assert.equal((await user)[0], 40);
      assert.equal(await store.findAccessToken(b.tokens.accessHash), undefined);
      assert.equal(await store.getCredential(40), undefined);
      assert.ok(await store.findAccessToken(other.tokens.accessHash), "another user's grant stays");
    });

    it('stores hashes only, and writes when a grant was last used', async () => {
      const { grant, tokens } = await grantWithTokens(store, { userId: 50 });
      assert.ok(await store.findAccessToken(tokens.accessHash));
      assert.ok((await store.flushUsage()) >= 1);
      const [row] = await db.raw('SELECT last_used_at FROM oauth_grant WHERE grant_id = $1', [grant.grantId]);
      assert.ok(Number(row?.['last_used_at']) >= Date.now() - 60_000);
      assert.equal(await store.flushUsage(), 0, 'nothing new to write');
      const hashes = (await db.raw('SELECT token_hash FROM oauth_token')).map((r) => String(r['token_hash']));
      assert.ok(hashes.every((h) => /^[0-9a-f]{64}$/.test(h)));
    });

    it('purges expired rows and registrations never used', async () => {
      const { tokens } = await grantWithTokens(store, { userId: 60 });
      await store.insertClient(client('unused'));
      await store.insertAuthRequest(authRequest(now + 5), now, WIDE);
      const far = now + 100 * 86_400_000;
      const n = await store.purgeExpired(far, now + 1);
      assert.ok(n >= 4, `purged ${n}`);
      assert.equal(await store.findAccessToken(tokens.accessHash), undefined);
      assert.equal(await store.getClient('unused'), undefined);
      assert.equal(await store.pendingAuthRequests(now), 0);
      assert.equal(await count(db, 'oauth_grant'), 0, 'grants with nothing left are gone');
    });
  });

  describe(`${backend.name} store: connected apps`, async () => {
    const db = await fresh();
    const store = await db.open({ secretKey: KEY });

    it("keeps the mode chosen on consent, and lists a user's grants newest first with what the page shows", async () => {
      const r = authRequest();
      await store.insertAuthRequest(r, now, WIDE);
      await store.approveAuthRequest(r.idHash, hashSecret('st-mode'), 'verifier', now + 600_000, now, 'read');
      assert.equal((await store.takeAuthRequestByState(hashSecret('st-mode'), now))?.mode, 'read');
      const plain = await grantWithCode(store, { userId: 90 });
      const grantId = newSecret();
      await store.createGrant(
        {
          ...plain.grant,
          grantId,
          createdAt: now + 1,
          mode: 'read',
          clientName: 'Cursor',
          redirectUri: 'cursor://x/cb',
        },
        { ...plain.code, codeHash: hashSecret(newSecret()), grantId },
      );
      assert.deepEqual(
        (await store.listGrants(90)).map((g) => [
          g.grantId,
          g.mode,
          g.clientName,
          g.redirectUri,
          g.lastUsedAt,
        ]),
        [
          [grantId, 'read', 'Cursor', 'cursor://x/cb', null],
          [plain.grant.grantId, 'write', '', '', null],
        ],
      );
      assert.deepEqual(await store.listGrants(91), []);
    });

    it('an account sign-in is taken once, and not after it expired; sessions expire', async () => {
      await store.insertAccountLogin('st1', 'b1', 'verifier-1', 1000);
      const [sealed] = await db.raw('SELECT verifier FROM account_login');
      assert.ok(!String(sealed?.['verifier']).includes('verifier-1'), 'the verifier is sealed');
      const takes = await Promise.all([
        store.takeAccountLogin('st1', 500),
        store.takeAccountLogin('st1', 500),
      ]);
      assert.deepEqual(takes.filter(Boolean), [{ browserHash: 'b1', verifier: 'verifier-1' }]);
      await store.insertAccountLogin('st2', 'b2', 'verifier-2', 1000);
      assert.equal(await store.takeAccountLogin('st2', 1000), undefined);
      const session = { idHash: 'sid', userId: 5, login: 'eve', csrfHash: 'c', expiresAt: 2000 };
      await store.insertAccountSession(session);
      assert.deepEqual(await store.getAccountSession('sid', 1999), session);
      assert.equal(await store.getAccountSession('sid', 2000), undefined);
      await store.purgeExpired(3000, 0);
      assert.equal(await count(db, 'account_session'), 0);
      await store.insertAccountSession({ ...session, idHash: 'sid2', expiresAt: 10_000 });
      await store.deleteAccountSession('sid2');
      assert.equal(await store.getAccountSession('sid2', 0), undefined);
    });
  });

  describe(`${backend.name} store: two processes on one database`, async () => {
    const db = await fresh();
    const a = await db.open({ secretKey: KEY });
    const b = await db.open({ secretKey: KEY });

    it("replays the other's revocations as events, never its own", async () => {
      const stopA = a.watchChanges(50);
      const stopB = b.watchChanges(50);
      after(() => {
        stopA();
        stopB();
      });
      const seenA: unknown[] = [];
      const seenB: unknown[] = [];
      for (const [s, seen] of [
        [a, seenA],
        [b, seenB],
      ] as const) {
        s.events.on('grantRevoked', (g) => seen.push(['grant', g.grantId]));
        s.events.on('userRevoked', (u) => seen.push(['user', u]));
        s.events.on('accessTokenRevoked', (t) => seen.push(['access', t.tokenHash]));
      }
      // The watchers learn where the log ends before the first change.
      await new Promise((r) => setTimeout(r, 300));
      const g = await grantWithTokens(a, { userId: 70 });
      const h = await grantWithTokens(a, { userId: 71 });
      await a.revokeToken(g.tokens.accessHash, 'c');
      await a.revokeGrant(g.grant.grantId);
      await waitFor(() => seenB.length >= 2, { what: "the other store's revocations" });
      await b.revokeUser(71);
      const expected = [
        ['access', g.tokens.accessHash],
        ['grant', g.grant.grantId],
      ];
      await waitFor(() => seenA.length >= 4, { what: 'the revocation of the user' });
      assert.deepEqual(seenB.slice(0, 2), expected);
      assert.deepEqual(
        seenB.slice(2),
        [
          ['grant', h.grant.grantId],
          ['user', 71],
        ],
        'own changes: told once, locally',
      );
      assert.deepEqual(seenA, [...expected, ['grant', h.grant.grantId], ['user', 71]]);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(seenA.length, 4, 'nothing replayed twice');
      assert.equal(seenB.length, 4);
    });

    it('records the children each broker runs and forgets them', async () => {
      await a.recordChild({ pid: 101, brokerPid: 1, login: 'ann', startedAt: now });
      await a.recordChild({ pid: 102, brokerPid: 1, login: 'bob', startedAt: now });
      await a.recordChild({ pid: 103, brokerPid: 2, login: 'cid', startedAt: now });
      await b.forgetChild(101);
      assert.equal(await count(db, 'live_child'), 2);
      assert.deepEqual(await b.childBrokerPids(), [1, 2]);
      await a.forgetChildrenOf(1);
      assert.deepEqual(await a.childBrokerPids(), [2]);
      assert.deepEqual(
        (await db.raw('SELECT pid FROM live_child')).map((r) => Number(r['pid'])),
        [103],
      );
    });
  });

  describe(`${backend.name} store: 2025 MCP sessions`, async () => {
    const db = await fresh();
    const a = await db.open({ secretKey: KEY });
    const b = await db.open({ secretKey: KEY });

    it('stores a session under its id hash only and reads it back on another process', async () => {
      const { grant, tokens } = await grantWithTokens(a, { userId: 80 });
      const id = newSecret();
      const s = mcpSession(grant, { idHash: hashSecret(id), tokenHash: tokens.accessHash });
      assert.equal(await a.insertMcpSession(s, 10), true);
      assert.deepEqual(await b.getMcpSession(s.idHash), s);
      const dump = JSON.stringify(await db.raw('SELECT * FROM mcp_session'));
      assert.ok(!dump.includes(id), 'the session id itself is never stored');
      assert.equal(await b.getMcpSession(hashSecret(newSecret())), undefined);
    });

    it('refuses a session of a grant that is gone', async () => {
      const { grant } = await grantWithTokens(a, { userId: 81 });
      await a.revokeGrant(grant.grantId);
      assert.equal(await a.insertMcpSession(mcpSession(grant), 10), false);
      assert.equal(await count(db, 'mcp_session WHERE user_id = 81'), 0);
    });

    it('holds the per-user cap across processes: the least recently seen go, announced everywhere', async () => {
      const { grant } = await grantWithTokens(a, { userId: 82 });
      const { grant: other } = await grantWithTokens(a, { userId: 83 });
      const ended: string[] = [];
      a.events.on('sessionEnded', (e) => ended.push(e.idHash));
      const s1 = mcpSession(grant, { lastSeenAt: now + 1 });
      const s2 = mcpSession(grant, { lastSeenAt: now + 2 });
      const s3 = mcpSession(grant, { lastSeenAt: now + 3 });
      const theirs = mcpSession(other);
      assert.ok(await a.insertMcpSession(theirs, 2));
      assert.ok(await a.insertMcpSession(s1, 2));
      assert.ok(await b.insertMcpSession(s2, 2));
      // s1 was seen later than s2 meanwhile: s2 is the least recently seen now.
      assert.deepEqual(await b.touchMcpSessions([{ idHash: s1.idHash, at: now + 5, tokenHash: null }]), []);
      assert.ok(await a.insertMcpSession(s3, 2));
      assert.deepEqual(ended, [s2.idHash]);
      assert.equal(await b.getMcpSession(s2.idHash), undefined);
      assert.ok(await b.getMcpSession(s1.idHash));
      assert.ok(await b.getMcpSession(theirs.idHash), "another user's sessions do not count");
      // Replicas opening sessions of one user at once never overshoot.
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? a : b).insertMcpSession(mcpSession(grant, { lastSeenAt: now + 10 + i }), 2),
        ),
      );
      assert.equal(await count(db, 'mcp_session WHERE user_id = 82'), 2);
    });

    it('keeps the newest sighting and its token, and names the sessions that are gone', async () => {
      const { grant, tokens } = await grantWithTokens(a, { userId: 84 });
      const s = mcpSession(grant, { tokenHash: tokens.accessHash });
      await a.insertMcpSession(s, 10);
      const gone = hashSecret(newSecret());
      assert.deepEqual(
        await b.touchMcpSessions([
          { idHash: s.idHash, at: now + 60_000, tokenHash: 'newer' },
          { idHash: gone, at: now + 60_000, tokenHash: null },
        ]),
        [gone],
      );
      // A late report of an older sighting changes nothing.
      await a.touchMcpSessions([{ idHash: s.idHash, at: now + 30_000, tokenHash: 'older' }]);
      const r = await a.getMcpSession(s.idHash);
      assert.equal(r?.lastSeenAt, now + 60_000);
      assert.equal(r?.tokenHash, 'newer');
    });

    it('ends a deleted session everywhere: here at once, on the other process through the change log', async () => {
      const { grant } = await grantWithTokens(a, { userId: 85 });
      const s = mcpSession(grant);
      await a.insertMcpSession(s, 10);
      const stop = b.watchChanges(50);
      after(stop);
      const onB: unknown[] = [];
      const onA: unknown[] = [];
      b.events.on('sessionEnded', (e) => onB.push(e));
      a.events.on('sessionEnded', (e) => onA.push(e));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await a.deleteMcpSession(s.idHash), true);
      assert.equal(await a.deleteMcpSession(s.idHash), false, 'deleted once');
      const ended = { idHash: s.idHash, grantId: grant.grantId, userId: 85 };
      assert.deepEqual(onA, [ended]);
      await waitFor(() => onB.length === 1, { what: 'the other process hears of the deletion' });
      assert.deepEqual(onB, [ended]);
      assert.equal(await b.getMcpSession(s.idHash), undefined);
    });

    it('goes with its grant, its user, and the access token it was last used with', async () => {
      const g1 = await grantWithTokens(a, { userId: 86 });
      const g2 = await grantWithTokens(a, { userId: 86 });
      const g3 = await grantWithTokens(a, { userId: 87 });
      const byGrant = mcpSession(g1.grant);
      const byToken = mcpSession(g2.grant, { tokenHash: g2.tokens.accessHash });
      const sameGrant = mcpSession(g2.grant, { tokenHash: 'another token' });
      const byUser = mcpSession(g3.grant);
      for (const s of [byGrant, byToken, sameGrant, byUser]) assert.ok(await a.insertMcpSession(s, 10));
      await b.revokeGrant(g1.grant.grantId);
      assert.equal(await a.getMcpSession(byGrant.idHash), undefined);
      assert.equal(await b.revokeToken(g2.tokens.accessHash, 'c'), 'access');
      assert.equal(await a.getMcpSession(byToken.idHash), undefined);
      assert.ok(await a.getMcpSession(sameGrant.idHash), "the grant's other sessions live on");
      await b.revokeUser(87);
      assert.equal(await a.getMcpSession(byUser.idHash), undefined);
    });

    it('prunes sessions idle past the limit', async () => {
      const { grant } = await grantWithTokens(a, { userId: 88 });
      const idle = mcpSession(grant, { lastSeenAt: now - 1 });
      const fresh = mcpSession(grant, { lastSeenAt: now });
      await a.insertMcpSession(idle, 10);
      await a.insertMcpSession(fresh, 10);
      assert.equal(await b.pruneMcpSessions(now), 1);
      assert.equal(await a.getMcpSession(idle.idHash), undefined);
      assert.ok(await a.getMcpSession(fresh.idHash));
    });
  });

  describe(`${backend.name} store: keys`, async () => {
    const db = await fresh();
    const oldKey = Buffer.alloc(32, 1);
    const newKey = Buffer.alloc(32, 2);

    it('refuses another key, and re-seals everything under a new one while the old still opens', async () => {
      const first = await db.open({ secretKey: oldKey });
      await first.putCredential({
        userId: 1,
        login: 'a',
        accessToken: 'ta',
        refreshToken: 'tr',
        expiresAt: now,
        updatedAt: now,
      });
      await first.putCredential({
        userId: 2,
        login: 'b',
        accessToken: 'tb',
        refreshToken: 'tr',
        expiresAt: now,
        updatedAt: now,
      });
      const r = authRequest();
      await first.insertAuthRequest(r, now, WIDE);
      await first.approveAuthRequest(r.idHash, hashSecret('st'), 'verifier', now + 600_000, now);
      await first.close();
      await assert.rejects(db.open({ secretKey: newKey }), /created with another BROKER_SECRET_KEY/);
      const rotating = await db.open({ secretKey: newKey, previousKeys: [oldKey] });
      assert.equal(rotating.keyRotationPending, true);
      const before = await rotating.sealedKeyCounts();
      assert.equal(
        Object.values(before.counts).reduce((x, y) => x + y, 0),
        5,
        'two tokens per user, one verifier',
      );
      assert.equal(before.counts[before.current], undefined);
      assert.equal(await rotating.resealBatch(2), 2, 'batches are bounded (rows: a credential, a request)');
      assert.equal(await rotating.resealBatch(100), 1);
      assert.equal(await rotating.resealBatch(100), 0);
      assert.equal(rotating.keyRotationPending, false);
      assert.deepEqual((await rotating.sealedKeyCounts()).counts, { [before.current]: 5 });
      await rotating.close();
      const only = await db.open({ secretKey: newKey });
      assert.equal((await only.getCredential(1))?.accessToken, 'ta');
      assert.equal((await only.getAuthRequest(r.idHash))?.upstreamVerifier, 'verifier');
    });

    it('health() answers while open and rejects once closed', async () => {
      const s = await db.open({ secretKey: newKey });
      await s.health();
      await s.close();
      await assert.rejects(s.health(), /closed/);
    });
  });
}
