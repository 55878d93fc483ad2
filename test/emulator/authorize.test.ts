import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { findForm, formField, UserAgent } from '../support/user-agent.ts';
import {
  authorizeUrl,
  browserFlow,
  CONFIDENTIAL,
  onlyEmulator,
  PUBLIC,
  pkce,
  signIn,
  startWorld,
  USERS,
} from './fixture.ts';

let emu: ForgejoEmulator;
before(async () => {
  ({ emu } = await startWorld());
});
after(() => emu.close());

describe('sign-in', () => {
  it('shows the login form with a session cookie and a CSRF field', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${emu.url}/user/login?redirect_to=%2Fsomewhere`);
    assert.equal(page.status, 200);
    const form = findForm(page.body, 'login-form');
    assert.ok(form);
    assert.equal(form.method, 'post');
    assert.ok(formField(form, '_csrf'));
    assert.equal(formField(form, 'user_name'), '');
    assert.equal(formField(form, 'password'), '');
    assert.deepEqual(
      form.buttons.map((b) => b.id),
      ['login-submit'],
    );
    assert.ok(ua.cookie(emu.url, 'i_like_gitea'));
  });

  it('signs in, replaces the session cookie and 303s to redirect_to', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${emu.url}/user/login?redirect_to=%2F`);
    const before = ua.cookie(emu.url, 'i_like_gitea');
    const res = await ua.submit(page, 'login-form', {
      fields: { user_name: 'alice', password: USERS.alice.password },
      button: 'login-submit',
      stop: () => true,
    });
    assert.equal(res.status, 303);
    assert.equal(res.location, `${emu.url}/`);
    const afterCookie = ua.cookie(emu.url, 'i_like_gitea');
    assert.ok(afterCookie);
    assert.notEqual(afterCookie, before);
    const home = await ua.get(`${emu.url}/`);
    assert.match(home.body, /id="signed-in-as">alice</);
    // The pre-login session id (which an attacker could have planted) did not become alice's.
    const fixed = await fetch(`${emu.url}/`, { headers: { cookie: `i_like_gitea=${before}` } });
    assert.match(await fixed.text(), /Not signed in/);
  });

  it('refuses a wrong password with the form again and no session', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${emu.url}/user/login`);
    const res = await ua.submit(page, 'login-form', {
      fields: { user_name: 'alice', password: 'nope' },
      button: 'login-submit',
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /Username or password is incorrect\./);
    const home = await ua.get(`${emu.url}/`);
    assert.match(home.body, /Not signed in/);
  });

  it('refuses a login POST without the session CSRF token', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${emu.url}/user/login`);
    const res = await ua.submit(page, 'login-form', {
      fields: { user_name: 'alice', password: USERS.alice.password, _csrf: 'forged' },
    });
    assert.equal(res.status, 400);
  });

  it('never redirects off-site after sign-in', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${emu.url}/user/login?redirect_to=${encodeURIComponent('//evil.example/x')}`);
    const res = await ua.submit(page, 'login-form', {
      fields: { user_name: 'alice', password: USERS.alice.password },
      stop: () => true,
    });
    assert.equal(res.location, `${emu.url}/`);
  });
});

describe('authorize', () => {
  it('sends a signed-out user to the login page with the authorize URL as redirect_to', async () => {
    const ua = new UserAgent();
    const url = authorizeUrl(emu, { ...CONFIDENTIAL, state: 'x' });
    const res = await ua.fetch(url);
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location')!, emu.url);
    assert.equal(location.pathname, '/user/login');
    const back = new URL(location.searchParams.get('redirect_to')!, emu.url);
    assert.equal(back.toString(), url);
  });

  it('answers an unknown client with a 400 HTML page and no redirect', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.alice);
    const res = await ua.fetch(
      authorizeUrl(emu, { clientId: 'nope', redirectUri: CONFIDENTIAL.redirectUri }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await res.text(), /Client ID not registered/);
  });

  it('answers an unregistered redirect_uri with a 400 HTML page and no redirect', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.alice);
    for (const redirectUri of ['http://127.0.0.1:9/elsewhere', 'http://127.0.0.1:10/cb', '']) {
      const res = await ua.fetch(authorizeUrl(emu, { clientId: CONFIDENTIAL.clientId, redirectUri }));
      assert.equal(res.status, 400, redirectUri);
      assert.equal(res.headers.get('location'), null);
      assert.match(await res.text(), /Unregistered Redirect URI/);
    }
  });

  it('redirects later errors to the client with error, error_description and state', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.alice);
    const cases = [
      {
        p: { ...CONFIDENTIAL, responseType: 'token', state: 's1' },
        error: 'unsupported_response_type',
        description: 'Only code response type is supported.',
      },
      {
        p: { ...PUBLIC, state: 's2' },
        error: 'invalid_request',
        description: 'PKCE is required for public clients',
      },
      {
        p: { ...CONFIDENTIAL, state: 's3', challenge: 'abc', method: 'S512' },
        error: 'invalid_request',
        description: 'unsupported code challenge method',
      },
    ];
    for (const c of cases) {
      const res = await ua.fetch(authorizeUrl(emu, c.p));
      assert.equal(res.status, 303, c.error);
      const to = new URL(res.headers.get('location')!);
      assert.equal(`${to.origin}${to.pathname}`, c.p.redirectUri);
      assert.equal(to.searchParams.get('error'), c.error);
      assert.equal(to.searchParams.get('error_description'), c.description);
      assert.equal(to.searchParams.get('state'), c.p.state);
    }
  });

  it('appends state to an error redirect even when empty', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.alice);
    const res = await ua.fetch(authorizeUrl(emu, { ...CONFIDENTIAL, responseType: 'token' }));
    const to = new URL(res.headers.get('location')!);
    assert.equal(to.searchParams.get('state'), '');
  });

  it('adds code and state to the client redirect, keeping the loopback port', async () => {
    const ua = new UserAgent();
    const { challenge, method } = pkce();
    const { redirect, consentShown } = await browserFlow(emu, ua, {
      clientId: PUBLIC.clientId,
      redirectUri: 'http://127.0.0.1:5555/native',
      state: 'keep me',
      challenge,
      method,
    });
    assert.ok(consentShown);
    assert.equal(redirect.origin, 'http://127.0.0.1:5555');
    assert.equal(redirect.searchParams.get('state'), 'keep me');
    assert.ok(redirect.searchParams.get('code'));
  });
});

describe('redirect URI matching', () => {
  async function accepted(clientId: string, redirectUri: string, method = 'S256'): Promise<boolean> {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.alice);
    const res = await ua.fetch(
      authorizeUrl(emu, { clientId, redirectUri, challenge: 'c'.repeat(43), method }),
    );
    await res.body?.cancel();
    return res.status !== 400;
  }

  it('compares the whole string ASCII case-insensitively, ignoring a trailing slash', async () => {
    assert.equal(await accepted(CONFIDENTIAL.clientId, CONFIDENTIAL.redirectUri), true);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'HTTP://127.0.0.1:9/CB'), true);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1:9/cb/'), true);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1:9/cb?x=1'), false);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1:9/cb/x'), false);
  });

  it('relaxes the port only for public clients and only on loopback IP literals', async () => {
    assert.equal(await accepted(PUBLIC.clientId, 'http://127.0.0.1:40000/native'), true);
    assert.equal(await accepted(PUBLIC.clientId, 'http://127.0.0.1/native'), true);
    assert.equal(await accepted(PUBLIC.clientId, 'http://localhost:40000/native'), false);
    assert.equal(await accepted(PUBLIC.clientId, 'https://127.0.0.1:40000/native'), false);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1:10/cb'), false);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1/portless'), true);
    assert.equal(await accepted(CONFIDENTIAL.clientId, 'http://127.0.0.1:4000/portless'), false);
  });
});

describe('app settings', () => {
  it('setRedirectUris replaces the registered redirect URIs', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      await signIn(e2, ua, USERS.alice);
      const status = async (redirectUri: string) => {
        const res = await ua.fetch(authorizeUrl(e2, { clientId: CONFIDENTIAL.clientId, redirectUri }));
        await res.body?.cancel();
        return res.status;
      };
      assert.equal(await status('http://127.0.0.1:4321/oauth/callback'), 400);
      e2.setRedirectUris(CONFIDENTIAL.clientId, ['http://127.0.0.1:4321/oauth/callback']);
      assert.equal(await status('http://127.0.0.1:4321/oauth/callback'), 200);
      assert.equal(await status(CONFIDENTIAL.redirectUri), 400);
      assert.throws(() => e2.setRedirectUris('nope', []), /no OAuth app/);
    } finally {
      await e2.close();
    }
  });
});

describe('consent', () => {
  it('shows the grant form with the contract fields and buttons', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      await signIn(e2, ua, USERS.alice);
      const page = await ua.get(
        authorizeUrl(e2, { ...CONFIDENTIAL, state: 'st', scope: 'read:user', nonce: 'n1' }),
        { stop: onlyEmulator(e2) },
      );
      assert.equal(page.status, 200);
      const form = findForm(page.body, 'grant-form');
      assert.ok(form);
      assert.equal(form.action, '/login/oauth/grant');
      assert.equal(form.method, 'post');
      assert.equal(formField(form, 'client_id'), CONFIDENTIAL.clientId);
      assert.equal(formField(form, 'state'), 'st');
      assert.equal(formField(form, 'scope'), 'read:user');
      assert.equal(formField(form, 'nonce'), 'n1');
      assert.equal(formField(form, 'redirect_uri'), CONFIDENTIAL.redirectUri);
      assert.ok(formField(form, '_csrf'));
      assert.deepEqual(form.buttons, [
        { id: 'grant-approve', name: 'granted', value: 'true' },
        { id: 'grant-deny', name: 'granted', value: 'false' },
      ]);
    } finally {
      await e2.close();
    }
  });

  it('denial redirects with access_denied and state', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const { redirect } = await browserFlow(
        e2,
        new UserAgent(),
        { ...CONFIDENTIAL, state: 'den' },
        USERS.alice,
        'grant-deny',
      );
      assert.equal(redirect.searchParams.get('error'), 'access_denied');
      assert.equal(redirect.searchParams.get('error_description'), 'the request is denied');
      assert.equal(redirect.searchParams.get('state'), 'den');
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), undefined);
    } finally {
      await e2.close();
    }
  });

  it('refuses a grant POST whose fields differ from the authorize request', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.bob);
    const page = await ua.get(authorizeUrl(emu, { ...CONFIDENTIAL, state: 'orig' }), {
      stop: onlyEmulator(emu),
    });
    const res = await ua.submit(page, 'grant-form', {
      button: 'grant-approve',
      fields: { state: 'changed' },
      stop: onlyEmulator(emu),
    });
    assert.equal(res.status, 400);
    assert.equal(res.location, undefined);
  });

  it('refuses a grant POST whose redirect_uri differs, even to another registered one', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.bob);
    const page = await ua.get(authorizeUrl(emu, { ...CONFIDENTIAL, state: 'r' }), {
      stop: onlyEmulator(emu),
    });
    const res = await ua.submit(page, 'grant-form', {
      button: 'grant-approve',
      fields: { redirect_uri: 'http://127.0.0.1:9/second' },
      stop: onlyEmulator(emu),
    });
    assert.equal(res.status, 400);
    assert.equal(res.location, undefined);
  });

  it('refuses a grant POST without the CSRF token', async () => {
    const ua = new UserAgent();
    await signIn(emu, ua, USERS.bob);
    const page = await ua.get(authorizeUrl(emu, { ...CONFIDENTIAL, state: 'c' }), {
      stop: onlyEmulator(emu),
    });
    const res = await ua.submit(page, 'grant-form', {
      button: 'grant-approve',
      fields: { _csrf: 'forged' },
      stop: onlyEmulator(emu),
    });
    assert.equal(res.status, 400);
  });

  it('a confidential client with an existing grant gets a code at once, state only if non-empty', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const first = await browserFlow(e2, ua, { ...CONFIDENTIAL, state: 'one', scope: 'read:user' });
      assert.equal(first.consentShown, true);
      const second = await browserFlow(e2, ua, { ...CONFIDENTIAL, state: 'two', scope: 'read:user' });
      assert.equal(second.consentShown, false);
      assert.equal(second.page.status, 303);
      assert.equal(second.redirect.searchParams.get('state'), 'two');
      assert.ok(second.redirect.searchParams.get('code'));
      const third = await browserFlow(e2, ua, { ...CONFIDENTIAL, scope: 'read:user' });
      assert.equal(third.consentShown, false);
      assert.equal(third.redirect.searchParams.has('state'), false);
      assert.deepEqual([...third.redirect.searchParams.keys()], ['code']);
    } finally {
      await e2.close();
    }
  });

  it('a confidential client with an existing grant and another scope gets server_error, no code', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const first = await browserFlow(e2, ua, { ...CONFIDENTIAL, state: 'one', scope: 'read:user' });
      assert.ok(first.redirect.searchParams.get('code'));
      const second = await browserFlow(e2, ua, {
        ...CONFIDENTIAL,
        state: 'two',
        scope: 'read:user write:issue',
      });
      assert.equal(second.consentShown, false);
      assert.equal(second.redirect.searchParams.get('error'), 'server_error');
      assert.equal(
        second.redirect.searchParams.get('error_description'),
        'a grant exists with different scope',
      );
      assert.equal(second.redirect.searchParams.get('state'), 'two');
      assert.equal(second.redirect.searchParams.has('code'), false);
    } finally {
      await e2.close();
    }
  });

  it('a public client sees the consent page every time', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      for (let i = 0; i < 2; i++) {
        const { challenge, method } = pkce();
        const flow = await browserFlow(e2, ua, { ...PUBLIC, state: `p${i}`, challenge, method });
        assert.equal(flow.consentShown, true);
        assert.ok(flow.redirect.searchParams.get('code'));
      }
    } finally {
      await e2.close();
    }
  });

  it('approving with a scope other than the existing grant’s is a server_error redirect', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const p1 = pkce();
      const first = await browserFlow(e2, ua, {
        ...PUBLIC,
        state: 'a',
        scope: 'read:user',
        challenge: p1.challenge,
        method: p1.method,
      });
      assert.ok(first.redirect.searchParams.get('code'));
      const p2 = pkce();
      const second = await browserFlow(e2, ua, {
        ...PUBLIC,
        state: 'b',
        scope: 'read:user read:repository',
        challenge: p2.challenge,
        method: p2.method,
      });
      assert.equal(second.consentShown, true);
      assert.equal(second.redirect.searchParams.get('error'), 'server_error');
      assert.equal(
        second.redirect.searchParams.get('error_description'),
        'a grant exists with different scope',
      );
      assert.equal(second.redirect.searchParams.get('state'), 'b');
    } finally {
      await e2.close();
    }
  });
});
