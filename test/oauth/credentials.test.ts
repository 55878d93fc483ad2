// The per-user Forgejo credential: shared by all of a user's grants, refreshed single-flight,
// and its death at Forgejo revoking the user's broker grants.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UpstreamGrantError } from '../../src/forgejo/client.ts';
import { CredentialManager, CredentialRevokedError } from '../../src/forgejo/credentials.ts';
import { captureLogger } from '../support/log-capture.ts';
import { FORGEJO_CLIENT_ID, registerClient } from '../support/oauth-harness.ts';
import { fullFlow, type Stack, startStack } from '../support/oauth-stack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function forgejoApi(s: Stack, token: string): Promise<number> {
  const res = await fetch(`${s.emulator.url}/api/v1/user`, { headers: { authorization: `token ${token}` } });
  await res.body?.cancel();
  return res.status;
}

const refreshCalls = (s: Stack) =>
  s.emulator.requests.filter((r) => r.method === 'POST' && r.path === '/login/oauth/access_token').length;

describe('Forgejo credentials (emulator tokens live 2 s)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      emulator: { accessTokenTtlSeconds: 2 },
      env: { FORGEJO_REFRESH_MARGIN: '500ms' },
    });
  });
  after(() => s.closeAll());

  it('two MCP clients of the same user keep working after the Forgejo token expired and was refreshed', async () => {
    const changed: number[] = [];
    s.broker.auth.credentials.events.on('tokenChanged', (u) => changed.push(u));
    const c1 = await registerClient(s.url, {
      redirect_uris: ['https://one.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const c2 = await registerClient(s.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
    const a = await fullFlow(s.url, {
      clientId: c1.client_id,
      redirectUri: 'https://one.example/cb',
      clientSecret: c1.client_secret,
    });
    // The second login of the same user (new browser) rotates Forgejo's grant; the stored credential is the newest.
    const b = await fullFlow(s.url, { clientId: c2.client_id, redirectUri: 'http://127.0.0.1:41234/cb' });
    assert.deepEqual(changed, [1001, 1001]);
    const p1 = await s.broker.auth.verifyBearer(`Bearer ${a.tokens.access_token}`);
    const p2 = await s.broker.auth.verifyBearer(`Bearer ${b.tokens.access_token}`);
    assert.ok(p1.ok && p2.ok);
    assert.equal(p1.principal.userId, p2.principal.userId);
    assert.equal(s.broker.store.db.prepare('SELECT COUNT(*) AS n FROM forgejo_credential').get()?.['n'], 1);

    const before = await s.broker.auth.credentials.accessToken(1001);
    assert.equal(await forgejoApi(s, before.token), 200);
    await sleep(2100);
    assert.equal(await forgejoApi(s, before.token), 401, 'the Forgejo token expired');

    const calls = refreshCalls(s);
    const [x, y] = await Promise.all([
      s.broker.auth.credentials.accessToken(p1.principal.userId),
      s.broker.auth.credentials.accessToken(p2.principal.userId),
    ]);
    assert.equal(refreshCalls(s) - calls, 1, 'one refresh for both');
    assert.equal(x.token, y.token);
    assert.notEqual(x.token, before.token);
    assert.equal(await forgejoApi(s, x.token), 200);
    assert.deepEqual(changed, [1001, 1001, 1001]);
    const refreshed = s.logs.lines().filter((l) => l['msg'] === 'Forgejo token refreshed');
    assert.deepEqual(
      refreshed.map((l) => [l['userId'], l['login']]),
      [[1001, 'alice']],
    );
    for (const t of [a.tokens.access_token, b.tokens.access_token]) {
      assert.ok((await s.broker.auth.verifyBearer(`Bearer ${t}`)).ok, 'both clients keep working');
    }
    // And again after another expiry: the stored refresh token is the live one.
    await sleep(2100);
    const z = await s.broker.auth.credentials.accessToken(1001, { minValidityMs: 1000 });
    assert.equal(await forgejoApi(s, z.token), 200);
  });

  it('many concurrent callers share one refresh', async () => {
    const calls = refreshCalls(s);
    const all = await Promise.all(
      Array.from({ length: 8 }, () => s.broker.auth.credentials.accessToken(1001, { forceRefresh: true })),
    );
    assert.equal(refreshCalls(s) - calls, 1);
    assert.equal(new Set(all.map((t) => t.token)).size, 1);
  });

  it('Forgejo refusing the refresh (the user revoked the app) revokes all of that user’s grants', async () => {
    const c = await registerClient(s.url, {
      redirect_uris: ['https://three.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const t = await fullFlow(s.url, {
      clientId: c.client_id,
      redirectUri: 'https://three.example/cb',
      clientSecret: c.client_secret,
    });
    const grants = s.broker.store.db
      .prepare('SELECT grant_id FROM oauth_grant WHERE user_id = 1001')
      .all().length;
    assert.ok(grants >= 2);
    const revokedGrants: string[] = [];
    const revokedUsers: number[] = [];
    s.broker.auth.credentials.events.on('grantRevoked', (g) => revokedGrants.push(g.grantId));
    s.broker.auth.credentials.events.on('userRevoked', (u) => revokedUsers.push(u));
    s.emulator.revokeGrant('alice', FORGEJO_CLIENT_ID);
    await assert.rejects(
      s.broker.auth.credentials.accessToken(1001, { forceRefresh: true }),
      CredentialRevokedError,
    );
    assert.deepEqual(revokedUsers, [1001]);
    assert.equal(revokedGrants.length, grants);
    assert.equal((await s.broker.auth.verifyBearer(`Bearer ${t.tokens.access_token}`)).ok, false);
    assert.equal(await s.broker.store.getCredential(1001), undefined);
    await assert.rejects(s.broker.auth.credentials.accessToken(1001), CredentialRevokedError);
  });
});

describe('CredentialManager with a failing network', () => {
  it('a transient refresh failure is passed on and revokes nothing', async () => {
    const s = await startStack();
    try {
      const c = await registerClient(s.url, {
        redirect_uris: ['https://x.example/cb'],
        token_endpoint_auth_method: 'client_secret_post',
      });
      const t = await fullFlow(s.url, {
        clientId: c.client_id,
        redirectUri: 'https://x.example/cb',
        clientSecret: c.client_secret,
      });
      const m = new CredentialManager({
        store: s.broker.store,
        forgejo: {
          refresh: async () => Promise.reject(new Error('connect ECONNREFUSED')),
          accessTokenRejected: async () => false,
        },
        log: s.logs.log,
        refreshMarginMs: 0,
      });
      await assert.rejects(m.accessToken(1001, { forceRefresh: true }), /ECONNREFUSED/);
      assert.ok(await s.broker.store.getCredential(1001));
      assert.ok((await s.broker.auth.verifyBearer(`Bearer ${t.tokens.access_token}`)).ok);
    } finally {
      await s.closeAll();
    }
  });
});

describe('CredentialManager when the credential moved on during its refresh', () => {
  it('Forgejo refusing a refresh token the store no longer holds: the stored credential is used, nothing revoked, and the log says so', async () => {
    const s = await startStack();
    try {
      const c = await registerClient(s.url, {
        redirect_uris: ['https://y.example/cb'],
        token_endpoint_auth_method: 'client_secret_post',
      });
      const t = await fullFlow(s.url, {
        clientId: c.client_id,
        redirectUri: 'https://y.example/cb',
        clientSecret: c.client_secret,
      });
      const before = await s.broker.store.getCredential(1001);
      assert.ok(before);
      const logs = captureLogger('info');
      const m = new CredentialManager({
        store: s.broker.store,
        forgejo: {
          // Another process stores a newer credential, then Forgejo refuses the one this refresh sent.
          refresh: async () => {
            await s.broker.store.putCredential({
              ...before,
              accessToken: 'newer-access',
              refreshToken: 'newer-refresh',
              expiresAt: Date.now() + 3_600_000,
              updatedAt: Date.now(),
            });
            throw new UpstreamGrantError('Forgejo refused the refresh token');
          },
          accessTokenRejected: async () => false,
        },
        log: logs.log,
        refreshMarginMs: 0,
      });
      assert.equal((await m.accessToken(1001, { forceRefresh: true })).token, 'newer-access');
      assert.ok((await s.broker.auth.verifyBearer(`Bearer ${t.tokens.access_token}`)).ok, 'nothing revoked');
      const line = logs.lines().find((l) => String(l['msg']).startsWith('Forgejo refused a refresh token'));
      assert.ok(line, logs.text());
      assert.equal(line['login'], 'alice');
      assert.equal(line['reason'], 'Forgejo refused the refresh token');
      assert.doesNotMatch(logs.text(), /newer-(access|refresh)/, 'no token in the log');
    } finally {
      await s.closeAll();
    }
  });
});
