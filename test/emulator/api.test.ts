import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { UserAgent } from '../support/user-agent.ts';
import {
  api,
  type Clock,
  CONFIDENTIAL,
  jwtPart,
  loginTokens,
  startWorld,
  type Tokens,
  USERS,
} from './fixture.ts';

let emu: ForgejoEmulator;
let clock: Clock;
let alice: Tokens;
before(async () => {
  ({ emu, clock } = await startWorld());
  alice = await loginTokens(emu);
});
after(() => emu.close());

const invalid401 = () => ({ message: 'user does not exist [uid: 0, name: ]', url: `${emu.url}/api/swagger` });

/** Tokens of a fresh grant with this scope (a grant keeps the scope of its first consent). */
async function tokensWithScope(e: ForgejoEmulator, scope: string, who = USERS.alice): Promise<Tokens> {
  e.revokeGrant(who.login, CONFIDENTIAL.clientId);
  return loginTokens(e, { scope, who });
}

describe('authentication on /api/v1', () => {
  it('/api/v1/version works without a token and with a valid one', async () => {
    for (const token of [undefined, alice.access_token]) {
      const res = await api(emu, '/api/v1/version', { token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { version: '16.0.1+gitea-1.22.0' });
    }
  });

  it('an invalid token is a 401 with Forgejo’s body on every route, /version included', async () => {
    for (const path of [
      '/api/v1/version',
      '/api/v1/user',
      '/api/v1/user/repos',
      '/api/v1/repos/alice/alpha/issues',
    ]) {
      const res = await api(emu, path, { token: 'not-a-token' });
      assert.equal(res.status, 401, path);
      assert.deepEqual(res.body, invalid401());
    }
  });

  it('accepts token and Bearer schemes in any case', async () => {
    for (const scheme of ['token', 'Token', 'TOKEN', 'Bearer', 'bearer', 'BEARER']) {
      const res = await api(emu, '/api/v1/user', { token: alice.access_token, scheme });
      assert.equal(res.status, 200, scheme);
      assert.equal((res.body as { login: string }).login, 'alice');
    }
  });

  it('accepts Basic with login and password, or with the token as username or password', async () => {
    const basic = (user: string, pass: string) =>
      `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    for (const authorization of [
      basic('alice', USERS.alice.password),
      basic(alice.access_token, ''),
      basic(alice.access_token, 'x-oauth-basic'),
      basic('whoever', alice.access_token),
    ]) {
      const res = await api(emu, '/api/v1/user', { authorization });
      assert.equal(res.status, 200);
      assert.equal((res.body as { login: string }).login, 'alice');
    }
    const wrong = await api(emu, '/api/v1/user', { authorization: basic('alice', 'nope') });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, {
      message: "user's password is invalid [uid: 1, name: alice]",
      url: `${emu.url}/api/swagger`,
    });
  });

  it('a route that needs a user says "token is required" without one', async () => {
    const res = await api(emu, '/api/v1/user');
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, { message: 'token is required', url: `${emu.url}/api/swagger` });
  });

  it('rejects an access token whose exp has passed', async () => {
    const { emu: e2, clock: c2 } = await startWorld({ accessTokenTtlSeconds: 5 });
    try {
      const t = await loginTokens(e2);
      assert.equal(jwtPart(t.access_token, 1)['exp'], (jwtPart(t.access_token, 1)['iat'] as number) + 5);
      assert.equal((await api(e2, '/api/v1/user', { token: t.access_token })).status, 200);
      c2.advance(5);
      const res = await api(e2, '/api/v1/user', { token: t.access_token });
      assert.equal(res.status, 401);
      assert.deepEqual(res.body, {
        message: 'user does not exist [uid: 0, name: ]',
        url: `${e2.url}/api/swagger`,
      });
    } finally {
      await e2.close();
    }
  });

  it('rejects an access token whose iat is in the future', async () => {
    clock.advance(120);
    const ahead = await loginTokens(emu);
    clock.set(Date.now());
    const res = await api(emu, '/api/v1/user', { token: ahead.access_token });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, invalid401());
    clock.advance(121);
    assert.equal((await api(emu, '/api/v1/user', { token: ahead.access_token })).status, 200);
    clock.set(Date.now());
  });

  it('rejects a refresh token used as an access token, and a token signed by another key', async () => {
    assert.equal((await api(emu, '/api/v1/user', { token: alice.refresh_token })).status, 401);
    const { emu: e2 } = await startWorld();
    try {
      const foreign = await loginTokens(e2);
      assert.equal((await api(emu, '/api/v1/user', { token: foreign.access_token })).status, 401);
    } finally {
      await e2.close();
    }
  });
});

describe('scopes', () => {
  let e: ForgejoEmulator;
  before(async () => {
    ({ emu: e } = await startWorld());
  });
  after(() => e.close());

  const forbidden = (scope: string) => ({
    message: `token does not have at least one of required scope(s): [${scope}]`,
    url: `${e.url}/api/swagger`,
  });

  it('a missing scope is a 403 naming the required one', async () => {
    const repoOnly = await tokensWithScope(e, 'read:repository');
    let res = await api(e, '/api/v1/user', { token: repoOnly.access_token });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, forbidden('read:user'));
    res = await api(e, '/api/v1/user/repos', { token: repoOnly.access_token });
    assert.deepEqual(res.body, forbidden('read:user'));

    const userOnly = await tokensWithScope(e, 'read:user');
    assert.equal((await api(e, '/api/v1/user', { token: userOnly.access_token })).status, 200);
    res = await api(e, '/api/v1/user/repos', { token: userOnly.access_token });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, forbidden('read:repository'));
    res = await api(e, '/api/v1/repos/alice/alpha/issues', { token: userOnly.access_token });
    assert.deepEqual(res.body, forbidden('read:issue'));
  });

  it('read:issue lists issues but cannot create one; write:issue can (write implies read)', async () => {
    const read = await tokensWithScope(e, 'read:issue');
    assert.equal(
      (await api(e, '/api/v1/repos/alice/alpha/issues', { token: read.access_token })).status,
      200,
    );
    const post = await api(e, '/api/v1/repos/alice/alpha/issues', {
      token: read.access_token,
      method: 'POST',
      json: { title: 'x' },
    });
    assert.equal(post.status, 403);
    assert.deepEqual(post.body, forbidden('write:issue'));
    const write = await tokensWithScope(e, 'write:issue');
    assert.equal(
      (await api(e, '/api/v1/repos/alice/alpha/issues', { token: write.access_token })).status,
      200,
    );
    const created = await api(e, '/api/v1/repos/alice/alpha/issues', {
      token: write.access_token,
      method: 'POST',
      json: { title: 'from write:issue' },
    });
    assert.equal(created.status, 201);
  });

  it('read:user with read:repository (or their write forms) lists my repos', async () => {
    for (const scope of ['read:user read:repository', 'write:user write:repository']) {
      const t = await tokensWithScope(e, scope);
      assert.equal((await api(e, '/api/v1/user/repos', { token: t.access_token })).status, 200, scope);
    }
  });

  it('an empty scope, OIDC scopes only, unknown words only or "all" mean full access', async () => {
    for (const scope of ['', 'openid', 'openid profile email groups', 'frobnicate', 'all']) {
      const t = await tokensWithScope(e, scope);
      for (const path of ['/api/v1/user', '/api/v1/user/repos', '/api/v1/repos/alice/alpha/issues']) {
        assert.equal((await api(e, path, { token: t.access_token })).status, 200, `${scope} ${path}`);
      }
    }
  });

  it('OIDC words next to API scopes are dropped, the API scopes decide', async () => {
    const t = await tokensWithScope(e, 'openid read:user');
    assert.equal((await api(e, '/api/v1/user', { token: t.access_token })).status, 200);
    assert.equal((await api(e, '/api/v1/user/repos', { token: t.access_token })).status, 403);
  });

  it('public-only hides private repositories', async () => {
    const t = await tokensWithScope(e, 'read:user read:repository read:issue public-only');
    const repos = await api(e, '/api/v1/user/repos', { token: t.access_token });
    assert.deepEqual(
      (repos.body as { name: string }[]).map((r) => r.name),
      ['alpha'],
    );
    const res = await api(e, '/api/v1/repos/alice/secret/issues', { token: t.access_token });
    assert.equal(res.status, 403);
  });

  it('login and password over Basic are not limited by scopes', async () => {
    const res = await api(e, '/api/v1/user/repos', {
      authorization: `Basic ${Buffer.from(`alice:${USERS.alice.password}`).toString('base64')}`,
    });
    assert.equal(res.status, 200);
  });
});

describe('API routes', () => {
  it('/api/v1/user returns the user with Forgejo’s fields', async () => {
    const res = await api(emu, '/api/v1/user', { token: alice.access_token });
    const u = res.body as Record<string, unknown>;
    assert.equal(u['id'], 1);
    assert.equal(u['login'], 'alice');
    assert.equal(u['full_name'], 'Alice A');
    assert.equal(u['email'], 'alice@example.test');
    assert.equal(u['html_url'], `${emu.url}/alice`);
    assert.equal(u['is_admin'], false);
    assert.equal(u['visibility'], 'public');
    for (const k of ['login_name', 'avatar_url', 'created', 'restricted', 'active', 'prohibit_login']) {
      assert.ok(k in u, k);
    }
  });

  it('/api/v1/user/repos lists only my repos, private ones included, paged', async () => {
    let res = await api(emu, '/api/v1/user/repos?page=1&limit=100', { token: alice.access_token });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-total-count'), '2');
    const repos = res.body as Record<string, unknown>[];
    assert.deepEqual(
      repos.map((r) => [r['full_name'], r['private']]),
      [
        ['alice/alpha', false],
        ['alice/secret', true],
      ],
    );
    const alpha = repos[0]!;
    assert.equal(alpha['name'], 'alpha');
    assert.equal(alpha['description'], 'first');
    assert.equal(alpha['html_url'], `${emu.url}/alice/alpha`);
    assert.deepEqual(
      [
        (alpha['owner'] as Record<string, unknown>)['login'],
        (alpha['owner'] as Record<string, unknown>)['id'],
      ],
      ['alice', 1],
    );
    res = await api(emu, '/api/v1/user/repos?page=2&limit=1', { token: alice.access_token });
    assert.deepEqual(
      (res.body as { name: string }[]).map((r) => r.name),
      ['secret'],
    );
    const bob = await loginTokens(emu, { who: USERS.bob });
    res = await api(emu, '/api/v1/user/repos', { token: bob.access_token });
    assert.deepEqual(
      (res.body as { full_name: string }[]).map((r) => r.full_name),
      ['bob/tools'],
    );
  });

  it('lists open issues newest first by default; state=closed and state=all; page and limit', async () => {
    const list = async (q: string) => {
      const res = await api(emu, `/api/v1/repos/alice/alpha/issues${q}`, { token: alice.access_token });
      assert.equal(res.status, 200);
      return res.body as Record<string, unknown>[];
    };
    const open = await list('');
    assert.deepEqual(
      open.map((i) => [i['number'], i['title'], i['state']]),
      [
        [2, 'a2', 'open'],
        [1, 'a1', 'open'],
      ],
    );
    const one = open[1]!;
    assert.equal(one['body'], 'one');
    assert.equal((one['user'] as Record<string, unknown>)['login'], 'alice');
    assert.equal(one['html_url'], `${emu.url}/alice/alpha/issues/1`);
    assert.equal(typeof one['id'], 'number');
    assert.match(one['created_at'] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(
      (await list('?state=closed')).map((i) => i['title']),
      ['a3 closed'],
    );
    assert.equal((await list('?state=all')).length, 3);
    assert.deepEqual(
      (await list('?state=all&page=2&limit=2')).map((i) => i['number']),
      [1],
    );
  });

  it('creates issues with increasing numbers, authored by the caller', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const bob = await loginTokens(e2, { who: USERS.bob });
      const created = await api(e2, '/api/v1/repos/alice/alpha/issues', {
        token: bob.access_token,
        method: 'POST',
        json: { title: 'Bug from bob', body: 'details' },
      });
      assert.equal(created.status, 201);
      const issue = created.body as Record<string, unknown>;
      assert.equal(issue['number'], 4);
      assert.equal(issue['title'], 'Bug from bob');
      assert.equal(issue['body'], 'details');
      assert.equal(issue['state'], 'open');
      assert.equal((issue['user'] as Record<string, unknown>)['login'], 'bob');
      const next = await api(e2, '/api/v1/repos/alice/alpha/issues', {
        token: bob.access_token,
        method: 'POST',
        json: { title: 'Second' },
      });
      assert.equal((next.body as Record<string, unknown>)['number'], 5);
      const listed = await api(e2, '/api/v1/repos/alice/alpha/issues?limit=1');
      assert.equal((listed.body as Record<string, unknown>[])[0]!['title'], 'Second');
      const noTitle = await api(e2, '/api/v1/repos/alice/alpha/issues', {
        token: bob.access_token,
        method: 'POST',
        json: { body: 'x' },
      });
      assert.equal(noTitle.status, 422);
    } finally {
      await e2.close();
    }
  });

  it('hides other people’s private repos (404) and needs a user to create', async () => {
    const notFound = { errors: [], message: "The target couldn't be found.", url: `${emu.url}/api/swagger` };
    let res = await api(emu, '/api/v1/repos/bob/tools/issues', { token: alice.access_token });
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, notFound);
    res = await api(emu, '/api/v1/repos/alice/secret/issues');
    assert.equal(res.status, 404);
    res = await api(emu, '/api/v1/repos/nobody/none/issues', { token: alice.access_token });
    assert.equal(res.status, 404);
    res = await api(emu, '/api/v1/repos/al%E0%A4%A/alpha/issues', { token: alice.access_token });
    assert.equal(res.status, 404);
    res = await api(emu, '/api/v1/repos/%61lice/alpha/issues', { token: alice.access_token });
    assert.equal(res.status, 200);
    res = await api(emu, '/api/v1/repos/alice/alpha/issues');
    assert.equal(res.status, 200);
    res = await api(emu, '/api/v1/repos/alice/alpha/issues', { method: 'POST', json: { title: 'anon' } });
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, { message: 'token is required', url: `${emu.url}/api/swagger` });
  });
});

describe('single repository and issue', () => {
  it('GET /repos/{o}/{r} needs read:repository; GET …/issues/{n} needs read:issue', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const t = await tokensWithScope(e2, 'read:issue');
      let res = await api(e2, '/api/v1/repos/alice/alpha', { token: t.access_token });
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, {
        message: 'token does not have at least one of required scope(s): [read:repository]',
        url: `${e2.url}/api/swagger`,
      });
      res = await api(e2, '/api/v1/repos/alice/alpha/issues/2', { token: t.access_token });
      assert.equal(res.status, 200);
      assert.deepEqual(
        [(res.body as Record<string, unknown>)['number'], (res.body as Record<string, unknown>)['title']],
        [2, 'a2'],
      );
      res = await api(e2, '/api/v1/repos/alice/alpha/issues/99', { token: t.access_token });
      assert.equal(res.status, 404);
      const full = await tokensWithScope(e2, '');
      res = await api(e2, '/api/v1/repos/alice/secret', { token: full.access_token });
      assert.equal(res.status, 200);
      assert.equal((res.body as Record<string, unknown>)['full_name'], 'alice/secret');
      assert.equal((await api(e2, '/api/v1/repos/alice/secret')).status, 404);
    } finally {
      await e2.close();
    }
  });

  it('answers unknown API routes with 404 JSON', async () => {
    const res = await api(emu, '/api/v1/nothing/here', { token: alice.access_token });
    assert.equal(res.status, 404);
    assert.equal((res.body as Record<string, unknown>)['message'], "The target couldn't be found.");
  });
});

describe('userinfo', () => {
  it('returns sub, name, preferred_username, email, picture and groups', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${emu.url}/login/oauth/userinfo`, {
        method,
        headers: { authorization: `Bearer ${alice.access_token}` },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body['sub'], '1');
      assert.equal(body['name'], 'Alice A');
      assert.equal(body['preferred_username'], 'alice');
      assert.equal(body['email'], 'alice@example.test');
      assert.match(body['picture'] as string, new RegExp(`^${emu.url}/avatars/`));
      assert.deepEqual(body['groups'], ['acme', 'acme:owners', 'acme:devs', 'solo']);
    }
  });

  it('leaves groups out for a user in no organization', async () => {
    const bob = await loginTokens(emu, { who: USERS.bob });
    const res = await fetch(`${emu.url}/login/oauth/userinfo`, {
      headers: { authorization: `token ${bob.access_token}` },
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body['preferred_username'], 'bob');
    assert.equal('groups' in body, false);
  });

  it('answers 401 text/plain "no valid authorization" with WWW-Authenticate without a token (Basic is not one here)', async () => {
    const basic = `Basic ${Buffer.from(`alice:${USERS.alice.password}`).toString('base64')}`;
    for (const authorization of [undefined, basic]) {
      const res = await fetch(`${emu.url}/login/oauth/userinfo`, {
        headers: authorization ? { authorization } : {},
      });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm=""');
      assert.equal(await res.text(), 'no valid authorization');
    }
  });

  it('answers a token that resolves to no user as Forgejo’s web auth middleware does: 401 text, no WWW-Authenticate', async () => {
    for (const authorization of ['Bearer nope', `Bearer ${alice.refresh_token}`, 'token nope']) {
      const res = await fetch(`${emu.url}/login/oauth/userinfo`, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.equal(res.headers.get('www-authenticate'), null);
      assert.match(
        await res.text(),
        /^Credentials are incorrect or have expired\. .*issues\/2809 for more information\n$/,
      );
    }
  });
});

describe('discovery and keys', () => {
  it('serves OIDC discovery with the issuer and PKCE methods, no registration or revocation', async () => {
    const res = await fetch(`${emu.url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const d = (await res.json()) as Record<string, unknown>;
    assert.equal(d['issuer'], emu.url);
    assert.equal((d['issuer'] as string).endsWith('/'), false);
    assert.equal(d['authorization_endpoint'], `${emu.url}/login/oauth/authorize`);
    assert.equal(d['token_endpoint'], `${emu.url}/login/oauth/access_token`);
    assert.equal(d['userinfo_endpoint'], `${emu.url}/login/oauth/userinfo`);
    assert.equal(d['jwks_uri'], `${emu.url}/login/oauth/keys`);
    assert.deepEqual(d['code_challenge_methods_supported'], ['plain', 'S256']);
    assert.deepEqual(d['scopes_supported'], ['openid', 'profile', 'email', 'groups']);
    assert.equal('registration_endpoint' in d, false);
    assert.equal('revocation_endpoint' in d, false);
    // And there is no RFC 7009 endpoint to call.
    const revoke = await fetch(`${emu.url}/login/oauth/revoke`, { method: 'POST', body: 'token=x' });
    assert.equal(revoke.status, 404);
  });

  it('publishes a JWKS whose key verifies the tokens’ signatures', async () => {
    const res = await fetch(`${emu.url}/login/oauth/keys`);
    const { keys } = (await res.json()) as { keys: Record<string, string>[] };
    assert.equal(keys.length, 1);
    const jwk = keys[0]!;
    assert.equal(jwk['kty'], 'RSA');
    assert.equal(jwk['alg'], 'RS256');
    assert.equal(jwk['use'], 'sig');
    const key = createPublicKey({ key: { kty: 'RSA', n: jwk['n']!, e: jwk['e']! }, format: 'jwk' });
    for (const token of [alice.access_token, alice.refresh_token]) {
      const [h, p, s] = token.split('.') as [string, string, string];
      assert.equal(jwtPart(token, 0)['kid'], jwk['kid']);
      assert.equal(verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), true);
      assert.equal(verify('sha256', Buffer.from(`${h}.${p}x`), key, Buffer.from(s, 'base64url')), false);
    }
  });
});

describe('request bodies', () => {
  it('refuses a body over 64 KiB with 413 and a bad JSON body with 400', async () => {
    const big = await fetch(`${emu.url}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=${'x'.repeat(70 * 1024)}`,
    });
    assert.equal(big.status, 413);
    const bad = await fetch(`${emu.url}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"grant_type":',
    });
    assert.equal(bad.status, 400);
  });
});

describe('request log', () => {
  it('records method, path, redacted query, status, scheme and login, never a credential', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const t = await loginTokens(e2, { ua });
      await api(e2, '/api/v1/user', { token: t.access_token, scheme: 'Bearer' });
      await api(e2, '/api/v1/version?code=s3cr3t&access_token=s3cr3t&refresh_token=s3cr3t&page=2');
      await api(e2, '/api/v1/user', { token: 'bogus' });
      await fetch(`${e2.url}/login/oauth/access_token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${CONFIDENTIAL.clientId}:x`).toString('base64')}` },
      });
      const log = e2.requests;
      const user = log.find((r) => r.path === '/api/v1/user' && r.status === 200);
      assert.deepEqual(
        { ...user, at: 0 },
        { method: 'GET', path: '/api/v1/user', query: '', status: 200, auth: 'bearer', user: 'alice', at: 0 },
      );
      const version = log.find((r) => r.path === '/api/v1/version');
      assert.equal(version?.query, 'code=&access_token=&refresh_token=&page=2');
      assert.equal(version?.auth, 'none');
      assert.equal(version?.user, undefined);
      const bogus = log.find((r) => r.path === '/api/v1/user' && r.status === 401);
      assert.equal(bogus?.auth, 'token');
      assert.equal(bogus?.user, undefined);
      assert.equal(
        log.find((r) => r.path === '/login/oauth/access_token' && r.status === 400)?.auth,
        'basic',
      );
      // Signed out: 303 to the login page; after sign-in: the consent page, for alice.
      const authorize = log.filter((r) => r.path === '/login/oauth/authorize');
      assert.deepEqual(
        authorize.map((r) => [r.status, r.user]),
        [
          [303, undefined],
          [200, 'alice'],
        ],
      );
      assert.match(authorize[0]?.query ?? '', /client_id=conf-app/);
      const grant = log.find((r) => r.path === '/login/oauth/grant');
      assert.equal(grant?.status, 303);
      const dump = JSON.stringify(log);
      for (const secret of [
        's3cr3t',
        t.access_token,
        t.refresh_token,
        CONFIDENTIAL.clientSecret,
        'alice-pw',
      ]) {
        assert.equal(dump.includes(secret), false, 'a credential reached the log');
      }
      assert.equal(typeof log[0]?.at, 'number');
    } finally {
      await e2.close();
    }
  });
});
