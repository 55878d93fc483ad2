// The OAuth edges an outside security review found (issue 12): each test here failed on the code
// before the fix.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metrics } from '../../src/metrics/metrics.ts';
import { CimdResolver } from '../../src/oauth/cimd.ts';
import { OAuthError } from '../../src/oauth/respond.ts';
import { hashSecret, newSecret } from '../../src/store/secrets.ts';
import { captureLogger } from '../support/log-capture.ts';
import {
  type BrokerHarness,
  form,
  pkce,
  registerClient,
  startBrokerInProcess,
} from '../support/oauth-harness.ts';
import { authorizeUrl, fullFlow, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';
import { selfSignedCert, startHttpsServer } from '../support/tls.ts';
import { findForm, UserAgent } from '../support/user-agent.ts';

const EVIL = 'https://evil.example/landing';

describe('names and redirect URIs a consent page must not show or follow', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.closeAll());

  const register = (metadata: Record<string, unknown>) =>
    fetch(`${s.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], ...metadata }),
    });

  it('refuses client names with bidi controls or zero-width characters', async () => {
    for (const name of [
      'Claude\u202E',
      'Cl\u202Eedua',
      'Visual\u2066 Studio\u2069 Code',
      'Cla\u200Bude',
      'Cla\u200Dude',
      '\uFEFFClaude',
      'Claude\u3164',
    ]) {
      const res = await register({ client_name: name });
      assert.equal(res.status, 400, JSON.stringify(name));
      const body = (await res.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, /bidi or invisible/);
    }
    assert.equal((await register({ client_name: 'Zoë’s 日本 client' })).status, 201);
  });

  it('refuses view-source: and other non-navigable schemes, and blanks, as redirect URIs', async () => {
    for (const uri of [
      'view-source:https://evil.example/',
      'filesystem:https://evil.example/temporary/x',
      'jar:https://evil.example/x.jar!/',
      'mhtml:https://evil.example/x.mht',
      'intent://evil#Intent;end',
      'chrome://settings',
      'blob:https://evil.example/uuid',
      ' javascript:alert(1)',
      'https://app.example/cb\t',
    ]) {
      const res = await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      assert.equal(res.status, 400, uri);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_redirect_uri', uri);
    }
    const ok = await register({
      redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
      token_endpoint_auth_method: 'none',
    });
    assert.equal(ok.status, 201, 'a custom app scheme stays allowed for public clients');
  });

  it('refuses a Client ID Metadata Document whose name has a bidi control', async () => {
    const tls = selfSignedCert();
    let origin = '';
    const srv = await startHttpsServer(tls, {
      '/bidi.json': () => ({
        body: JSON.stringify({
          client_id: `${origin}/bidi.json`,
          client_name: 'Claude Code\u202E',
          redirect_uris: ['http://127.0.0.1/callback'],
          token_endpoint_auth_method: 'none',
        }),
      }),
    });
    origin = srv.origin;
    try {
      const logs = captureLogger('info');
      const resolver = new CimdResolver({
        allowPrivateHosts: ['localhost'],
        extraCa: [tls.cert],
        log: logs.log,
      });
      const err = await resolver.resolve(`${origin}/bidi.json`).catch((e: unknown) => e);
      assert.ok(err instanceof OAuthError, String(err));
      assert.equal(err.error, 'invalid_client');
      // The client sees one generic message (no fetch oracle); the log says it was the name.
      const refused = logs.lines().find((l) => l['msg'] === 'client metadata document refused');
      assert.match(String(refused?.['reason']), /client_name/);
    } finally {
      await srv.close();
    }
  });
});

describe('authorize is not an open redirector (RFC 9700 §4.11.2)', () => {
  let s: Stack;
  let client: { client_id: string };
  before(async () => {
    s = await startStack();
    client = await registerClient(s.url, { client_name: 'Evil', redirect_uris: [EVIL] });
  });
  after(() => s.closeAll());

  const valid = () =>
    new URL(
      authorizeUrl(s.url, { clientId: client.client_id, redirectUri: EVIL, challenge: pkce().challenge }),
    );

  it('a registered client’s malformed request shows a page and never sends the browser to its redirect URI', async () => {
    const cases: [string, (q: URLSearchParams) => void, RegExp][] = [
      ['response_type=token', (q) => q.set('response_type', 'token'), /unsupported_response_type/],
      ['no response_type', (q) => q.delete('response_type'), /response_type is required/],
      ['no PKCE', (q) => q.delete('code_challenge'), /PKCE/],
      ['plain PKCE', (q) => q.set('code_challenge_method', 'plain'), /S256/],
      ['short challenge', (q) => q.set('code_challenge', 'abc'), /S256 challenge/],
      ['another resource', (q) => q.set('resource', 'https://other.example/mcp'), /invalid_target/],
      ['repeated state', (q) => q.append('state', 'again'), /state is repeated/],
    ];
    for (const [name, change, why] of cases) {
      const url = valid();
      change(url.searchParams);
      const res = await fetch(url, { redirect: 'manual' });
      assert.equal(res.status, 400, name);
      assert.equal(res.headers.get('location'), null, `${name}: no redirect`);
      const body = await res.text();
      assert.match(body, why, name);
      assert.ok(!body.includes('evil.example/landing?'), `${name}: no link with the error either`);
      assert.doesNotMatch(body, /http-equiv="refresh"/, `${name}: no automatic redirect`);
    }
    const ok = await new UserAgent().get(valid());
    assert.equal(ok.status, 200, 'the same client’s valid request reaches the consent page');
    assert.match(ok.body, /consent-form/);
  });
});

describe('browser-binding cookie', () => {
  let s: Stack;
  let client: { client_id: string };
  const CB = 'https://app.example/cb';
  before(async () => {
    s = await startStack();
    client = await registerClient(s.url, { redirect_uris: [CB] });
  });
  after(() => s.closeAll());

  const url = () =>
    authorizeUrl(s.url, { clientId: client.client_id, redirectUri: CB, challenge: pkce().challenge });
  const binding = (page: { headers: Headers }) => {
    const [line = ''] = page.headers.getSetCookie();
    return /^(__Host-fmb-browser-[^=]+)=([^;]+)/.exec(line)?.slice(1) ?? [];
  };

  it('is a fresh value for every sign-in, never one the browser sent, and a planted value binds nothing', async () => {
    const planted = newSecret();
    const res = await fetch(url(), {
      headers: { cookie: `__Host-fmb-browser=${planted}; __Host-fmb-browser-0123456789abcdef=${planted}` },
    });
    assert.equal(res.status, 200);
    assert.ok(!res.headers.getSetCookie().join('\n').includes(planted), 'the sent value is not set back');

    // An attacker who planted a value and knows the form's fields still cannot consent as the victim.
    const victim = new UserAgent();
    const page = await victim.get(url());
    const [name] = binding(page);
    assert.ok(name);
    const own = await victim.submit(page, 'consent-form', { button: 'consent-approve', stop: () => true });
    assert.equal(own.status, 303, 'the victim’s own browser consents');
    const attacker = new UserAgent();
    const other = await victim.get(url());
    const stolen = await attacker.fetch(`${s.url}/oauth/consent`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `${binding(other)[0]}=${planted}`,
      },
      body: new URLSearchParams([
        ...(findForm(other.body, 'consent-form')?.fields ?? []),
        ['decision', 'approve'],
      ]).toString(),
    });
    assert.equal(stolen.status, 403, 'a value the attacker chose does not bind the victim’s sign-in');
  });

  it('two sign-ins in one browser get different values and both still complete', async () => {
    const ua = new UserAgent();
    const first = await ua.get(url());
    const second = await ua.get(url());
    const [n1, v1] = binding(first);
    const [n2, v2] = binding(second);
    assert.ok(v1 && v2);
    assert.notEqual(v2, v1, 'the second sign-in does not reuse the first one’s value');
    assert.notEqual(n2, n1);
    for (const page of [first, second]) {
      const res = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop: () => true });
      assert.equal(res.status, 303);
      assert.ok(res.location?.startsWith(`${s.emulator.url}/login/oauth/authorize?`));
    }
  });
});

describe('authorization code replay', () => {
  let s: Stack;
  let pub: { client_id: string };
  let conf: { client_id: string; client_secret?: string };
  const CB = 'https://app.example/cb';
  before(async () => {
    s = await startStack();
    pub = await registerClient(s.url, { redirect_uris: [CB], token_endpoint_auth_method: 'none' });
    conf = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
  });
  after(() => s.closeAll());

  const exchange = (code: string, verifier: string, auth: Record<string, string>) =>
    tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: CB,
      code_verifier: verifier,
      ...auth,
    });
  const alive = async (access: string) => (await s.broker.auth.verifyBearer(`Bearer ${access}`)).ok;

  it('a replay without the verifier (public client) is refused and logged, and the victim’s tokens live on', async () => {
    const { tokens, code, verifier } = await fullFlow(s.url, { clientId: pub.client_id, redirectUri: CB });
    const replay = await exchange(code, pkce().verifier, { client_id: pub.client_id });
    assert.equal(replay.status, 400);
    assert.equal(replay.body['error'], 'invalid_grant');
    assert.ok(await alive(tokens.access_token), 'a stranger holding only the code revokes nothing');
    const logged = s.logs.lines().find((l) => String(l['msg']).includes('without its verifier'));
    assert.ok(logged, 'the refused replay is logged');
    assert.ok(!s.logs.text().includes(code), 'the code itself is not logged');

    const proven = await exchange(code, verifier, { client_id: pub.client_id });
    assert.equal(proven.body['error'], 'invalid_grant');
    assert.equal(
      await alive(tokens.access_token),
      false,
      'a replay with the verifier proves a leak: revoked',
    );
  });

  it('a replay by the authenticated client revokes even without the verifier', async () => {
    const auth = { client_id: conf.client_id, client_secret: conf.client_secret as string };
    const { tokens, code } = await fullFlow(s.url, {
      clientId: conf.client_id,
      redirectUri: CB,
      clientSecret: conf.client_secret,
    });
    assert.equal((await exchange(code, pkce().verifier, auth)).body['error'], 'invalid_grant');
    assert.equal(await alive(tokens.access_token), false);
  });

  it('a used code is still recognised after its 60 s lifetime and the purge, while its tokens live', async () => {
    const { tokens, code, verifier } = await fullFlow(s.url, { clientId: pub.client_id, redirectUri: CB });
    s.broker.store.db.prepare('UPDATE auth_code SET expires_at = ?').run(Date.now() - 3_600_000);
    await s.broker.auth.purge();
    assert.ok(await alive(tokens.access_token));
    const replay = await exchange(code, verifier, { client_id: pub.client_id });
    assert.match(String(replay.body['error_description']), /already used/);
    assert.equal(await alive(tokens.access_token), false, 'the late replay still revokes');
    await s.broker.auth.purge();
    const left = s.broker.store.db.prepare('SELECT COUNT(*) AS n FROM auth_code WHERE code_hash = ?');
    assert.equal(left.get(hashSecret(code))?.['n'], 0, 'the code goes with its revoked grant');
  });
});

describe('refresh grace window', () => {
  let s: Stack;
  let client: { client_id: string; client_secret?: string };
  const CB = 'https://app.example/cb';
  before(async () => {
    s = await startStack();
    client = await registerClient(s.url, {
      redirect_uris: [CB],
      token_endpoint_auth_method: 'client_secret_post',
    });
  });
  after(() => s.closeAll());

  const refresh = (rt: string) =>
    tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: rt,
      client_id: client.client_id,
      client_secret: client.client_secret as string,
    });
  const alive = async (access: unknown) => (await s.broker.auth.verifyBearer(`Bearer ${access}`)).ok;

  it('a second presentation within the grace returns the same pair, so a thief cannot start a second chain', async () => {
    const { tokens } = await fullFlow(s.url, {
      clientId: client.client_id,
      redirectUri: CB,
      clientSecret: client.client_secret,
    });
    const mine = await refresh(tokens.refresh_token);
    assert.equal(mine.status, 200);
    const thief = await refresh(tokens.refresh_token);
    assert.equal(thief.status, 200, 'a retry within the grace is still answered');
    assert.equal(
      thief.body['refresh_token'],
      mine.body['refresh_token'],
      'the same successor, not a new chain',
    );
    assert.equal(thief.body['access_token'], mine.body['access_token']);
    assert.ok(Number(thief.body['expires_in']) <= Number(mine.body['expires_in']));
    const tokenRows = s.broker.store.db.prepare('SELECT COUNT(*) AS n FROM oauth_token').get()?.['n'];
    assert.equal(tokenRows, 4, 'the retry stored nothing: one pair from the code, one successor');

    // The client goes on; the thief's copy is the client's own, rotated token: reuse after the grace.
    const next = await refresh(mine.body['refresh_token'] as string);
    assert.equal(next.status, 200);
    s.broker.store.db
      .prepare('UPDATE oauth_token SET rotated_at = ? WHERE rotated_at IS NOT NULL')
      .run(Date.now() - 31_000);
    const late = await refresh(thief.body['refresh_token'] as string);
    assert.equal(late.body['error'], 'invalid_grant');
    assert.match(String(late.body['error_description']), /revoked/);
    assert.equal(await alive(next.body['access_token']), false, 'reuse after the grace revokes the family');
  });
});

describe('rate limits keyed on a client id nobody proved', () => {
  let h: BrokerHarness;
  let conf: { client_id: string; client_secret?: string };
  let pub: { client_id: string };
  before(async () => {
    // Distinct sources through X-Forwarded-For from a trusted proxy (the test itself).
    h = await startBrokerInProcess({ env: { BROKER_RATE_LIMIT: '2', BROKER_TRUSTED_PROXIES: '127.0.0.1' } });
    conf = await registerClient(h.url, {
      redirect_uris: ['https://a.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    pub = await registerClient(h.url, {
      redirect_uris: ['https://b.example/cb'],
      token_endpoint_auth_method: 'none',
    });
  });
  after(() => h.close());

  const post = async (path: string, from: string, fields: Record<string, string>) => {
    const init = form(fields);
    const res = await fetch(`${h.url}${path}`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), 'x-forwarded-for': from },
    });
    await res.body?.cancel();
    return res.status;
  };
  const refresh = (from: string, auth: Record<string, string>) =>
    post('/oauth/token', from, { grant_type: 'refresh_token', refresh_token: 'mcprt_unknown', ...auth });
  const times = async (n: number, f: () => Promise<number>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await f());
    return out;
  };

  it('a stranger’s failures naming a client are charged to the stranger, not to the client', async () => {
    const wrongSecret = { client_id: conf.client_id, client_secret: 'mcpcs_wrong' };
    assert.deepEqual(await times(4, () => refresh('203.0.113.66', wrongSecret)), [401, 401, 429, 429]);
    assert.deepEqual(
      await times(4, () => refresh('203.0.113.77', { client_id: pub.client_id })),
      [400, 400, 429, 429],
      'a public client’s id with a grant that does not check out is a failure of the source',
    );
    assert.deepEqual(
      await times(3, () => post('/oauth/revoke', '203.0.113.88', { token: 'x', client_id: pub.client_id })),
      [200, 200, 429],
    );

    const right = { client_id: conf.client_id, client_secret: conf.client_secret as string };
    assert.equal(await refresh('198.51.100.1', right), 400, 'the confidential client is not locked out');
    assert.equal(await refresh('198.51.100.2', { client_id: pub.client_id }), 400, 'nor is the public one');
    // Once it authenticated, a client's requests are its own, from wherever they come.
    assert.equal(await refresh('198.51.100.3', right), 400);
    const counted = async () =>
      (await metrics.rateLimited.get()).values.find((v) => v.labels['bucket'] === 'token-client')?.value ?? 0;
    const before = await counted();
    assert.equal(await refresh('198.51.100.4', right), 429, 'its own bucket still limits it');
    assert.equal(await counted(), before + 1, 'and the refusal is counted');
  });

  it('a stranger’s failing calls to a registration’s management URI do not lock out the client', async () => {
    const c = await registerClient(h.url, { redirect_uris: ['https://c.example/cb'] });
    const read = async (from: string, token: string) => {
      const res = await fetch(String(c['registration_client_uri']), {
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': from },
      });
      await res.body?.cancel();
      return res.status;
    };
    assert.deepEqual(await times(3, () => read('203.0.113.99', 'not-the-token')), [401, 401, 429]);
    assert.equal(await read('198.51.100.9', String(c['registration_access_token'])), 200);
  });
});
