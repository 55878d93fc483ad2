// The seed walk-through and the token endpoint's rules, against the Forgejo emulator.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dumpTables, FORGEJO_CLIENT_SECRET, form, pkce, registerClient } from '../support/oauth-harness.ts';
import { browserFlow, fullFlow, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';
import { decodeEntities, UserAgent } from '../support/user-agent.ts';

const CB = 'https://app.example/cb';

describe('seed walk-through', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.closeAll());

  it('register → authorize → consent → Forgejo login → callback → code → token → refresh → revoke → the revoked token fails', async () => {
    const client = await registerClient(s.url, {
      client_name: 'Walk-through <script>',
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const { params, verifier, consent } = await browserFlow(s.url, {
      clientId: client.client_id,
      redirectUri: CB,
    });
    assert.match(consent.body, /Walk-through &#60;script&#62;/, 'client name is escaped');
    assert.ok(!consent.body.includes('<script>'));
    assert.equal(params.get('state'), 'client-state-1');
    assert.equal(params.get('iss'), s.url);
    const code = params.get('code') as string;
    assert.match(code, /^mcpac_/);
    // An admin reading the log sees who signed in, not only a number.
    const granted = s.logs
      .lines()
      .filter((l) => l['msg'] === 'authorization granted')
      .at(-1);
    assert.equal(granted?.['login'], 'alice');
    assert.equal(typeof granted?.['userId'], 'number');

    const tokenRes = await tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: CB,
      code_verifier: verifier,
      client_id: client.client_id,
      client_secret: client.client_secret as string,
    });
    assert.equal(tokenRes.status, 200);
    assert.equal(tokenRes.headers.get('cache-control'), 'no-store');
    const t = tokenRes.body as {
      access_token: string;
      refresh_token: string;
      expires_in: number;
      scope: string;
    };
    assert.equal(tokenRes.body['token_type'], 'Bearer');
    assert.equal(t.expires_in, 8 * 3600);
    assert.equal(t.scope, 'mcp');

    const ok = await s.broker.auth.verifyBearer(`Bearer ${t.access_token}`);
    assert.ok(ok.ok);
    assert.equal(ok.principal.userId, 1001);
    assert.equal(ok.principal.login, 'alice');
    assert.equal(ok.principal.clientId, client.client_id);
    assert.equal(ok.principal.resource, `${s.url}/mcp`);

    const refreshed = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: t.refresh_token,
      client_id: client.client_id,
      client_secret: client.client_secret as string,
    });
    assert.equal(refreshed.status, 200);
    const t2 = refreshed.body as { access_token: string; refresh_token: string };
    assert.notEqual(t2.refresh_token, t.refresh_token);
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${t2.access_token}`)).ok);

    const revoked: unknown[] = [];
    s.broker.auth.credentials.events.once('grantRevoked', (g) => revoked.push(g));
    const rev = await fetch(`${s.url}/oauth/revoke`, {
      ...form({
        token: t2.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: client.client_id,
        client_secret: client.client_secret as string,
      }),
    });
    assert.equal(rev.status, 200);
    assert.deepEqual(revoked, [{ grantId: ok.principal.grantId, userId: 1001 }]);
    for (const access of [t.access_token, t2.access_token]) {
      const r = await s.broker.auth.verifyBearer(`Bearer ${access}`);
      assert.deepEqual(r, {
        ok: false,
        error: 'invalid_token',
        description: 'the token is unknown or revoked',
      });
    }
    const again = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: t2.refresh_token,
      client_id: client.client_id,
      client_secret: client.client_secret as string,
    });
    assert.equal(again.status, 400);
    assert.equal(again.body['error'], 'invalid_grant');
  });
});

describe('token endpoint rules', () => {
  let s: Stack;
  let client: { client_id: string; client_secret?: string };
  const auth = () => ({ client_id: client.client_id, client_secret: client.client_secret as string });
  before(async () => {
    s = await startStack();
    client = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
  });
  after(() => s.closeAll());

  const codeFor = async () => {
    const { params, verifier } = await browserFlow(s.url, { clientId: client.client_id, redirectUri: CB });
    return { code: params.get('code') as string, verifier };
  };
  const exchange = (code: string, verifier: string, extra: Record<string, string> = {}) =>
    tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: CB,
      code_verifier: verifier,
      ...auth(),
      ...extra,
    });

  it('wrong PKCE verifier → 400 invalid_grant; the right one still works after', async () => {
    const { code, verifier } = await codeFor();
    const bad = await exchange(code, pkce().verifier);
    assert.equal(bad.status, 400);
    assert.equal(bad.body['error'], 'invalid_grant');
    assert.equal((await exchange(code, verifier)).status, 200);
  });

  it('PKCE verifier missing at the token endpoint → 400 invalid_request', async () => {
    const { code } = await codeFor();
    const res = await tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: CB,
      ...auth(),
    });
    assert.equal(res.status, 400);
    assert.equal(res.body['error'], 'invalid_request');
  });

  it('wrong client secret → 401 invalid_client', async () => {
    const { code, verifier } = await codeFor();
    const res = await exchange(code, verifier, { client_secret: 'mcpcs_wrong' });
    assert.equal(res.status, 401);
    assert.equal(res.body['error'], 'invalid_client');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
  });

  it('a redirect_uri differing from the authorization request → invalid_grant', async () => {
    const { code, verifier } = await codeFor();
    const res = await exchange(code, verifier, { redirect_uri: 'https://app.example/other' });
    assert.equal(res.body['error'], 'invalid_grant');
  });

  it('an expired code is rejected', async () => {
    const { code, verifier } = await codeFor();
    s.broker.store.db.prepare('UPDATE auth_code SET expires_at = ?').run(Date.now() - 1);
    const res = await exchange(code, verifier);
    assert.equal(res.status, 400);
    assert.equal(res.body['error'], 'invalid_grant');
    assert.match(String(res.body['error_description']), /expired/);
  });

  it('a reused code fails and revokes the tokens it issued', async () => {
    const { code, verifier } = await codeFor();
    const first = await exchange(code, verifier);
    assert.equal(first.status, 200);
    const access = first.body['access_token'] as string;
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${access}`)).ok);
    const second = await exchange(code, verifier);
    assert.equal(second.status, 400);
    assert.equal(second.body['error'], 'invalid_grant');
    assert.equal((await s.broker.auth.verifyBearer(`Bearer ${access}`)).ok, false);
    const refresh = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: first.body['refresh_token'] as string,
      ...auth(),
    });
    assert.equal(refresh.body['error'], 'invalid_grant');
  });

  it('an expired access token is rejected by the bearer check; an expired refresh token by the token endpoint', async () => {
    const { code, verifier } = await codeFor();
    const t = (await exchange(code, verifier)).body;
    s.broker.store.db.prepare('UPDATE oauth_token SET expires_at = ?').run(Date.now() - 1);
    assert.deepEqual(await s.broker.auth.verifyBearer(`Bearer ${t['access_token']}`), {
      ok: false,
      error: 'invalid_token',
      description: 'the token expired',
    });
    const res = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: t['refresh_token'] as string,
      ...auth(),
    });
    assert.equal(res.body['error'], 'invalid_grant');
    assert.match(String(res.body['error_description']), /expired/);
  });

  it('a rotated refresh token is tolerated once within the grace window; the next reuse revokes the grant', async () => {
    const { code, verifier } = await codeFor();
    const t = (await exchange(code, verifier)).body;
    const refresh = (rt: string) =>
      tokenRequest(s.url, { grant_type: 'refresh_token', refresh_token: rt, ...auth() });
    const a = await refresh(t['refresh_token'] as string);
    assert.equal(a.status, 200);
    const b = await refresh(t['refresh_token'] as string);
    assert.equal(b.status, 200, 'one retry within the grace window is honoured');
    const c = await refresh(t['refresh_token'] as string);
    assert.equal(c.status, 400);
    assert.equal(c.body['error'], 'invalid_grant');
    for (const access of [a.body['access_token'], b.body['access_token']]) {
      assert.equal(
        (await s.broker.auth.verifyBearer(`Bearer ${access}`)).ok,
        false,
        'the whole grant is revoked',
      );
    }
  });

  it('a rotated refresh token reused after the grace window revokes the grant at once', async () => {
    const { code, verifier } = await codeFor();
    const t = (await exchange(code, verifier)).body;
    const refresh = (rt: string) =>
      tokenRequest(s.url, { grant_type: 'refresh_token', refresh_token: rt, ...auth() });
    const a = await refresh(t['refresh_token'] as string);
    s.broker.store.db
      .prepare('UPDATE oauth_token SET rotated_at = ? WHERE rotated_at IS NOT NULL')
      .run(Date.now() - 31_000);
    assert.equal((await refresh(t['refresh_token'] as string)).body['error'], 'invalid_grant');
    assert.equal((await s.broker.auth.verifyBearer(`Bearer ${a.body['access_token']}`)).ok, false);
    assert.equal((await refresh(a.body['refresh_token'] as string)).body['error'], 'invalid_grant');
  });

  it('a refresh token of another client → invalid_grant, and the token stays usable by its own client', async () => {
    const { code, verifier } = await codeFor();
    const t = (await exchange(code, verifier)).body;
    const other = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const res = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: t['refresh_token'] as string,
      client_id: other.client_id,
      client_secret: other.client_secret as string,
    });
    assert.equal(res.body['error'], 'invalid_grant');
    const own = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: t['refresh_token'] as string,
      ...auth(),
    });
    assert.equal(own.status, 200);
  });

  it('revoking an access token kills only it; revoking with Basic auth works too', async () => {
    const basic = await registerClient(s.url, { redirect_uris: [CB] });
    const { params, verifier } = await browserFlow(s.url, { clientId: basic.client_id, redirectUri: CB });
    const authz = {
      authorization: `Basic ${Buffer.from(`${basic.client_id}:${basic.client_secret}`).toString('base64')}`,
    };
    const t = await tokenRequest(
      s.url,
      {
        grant_type: 'authorization_code',
        code: params.get('code') as string,
        redirect_uri: CB,
        code_verifier: verifier,
      },
      authz,
    );
    assert.equal(t.status, 200);
    const init = form({ token: t.body['access_token'] as string, token_type_hint: 'access_token' });
    const rev = await fetch(`${s.url}/oauth/revoke`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), ...authz },
    });
    assert.equal(rev.status, 200);
    assert.equal((await s.broker.auth.verifyBearer(`Bearer ${t.body['access_token']}`)).ok, false);
    const r = await tokenRequest(
      s.url,
      { grant_type: 'refresh_token', refresh_token: t.body['refresh_token'] as string },
      authz,
    );
    assert.equal(r.status, 200, 'the refresh token survives an access-token revocation');
  });
});

describe('consent and callback protections (scripted browser)', () => {
  let s: Stack;
  let client: { client_id: string; client_secret?: string };
  before(async () => {
    s = await startStack({ env: { BROKER_ALLOWED_USERS: 'alice', BROKER_ALLOWED_ORGS: 'other' } });
    client = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
  });
  after(() => s.closeAll());

  const consentPage = async (ua = new UserAgent()) => {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: CB,
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      state: 'xyz',
      scope: 'claudeai mcp',
    });
    const page = await ua.get(`${s.url}/oauth/authorize?${q}`);
    return { ua, page };
  };

  it('the consent page is unframeable, scriptless and sets the __Host- binding cookie', async () => {
    const { page } = await consentPage();
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    const cookie = page.headers.get('set-cookie') ?? '';
    assert.match(
      cookie,
      /^__Host-fmb-browser-[0-9a-f]{16}=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Lax/,
    );
    assert.match(page.body, /read and change repositories/);
    assert.match(page.body, /id="redirect-host">app\.example</);
  });

  it('Deny → access_denied to the client with state and iss', async () => {
    const { ua, page } = await consentPage();
    const res = await ua.submit(page, 'consent-form', {
      button: 'consent-deny',
      stop: (u) => u.href.startsWith(CB),
    });
    const p = new URL(res.location as string).searchParams;
    assert.equal(p.get('error'), 'access_denied');
    assert.equal(p.get('state'), 'xyz');
    assert.equal(p.get('iss'), s.url);
  });

  it('a forged POST without the CSRF token, with a wrong one, or from another browser fails', async () => {
    const { ua, page } = await consentPage();
    const stop = () => true;
    const noCsrf = await ua.submit(page, 'consent-form', {
      button: 'consent-approve',
      fields: { csrf: '' },
      stop,
    });
    assert.equal(noCsrf.status, 400);
    assert.equal(noCsrf.location, undefined);
    const wrong = await ua.submit(page, 'consent-form', {
      button: 'consent-approve',
      fields: { csrf: 'x'.repeat(43) },
      stop,
    });
    assert.equal(wrong.status, 403);
    const otherBrowser = new UserAgent();
    const stolen = await otherBrowser.submit(page, 'consent-form', { button: 'consent-approve', stop });
    assert.equal(stolen.status, 403);
    const real = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop });
    assert.equal(real.status, 303);
    assert.ok(real.location?.startsWith(`${s.emulator.url}/login/oauth/authorize?`));
    const twice = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop });
    assert.equal(twice.status, 400, 'the consent is single-use');
  });

  it('the callback refuses another browser and a replayed state', async () => {
    const { ua, page } = await consentPage();
    const toForgejo = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop: () => true });
    const state = new URL(toForgejo.location as string).searchParams.get('state') as string;
    const thief = await new UserAgent().get(`${s.url}/oauth/callback?state=${state}&code=x`);
    assert.equal(thief.status, 403);
    const replay = await ua.get(`${s.url}/oauth/callback?state=${state}&code=x`);
    assert.equal(replay.status, 400, 'the state was consumed');
  });

  it('allow-lists: a user not listed is refused with a page and an access_denied link; a listed org lets bob in', async () => {
    const carol = await browserFlow(s.url, {
      clientId: client.client_id,
      redirectUri: CB,
      login: 'carol',
    }).catch((e: Error) => e);
    assert.ok(carol instanceof Error, 'carol never reaches the client with a code');
    const ua = new UserAgent();
    const { page } = await consentPage(ua);
    let p = await ua.submit(page, 'consent-form', { button: 'consent-approve' });
    p = await ua.submit(p, 'login-form', { fields: { user_name: 'carol', password: 'carol-pw' } });
    if (p.body.includes('grant-form')) p = await ua.submit(p, 'grant-form', { button: 'grant-approve' });
    assert.equal(p.status, 403);
    assert.match(p.body, /not allowed to use this server/);
    const link = /id="return-link" href="([^"]+)"/.exec(p.body)?.[1]?.replaceAll('&#38;', '&') as string;
    const back = new URL(link).searchParams;
    assert.equal(back.get('error'), 'access_denied');
    assert.equal(back.get('state'), 'xyz');
    assert.equal(await s.broker.store.getCredential(1003), undefined, 'nothing stored for a refused user');
    const bob = await browserFlow(s.url, { clientId: client.client_id, redirectUri: CB, login: 'bob' });
    assert.ok(bob.params.get('code'), 'bob is in through the org allow-list');
  });
});

describe('secrets at rest', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.closeAll());

  it('after a full flow no issued token, code, client secret or Forgejo token is in any table or file', async () => {
    const client = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const { tokens, code } = await fullFlow(s.url, {
      clientId: client.client_id,
      redirectUri: CB,
      clientSecret: client.client_secret,
    });
    const refreshed = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: client.client_id,
      client_secret: client.client_secret as string,
    });
    const forgejo = await s.broker.store.getCredential(1001);
    assert.ok(forgejo);
    const secrets = [
      tokens.access_token,
      tokens.refresh_token,
      refreshed.body['access_token'] as string,
      refreshed.body['refresh_token'] as string,
      code,
      client.client_secret as string,
      forgejo.accessToken,
      forgejo.refreshToken,
      FORGEJO_CLIENT_SECRET,
    ];
    const tables = dumpTables(s.broker);
    assert.ok(Object.keys(tables).length >= 7);
    const text = JSON.stringify(tables);
    s.broker.store.db.exec('PRAGMA wal_checkpoint(FULL)');
    const dir = dirname(s.dbPath);
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1'));
    for (const secret of secrets) {
      assert.ok(secret.length > 20);
      assert.ok(!text.includes(secret), 'a secret is in a table');
      for (const f of files) assert.ok(!f.includes(secret), 'a secret is in a database file');
    }
  });
});

describe('callback failures and purging', () => {
  it('the user denying at Forgejo → access_denied to the client', async () => {
    const s = await startStack();
    try {
      const c = await registerClient(s.url, {
        redirect_uris: [CB],
        token_endpoint_auth_method: 'client_secret_post',
      });
      const ua = new UserAgent();
      const stop = (u: URL) => u.href.startsWith(`${CB}?`);
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: c.client_id,
        redirect_uri: CB,
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        state: 'd1',
      });
      let p = await ua.get(`${s.url}/oauth/authorize?${q}`, { stop });
      p = await ua.submit(p, 'consent-form', { button: 'consent-approve', stop });
      p = await ua.submit(p, 'login-form', { fields: { user_name: 'bob', password: 'bob-pw' }, stop });
      assert.ok(p.body.includes('grant-form'), 'first login shows Forgejo’s own consent');
      p = await ua.submit(p, 'grant-form', { button: 'grant-deny', stop });
      const back = new URL(p.location as string).searchParams;
      assert.equal(back.get('error'), 'access_denied');
      assert.equal(back.get('state'), 'd1');
      assert.equal(back.get('iss'), s.url);
      assert.equal(await s.broker.store.getCredential(1002), undefined);
    } finally {
      await s.closeAll();
    }
  });

  it('a failing Forgejo code exchange → a page naming the cause, a way back with server_error, an operator line, nothing secret logged', async () => {
    const s = await startStack({ env: { FORGEJO_CLIENT_SECRET: 'not-the-secret' } });
    try {
      const c = await registerClient(s.url, {
        redirect_uris: [CB],
        token_endpoint_auth_method: 'client_secret_post',
      });
      const ua = new UserAgent();
      const stop = (u: URL) => u.href.startsWith(`${CB}?`);
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: c.client_id,
        redirect_uri: CB,
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
        state: 'f1',
      });
      let p = await ua.get(`${s.url}/oauth/authorize?${q}`, { stop });
      p = await ua.submit(p, 'consent-form', { button: 'consent-approve', stop });
      p = await ua.submit(p, 'login-form', { fields: { user_name: 'bob', password: 'bob-pw' }, stop });
      p = await ua.submit(p, 'grant-form', { button: 'grant-approve', stop });
      assert.equal(p.status, 502);
      assert.match(
        p.body,
        /refused this server&#39;s own credentials \(unauthorized_client: invalid client secret\)/,
      );
      const back = new URL(decodeEntities(/id="return-link" href="([^"]+)"/.exec(p.body)?.[1] ?? ''));
      assert.equal(back.searchParams.get('error'), 'server_error');
      assert.equal(back.searchParams.get('state'), 'f1');
      assert.equal(back.searchParams.get('code'), null);
      const line = s.logs.lines().find((l) => l['msg'] === 'Forgejo login failed');
      assert.match(
        String(line?.['cause']),
        /client credentials \(unauthorized_client: invalid client secret\)/,
      );
      assert.ok(!s.logs.text().includes('not-the-secret'));
    } finally {
      await s.closeAll();
    }
  });

  it('expired rows are purged; live ones stay', async () => {
    const s = await startStack();
    try {
      const c = await registerClient(s.url, {
        redirect_uris: [CB],
        token_endpoint_auth_method: 'client_secret_post',
      });
      const live = await fullFlow(s.url, {
        clientId: c.client_id,
        redirectUri: CB,
        clientSecret: c.client_secret,
      });
      const dead = await fullFlow(s.url, {
        clientId: c.client_id,
        redirectUri: CB,
        clientSecret: c.client_secret,
      });
      const deadGrant = await s.broker.auth.verifyBearer(`Bearer ${dead.tokens.access_token}`);
      assert.ok(deadGrant.ok);
      s.broker.store.db
        .prepare('UPDATE oauth_token SET expires_at = ? WHERE grant_id = ?')
        .run(Date.now() - 1, deadGrant.principal.grantId);
      s.broker.store.db.prepare('UPDATE auth_code SET expires_at = ?').run(Date.now() - 1);
      const n = await s.broker.auth.purge();
      assert.ok(n >= 3, `purged ${n}`);
      const count = (t: string) => s.broker.store.db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get()?.['n'];
      assert.equal(count('auth_code'), 1, 'the live grant keeps its used code (replay detection)');
      assert.equal(count('oauth_grant'), 1);
      assert.equal(count('oauth_token'), 2);
      assert.ok((await s.broker.auth.verifyBearer(`Bearer ${live.tokens.access_token}`)).ok);
    } finally {
      await s.closeAll();
    }
  });
});
