// RFC 7592: a dynamically registered client reads, updates and deletes its own registration at
// `registration_client_uri` with its registration access token, and with nothing else.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashSecret } from '../../src/store/secrets.ts';
import { rawInitialize } from '../support/mcp-oauth-client.ts';
import { dumpTables, registerClient } from '../support/oauth-harness.ts';
import { authorizeUrl, fullFlow, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';

const CLAUDE_CB = 'https://claude.ai/api/mcp/auth_callback';

type Registered = {
  client_id: string;
  client_secret?: string;
  registration_client_uri: string;
  registration_access_token: string;
} & Record<string, unknown>;

let s: Stack;
before(async () => {
  s = await startStack();
});
after(() => s.closeAll());

async function registerClaude(extra: Record<string, unknown> = {}): Promise<Registered> {
  return (await registerClient(s.url, {
    client_name: 'Claude',
    redirect_uris: [CLAUDE_CB],
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token'],
    ...extra,
  })) as Registered;
}

function manage(uri: string, method: string, token: string | undefined, body?: unknown, headers = {}) {
  return fetch(uri, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The update body a client builds from what it was given: its metadata without the server's fields. */
function updateBody(c: Registered, changes: Record<string, unknown>): Record<string, unknown> {
  const {
    registration_access_token: _t,
    registration_client_uri: _u,
    client_secret_expires_at: _e,
    client_id_issued_at: _i,
    client_secret: _s,
    ...rest
  } = c;
  return { ...rest, ...changes };
}

async function assertInvalidToken(res: Response, withErrorCode: boolean): Promise<void> {
  assert.equal(res.status, 401);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body['error'], 'invalid_token');
  const challenge = res.headers.get('www-authenticate') ?? '';
  if (withErrorCode) assert.match(challenge, /^Bearer error="invalid_token", error_description="[^"]+"$/);
  else assert.equal(challenge, 'Bearer', 'RFC 6750 §3.1: no error code without credentials');
}

describe('RFC 7592 client configuration endpoint', () => {
  it('registration answers with registration_client_uri and a registration access token stored only hashed', async () => {
    const c = await registerClaude();
    assert.equal(c.registration_client_uri, `${s.url}/oauth/register/${c.client_id}`);
    assert.match(c.registration_access_token, /^mcprat_[A-Za-z0-9_-]{43}$/);
    const row = s.broker.store.db
      .prepare('SELECT registration_token_hash FROM oauth_client WHERE client_id = ?')
      .get(c.client_id);
    assert.equal(row?.['registration_token_hash'], hashSecret(c.registration_access_token));
    const everything = JSON.stringify(dumpTables(s.broker));
    assert.ok(!everything.includes(c.registration_access_token));
    assert.ok(!everything.includes(c.registration_client_uri), 'the URI is derived, not stored');
    const publicClient = (await registerClient(s.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    })) as Registered;
    assert.match(publicClient.registration_access_token, /^mcprat_/);
    assert.notEqual(publicClient.registration_access_token, c.registration_access_token);
  });

  it('GET returns the current metadata and the token, without the secret; CORS as on /oauth/register', async () => {
    const c = await registerClaude({ scope: 'claudeai' });
    const res = await manage(c.registration_client_uri, 'GET', c.registration_access_token, undefined, {
      origin: 'https://claude.ai',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const info = (await res.json()) as Record<string, unknown>;
    const { client_secret: _secret, ...withoutSecret } = c;
    assert.deepEqual(info, withoutSecret);

    const preflight = await fetch(c.registration_client_uri, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://inspector.example',
        'access-control-request-method': 'DELETE',
        'access-control-request-headers': 'authorization',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-methods'), 'GET, PUT, DELETE, OPTIONS');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const register = await fetch(`${s.url}/oauth/register`, { method: 'OPTIONS' });
    assert.equal(register.headers.get('access-control-allow-methods'), 'POST, OPTIONS');
  });

  it('refuses a missing, wrong or foreign token alike with 401 invalid_token, and another client’s URI stays closed', async () => {
    const a = await registerClaude();
    const b = await registerClaude();
    await assertInvalidToken(await manage(a.registration_client_uri, 'GET', undefined), false);
    await assertInvalidToken(
      await fetch(a.registration_client_uri, {
        headers: {
          authorization: `Basic ${Buffer.from(`${a.client_id}:${a.client_secret}`).toString('base64')}`,
        },
      }),
      false,
    );
    await assertInvalidToken(
      await manage(a.registration_client_uri, 'GET', `${a.registration_access_token}x`),
      true,
    );
    await assertInvalidToken(await manage(a.registration_client_uri, 'GET', a.client_secret), true);
    // b's token on a's URI: refused for every method, and a is untouched.
    await assertInvalidToken(
      await manage(a.registration_client_uri, 'GET', b.registration_access_token),
      true,
    );
    await assertInvalidToken(
      await manage(
        a.registration_client_uri,
        'PUT',
        b.registration_access_token,
        updateBody(a, { client_name: 'x' }),
      ),
      true,
    );
    await assertInvalidToken(
      await manage(a.registration_client_uri, 'DELETE', b.registration_access_token),
      true,
    );
    assert.equal((await s.broker.store.getClient(a.client_id))?.name, 'Claude');
    // An unknown client id answers exactly as a wrong token does: nothing tells which ids exist.
    const unknown = await manage(
      `${s.url}/oauth/register/${crypto.randomUUID()}`,
      'GET',
      b.registration_access_token,
    );
    const wrong = await manage(a.registration_client_uri, 'GET', b.registration_access_token);
    assert.equal(unknown.status, 401);
    assert.deepEqual(await unknown.json(), await wrong.json());
    assert.equal(unknown.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'));
    // Each token still opens its own URI.
    assert.equal((await manage(a.registration_client_uri, 'GET', a.registration_access_token)).status, 200);
    assert.equal((await manage(b.registration_client_uri, 'GET', b.registration_access_token)).status, 200);
  });

  it('PUT replaces name and redirect URIs with registration’s validation; the new URI is the one authorize accepts', async () => {
    const c = await registerClaude();
    const newCb = 'https://claude.com/api/mcp/auth_callback';
    const res = await manage(
      c.registration_client_uri,
      'PUT',
      c.registration_access_token,
      updateBody(c, {
        client_name: 'Claude (renamed)',
        redirect_uris: [newCb],
        client_secret: c.client_secret,
      }),
    );
    assert.equal(res.status, 200, await res.clone().text());
    const info = (await res.json()) as Record<string, unknown>;
    assert.equal(info['client_name'], 'Claude (renamed)');
    assert.deepEqual(info['redirect_uris'], [newCb]);
    assert.equal(info['client_id_issued_at'], c['client_id_issued_at'], 'kept from the registration');
    assert.equal(info['client_secret_expires_at'], 0);
    assert.equal(info['token_endpoint_auth_method'], 'client_secret_post');
    assert.equal(info['registration_access_token'], c.registration_access_token);
    assert.equal(info['client_secret'], undefined, 'the secret is never shown again');
    const read = (await (
      await manage(c.registration_client_uri, 'GET', c.registration_access_token)
    ).json()) as {
      client_name: string;
    };
    assert.equal(read.client_name, 'Claude (renamed)');

    const { challenge } = { challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' };
    const authorize = (redirectUri: string) =>
      fetch(authorizeUrl(s.url, { clientId: c.client_id, redirectUri, challenge }), { redirect: 'manual' });
    assert.equal((await authorize(newCb)).status, 200, 'consent page for the new redirect URI');
    const old = await authorize(CLAUDE_CB);
    assert.equal(old.status, 400);
    assert.match(await old.text(), /redirect_uri is not registered for this client/);

    // Replace, not augment: an omitted name falls back to the default; the auth method stays.
    const {
      client_name: _n,
      token_endpoint_auth_method: _m,
      ...bare
    } = updateBody(c, { redirect_uris: [newCb] });
    const replaced = await manage(c.registration_client_uri, 'PUT', c.registration_access_token, bare);
    assert.equal(replaced.status, 200);
    const r = (await replaced.json()) as Record<string, unknown>;
    assert.equal(r['client_name'], 'Unnamed MCP client');
    assert.equal(r['token_endpoint_auth_method'], 'client_secret_post');
    // The secret still authenticates at the token endpoint (an unknown code, not an unknown client).
    const tok = await tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code: 'mcpac_nope',
      redirect_uri: newCb,
      code_verifier: 'a'.repeat(43),
      client_id: c.client_id,
      client_secret: c.client_secret as string,
    });
    assert.equal(tok.body['error'], 'invalid_grant');
  });

  it('PUT refuses what the RFC forbids and invalid metadata, in the registration error shape, changing nothing', async () => {
    const c = await registerClaude();
    const before = JSON.stringify(dumpTables(s.broker).oauth_client);
    const cases: [string, unknown, string, RegExp][] = [
      [
        'bad redirect URI',
        updateBody(c, { redirect_uris: ['http://evil.example/cb'] }),
        'invalid_redirect_uri',
        /./,
      ],
      ['no redirect URI', updateBody(c, { redirect_uris: [] }), 'invalid_redirect_uri', /1 to 20/],
      ['no client_id', { ...updateBody(c, {}), client_id: undefined }, 'invalid_request', /client_id/],
      [
        'another client_id',
        updateBody(c, { client_id: crypto.randomUUID() }),
        'invalid_request',
        /client_id/,
      ],
      [
        'server fields',
        updateBody(c, { registration_access_token: c.registration_access_token, client_id_issued_at: 1 }),
        'invalid_request',
        /registration_access_token, client_id_issued_at/,
      ],
      ['wrong secret', updateBody(c, { client_secret: 'mcpcs_guess' }), 'invalid_request', /client_secret/],
      [
        'another auth method',
        updateBody(c, { token_endpoint_auth_method: 'none' }),
        'invalid_client_metadata',
        /cannot change/,
      ],
      [
        'bad grant type',
        updateBody(c, { grant_types: ['implicit'] }),
        'invalid_client_metadata',
        /grant_types/,
      ],
      ['bad name', updateBody(c, { client_name: 'a\u0007b' }), 'invalid_client_metadata', /client_name/],
      ['an array', [], 'invalid_client_metadata', /JSON object/],
    ];
    for (const [label, body, error, description] of cases) {
      const res = await manage(c.registration_client_uri, 'PUT', c.registration_access_token, body);
      assert.equal(res.status, 400, label);
      assert.equal(res.headers.get('cache-control'), 'no-store', label);
      const got = (await res.json()) as { error: string; error_description: string };
      assert.equal(got.error, error, `${label}: ${got.error_description}`);
      assert.match(got.error_description, description, label);
    }
    const form = await fetch(c.registration_client_uri, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${c.registration_access_token}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: `client_id=${c.client_id}&redirect_uris=${CLAUDE_CB}`,
    });
    assert.equal(form.status, 400);
    assert.equal(((await form.json()) as { error: string }).error, 'invalid_request');
    const badJson = await fetch(c.registration_client_uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${c.registration_access_token}`, 'content-type': 'application/json' },
      body: '{"client_id":',
    });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { error: string }).error, 'invalid_client_metadata');
    assert.equal(
      JSON.stringify(dumpTables(s.broker).oauth_client),
      before,
      'no refused update changed a row',
    );
  });

  it('DELETE removes the client and revokes its grants: sessions close, tokens die, the registration is gone', async () => {
    const c = await registerClaude();
    const { tokens } = await fullFlow(s.url, {
      clientId: c.client_id,
      redirectUri: CLAUDE_CB,
      clientSecret: c.client_secret,
    });
    const init = await rawInitialize(`${s.url}/mcp`, tokens.access_token);
    assert.equal(init.status, 200);
    await init.body?.cancel();
    const p = await s.broker.auth.verifyBearer(`Bearer ${tokens.access_token}`);
    assert.ok(p.ok);
    assert.equal(s.broker.gateway.sessions.ofGrant(p.principal.grantId).length, 1);
    // Another client of the same user keeps its grant.
    const other = await registerClaude();
    const otherFlow = await fullFlow(s.url, {
      clientId: other.client_id,
      redirectUri: CLAUDE_CB,
      clientSecret: other.client_secret,
    });

    const revoked: string[] = [];
    const onRevoked = (g: { grantId: string }) => revoked.push(g.grantId);
    s.broker.store.events.on('grantRevoked', onRevoked);
    const res = await manage(c.registration_client_uri, 'DELETE', c.registration_access_token);
    s.broker.store.events.off('grantRevoked', onRevoked);
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.deepEqual(revoked, [p.principal.grantId]);
    assert.equal(s.broker.gateway.sessions.ofGrant(p.principal.grantId).length, 0, 'its session closed');

    assert.equal(await s.broker.store.getClient(c.client_id), undefined);
    const rows = dumpTables(s.broker);
    assert.ok(!JSON.stringify(rows).includes(c.client_id), 'no row names the deleted client');
    const mcp = await rawInitialize(`${s.url}/mcp`, tokens.access_token);
    assert.equal(mcp.status, 401);
    await mcp.body?.cancel();
    const refresh = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: c.client_id,
      client_secret: c.client_secret as string,
    });
    assert.equal(refresh.status, 401);
    assert.equal(refresh.body['error'], 'invalid_client', 'Claude.ai registers anew on this');
    await assertInvalidToken(
      await manage(c.registration_client_uri, 'GET', c.registration_access_token),
      true,
    );
    await assertInvalidToken(
      await manage(c.registration_client_uri, 'DELETE', c.registration_access_token),
      true,
    );

    const still = await s.broker.auth.verifyBearer(`Bearer ${otherFlow.tokens.access_token}`);
    assert.ok(still.ok, 'the other client’s grant is untouched');
    const log = s.logs.text();
    assert.ok(log.includes('client deleted itself'));
    assert.ok(!log.includes(c.registration_access_token) && !log.includes(other.registration_access_token));
  });

  it('DELETE also drops the client’s sign-ins in progress', async () => {
    const c = await registerClaude();
    const consent = await fetch(
      authorizeUrl(s.url, {
        clientId: c.client_id,
        redirectUri: CLAUDE_CB,
        challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      }),
    );
    assert.equal(consent.status, 200);
    const pending = () =>
      s.broker.store.db
        .prepare('SELECT COUNT(*) AS n FROM auth_request WHERE client_id = ?')
        .get(c.client_id)?.['n'];
    assert.equal(pending(), 1);
    assert.equal(
      (await manage(c.registration_client_uri, 'DELETE', c.registration_access_token)).status,
      204,
    );
    assert.equal(pending(), 0);
  });

  it('clients registered before the migration (no token hash) and metadata-document clients cannot be managed', async () => {
    const c = await registerClaude();
    s.broker.store.db
      .prepare('UPDATE oauth_client SET registration_token_hash = NULL WHERE client_id = ?')
      .run(c.client_id);
    await assertInvalidToken(
      await manage(c.registration_client_uri, 'GET', c.registration_access_token),
      true,
    );
    const cimd = await manage(
      `${s.url}/oauth/register/${encodeURIComponent('https://claude.ai/oauth/mcp-oauth-client-metadata')}`,
      'GET',
      c.registration_access_token,
    );
    assert.equal(cimd.status, 401);
  });
});
