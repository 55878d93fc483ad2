// What strangers can make the authorization server store, through its real endpoints: pending
// sign-ins (a flood from a few dozen sources cannot lock another user out), registrations (tight
// size limits, stored once, a global budget, abandoned ones collected).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PENDING_LIMITS } from '../../src/oauth/authorize.ts';
import { REGISTRATION_LIMITS } from '../../src/oauth/register.ts';
import { pkce, registerClient } from '../support/oauth-harness.ts';
import { authorizeUrl, browserFlow, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';
import { UserAgent } from '../support/user-agent.ts';

const REDIRECT = 'http://127.0.0.1/cb';
const MAX_UNUSED = 40;

describe('pending sign-ins under a flood', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      env: { BROKER_TRUSTED_PROXIES: '127.0.0.1', BROKER_RATE_LIMIT: '100000' },
    });
  });
  after(() => stack.closeAll());

  it('a source flooding authorize sheds its own oldest sign-ins; a user signing in meanwhile is not affected', async () => {
    const clients = await Promise.all(
      [1, 2, 3].map(() =>
        registerClient(stack.url, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
      ),
    );
    const [victim, ...attackers] = clients as [(typeof clients)[0], ...typeof clients];
    // The user opens the consent page first, then the flood comes, then the user approves.
    const ua = new UserAgent();
    const { challenge, verifier } = pkce();
    const flood = PENDING_LIMITS.perSource + 20;
    const sources = ['203.0.113.1', '203.0.113.2', '2001:db8:5:6::1'];
    let refused = 0;
    const firstPages: string[] = [];
    for (const [i, source] of sources.entries()) {
      for (let n = 0; n < flood; n++) {
        // IPv6 sources count per /64: the attacker's addresses in one /64 are one source.
        const xff = source.includes(':') ? source.replace(/::1$/, `::${n + 1}`) : source;
        const attacker = attackers[n % attackers.length] as (typeof clients)[0];
        const url = authorizeUrl(stack.url, {
          clientId: attacker.client_id,
          redirectUri: REDIRECT,
          challenge,
        });
        const r = await fetch(url, { headers: { 'x-forwarded-for': xff } });
        if (r.status !== 200) refused++;
        const page = await r.text();
        if (n === 0 && i === 0) firstPages.push(page);
      }
    }
    const bySource = stack.broker.store.db
      .prepare('SELECT source, COUNT(*) AS n FROM auth_request GROUP BY source ORDER BY source')
      .all() as { source: string; n: number }[];
    assert.equal(refused, 0, 'a flooding source recycles its own entries instead of being refused');
    assert.deepEqual(
      bySource.map((r) => [r.source, r.n]),
      [
        ['2001:db8:5:6::/64', PENDING_LIMITS.perSource],
        ['203.0.113.1', PENDING_LIMITS.perSource],
        ['203.0.113.2', PENDING_LIMITS.perSource],
      ],
    );
    // The first flooded sign-in was shed: its consent form no longer works.
    const requestHandle = /name="request" value="([^"]+)"/.exec(firstPages[0] ?? '')?.[1];
    assert.ok(requestHandle);
    const stale = await fetch(`${stack.url}/oauth/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '203.0.113.1' },
      body: new URLSearchParams({
        request: requestHandle,
        csrf: 'x'.repeat(43),
        decision: 'approve',
      }).toString(),
    });
    assert.equal(stale.status, 400);
    assert.match(await stale.text(), /expired or was already answered/);

    const { params } = await browserFlow(stack.url, {
      clientId: victim.client_id,
      redirectUri: REDIRECT,
      ua,
      challenge,
    });
    const code = params.get('code');
    assert.ok(code, String(params));
    const tokens = await tokenRequest(stack.url, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: victim.client_id,
    });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  });

  it('refuses a state longer than 1024 characters, so pending entries stay small', async () => {
    const c = await registerClient(stack.url, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
    });
    const base = { clientId: c.client_id, redirectUri: REDIRECT, challenge: pkce().challenge };
    const ok = await fetch(authorizeUrl(stack.url, { ...base, state: 's'.repeat(1024) }));
    assert.equal(ok.status, 200);
    const long = await fetch(authorizeUrl(stack.url, { ...base, state: 's'.repeat(1025) }));
    assert.equal(long.status, 400);
    assert.match(await long.text(), /state is longer than 1024/);
  });
});

describe('registration limits and budget', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      env: { BROKER_MAX_UNUSED_CLIENTS: String(MAX_UNUSED), BROKER_RATE_LIMIT: '100000' },
    });
  });
  after(() => stack.closeAll());

  const register = (metadata: Record<string, unknown>) =>
    fetch(`${stack.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });

  it('refuses long redirect URIs, too many of them, and oversized metadata', async () => {
    const long = await register({
      redirect_uris: [`https://a.example/${'x'.repeat(REGISTRATION_LIMITS.redirectUriLength)}`],
    });
    assert.equal(long.status, 400);
    assert.equal(((await long.json()) as { error: string }).error, 'invalid_redirect_uri');
    const many = await register({
      redirect_uris: Array.from(
        { length: REGISTRATION_LIMITS.redirectUris + 1 },
        (_, i) => `https://a.example/${i}`,
      ),
    });
    assert.equal(many.status, 400);
    const big = await register({
      redirect_uris: Array.from({ length: 10 }, (_, i) => `https://a.example/${i}/${'y'.repeat(450)}`),
    });
    assert.equal(big.status, 400);
    assert.equal(((await big.json()) as { error: string }).error, 'invalid_client_metadata');
    // The review's registrations (20 URIs of ~2,000 characters) are past the endpoint's body limit.
    const review = await register({
      redirect_uris: Array.from({ length: 20 }, (_, i) => `https://a.example/${i}/${'z'.repeat(1990)}`),
    });
    assert.equal(review.status, 413);
  });

  it('stores redirect URIs and the name once, and answers the same metadata as before', async () => {
    const uris = ['https://app.example/cb', 'http://127.0.0.1/cb'];
    const res = await register({
      client_name: 'Once',
      redirect_uris: uris,
      token_endpoint_auth_method: 'none',
    });
    assert.equal(res.status, 201);
    const info = (await res.json()) as Record<string, unknown>;
    const row = stack.broker.store.db
      .prepare('SELECT metadata FROM oauth_client WHERE client_id = ?')
      .get(info['client_id'] as string) as { metadata: string };
    assert.equal(row.metadata.includes('app.example'), false, row.metadata);
    assert.equal(row.metadata.includes('Once'), false, row.metadata);
    const client = await stack.broker.store.getClient(info['client_id'] as string);
    assert.deepEqual(client?.metadata['redirect_uris'], uris);
    assert.equal(client?.metadata['client_name'], 'Once');
    assert.equal(client?.metadata['client_id'], info['client_id']);
    assert.equal(client?.metadata['token_endpoint_auth_method'], 'none');
  });

  it('accepts registrations up to the budget of unused ones, then 503 until old ones make room', async () => {
    const store = stack.broker.store;
    const unused = () =>
      (
        store.db.prepare('SELECT COUNT(*) AS n FROM oauth_client WHERE used_at IS NULL').get() as {
          n: number;
        }
      ).n;
    const dbSize = () => {
      store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      return statSync(stack.dbPath).size;
    };
    const dbBefore = dbSize();
    let accepted = unused();
    const biggest = {
      client_name: 'n'.repeat(200),
      token_endpoint_auth_method: 'none',
      redirect_uris: Array.from({ length: 7 }, (_, i) => `https://a.example/${i}/${'q'.repeat(450)}`),
    };
    let refusedAt = -1;
    for (let i = 0; i < MAX_UNUSED + 10; i++) {
      const res = await register(biggest);
      if (res.status === 201) accepted++;
      else {
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('retry-after'), '60');
        assert.equal(((await res.json()) as { error: string }).error, 'temporarily_unavailable');
        refusedAt = i;
        break;
      }
    }
    const dbAfter = dbSize();
    const row = store.db
      .prepare('SELECT MAX(length(metadata) + length(redirect_uris) + length(name)) AS n FROM oauth_client')
      .get() as { n: number };
    process.stdout.write(
      `# registration budget ${MAX_UNUSED}: ${accepted} unused registrations accepted, then 503; database ${dbBefore} → ${dbAfter} bytes; largest client row ${row.n} bytes of metadata\n`,
    );
    assert.equal(accepted, MAX_UNUSED);
    assert.ok(refusedAt >= 0, 'the budget refused');
    // Abandoned registrations (older than a sign-in can take) make room for new ones.
    store.db.prepare('UPDATE oauth_client SET created_at = created_at - 3600000 WHERE used_at IS NULL').run();
    const after = await register(biggest);
    assert.equal(after.status, 201);
    assert.equal(unused(), MAX_UNUSED);
  });

  it('collects registrations that never completed a sign-in once BROKER_UNUSED_CLIENT_TTL (1 h) passed', async () => {
    const store = stack.broker.store;
    const c = await registerClient(stack.url, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
    });
    assert.ok(await store.getClient(c.client_id));
    await stack.broker.auth.purge(Date.now() + 59 * 60_000);
    assert.ok(await store.getClient(c.client_id), 'kept within the hour');
    await stack.broker.auth.purge(Date.now() + 61 * 60_000);
    assert.equal(await store.getClient(c.client_id), undefined);
  });
});
