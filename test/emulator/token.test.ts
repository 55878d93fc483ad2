import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { UserAgent } from '../support/user-agent.ts';
import {
  api,
  browserFlow,
  type Clock,
  CONFIDENTIAL,
  jwtPart,
  loginTokens,
  OTHER_CONFIDENTIAL,
  PUBLIC,
  pkce,
  refresh,
  startWorld,
  tokenRequest,
  USERS,
} from './fixture.ts';

let emu: ForgejoEmulator;
let clock: Clock;
before(async () => {
  ({ emu, clock } = await startWorld());
});
after(() => emu.close());

/** A fresh code for alice through the confidential app, with its PKCE verifier. */
async function freshCode(
  p: { redirectUri?: string; method?: 'S256' | 'plain'; pkce?: boolean; who?: typeof USERS.alice } = {},
) {
  const ch = pkce(p.method ?? 'S256');
  const withPkce = p.pkce ?? true;
  const { redirect } = await browserFlow(
    emu,
    new UserAgent(),
    {
      ...CONFIDENTIAL,
      redirectUri: p.redirectUri ?? CONFIDENTIAL.redirectUri,
      state: 's',
      ...(withPkce ? { challenge: ch.challenge, method: ch.method } : {}),
    },
    p.who ?? USERS.alice,
  );
  const code = redirect.searchParams.get('code');
  assert.ok(code, `no code in ${redirect}`);
  return { code, verifier: ch.verifier };
}

const codeBody = (code: string, verifier: string, extra: Record<string, string> = {}) => ({
  grant_type: 'authorization_code',
  client_id: CONFIDENTIAL.clientId,
  client_secret: CONFIDENTIAL.clientSecret,
  redirect_uri: CONFIDENTIAL.redirectUri,
  code,
  code_verifier: verifier,
  ...extra,
});

describe('token endpoint: every error is 400 with Forgejo’s exact error and description', () => {
  type Row = {
    name: string;
    error: string;
    description: string;
    call: () => Promise<Record<string, string>>;
  };
  const rows: Row[] = [
    {
      name: 'unknown code',
      error: 'unauthorized_client',
      description: 'client is not authorized',
      call: async () => {
        const { verifier } = await freshCode();
        return codeBody('not-a-code', verifier);
      },
    },
    {
      name: 'used code',
      error: 'unauthorized_client',
      description: 'client is not authorized',
      call: async () => {
        const { code, verifier } = await freshCode();
        assert.equal((await tokenRequest(emu, { body: codeBody(code, verifier) })).status, 200);
        return codeBody(code, verifier);
      },
    },
    {
      name: 'wrong code_verifier',
      error: 'unauthorized_client',
      description: 'failed PKCE code challenge',
      call: async () => {
        const { code } = await freshCode();
        return codeBody(code, pkce().verifier);
      },
    },
    {
      name: 'missing code_verifier',
      error: 'unauthorized_client',
      description: 'failed PKCE code challenge',
      call: async () => {
        const { code } = await freshCode();
        const body: Record<string, string> = codeBody(code, '');
        delete body['code_verifier'];
        return body;
      },
    },
    {
      name: 'wrong client secret on the code grant',
      error: 'unauthorized_client',
      description: 'invalid client secret',
      call: async () => {
        const { code, verifier } = await freshCode();
        return codeBody(code, verifier, { client_secret: 'wrong' });
      },
    },
    {
      name: 'wrong client secret on the refresh grant',
      error: 'invalid_client',
      description: 'invalid client secret',
      call: async () => {
        const t = await loginTokens(emu);
        return {
          grant_type: 'refresh_token',
          client_id: CONFIDENTIAL.clientId,
          client_secret: 'wrong',
          refresh_token: t.refresh_token,
        };
      },
    },
    {
      name: 'unknown client',
      error: 'invalid_client',
      description: "cannot load client with client id: 'nobody'",
      call: async () => {
        const { code, verifier } = await freshCode();
        return codeBody(code, verifier, { client_id: 'nobody' });
      },
    },
    {
      name: 'redirect_uri differs from the authorize request (another registered one)',
      error: 'unauthorized_client',
      description: 'redirect_uri does not match the authorization request',
      call: async () => {
        const { code, verifier } = await freshCode();
        return codeBody(code, verifier, { redirect_uri: 'http://127.0.0.1:9/second' });
      },
    },
    {
      name: 'unparseable refresh token',
      error: 'unauthorized_client',
      description: 'unable to parse refresh token',
      call: async () => ({
        grant_type: 'refresh_token',
        client_id: CONFIDENTIAL.clientId,
        client_secret: CONFIDENTIAL.clientSecret,
        refresh_token: 'garbage.garbage.garbage',
      }),
    },
    {
      name: 'expired refresh token',
      error: 'unauthorized_client',
      description: 'unable to parse refresh token',
      call: async () => {
        const t = await loginTokens(emu);
        clock.advance(730 * 3600 + 1);
        return {
          grant_type: 'refresh_token',
          client_id: CONFIDENTIAL.clientId,
          client_secret: CONFIDENTIAL.clientSecret,
          refresh_token: t.refresh_token,
        };
      },
    },
    {
      name: 'grant revoked by the user',
      error: 'invalid_grant',
      description: 'grant does not exist',
      call: async () => {
        const t = await loginTokens(emu);
        emu.revokeGrant('alice', CONFIDENTIAL.clientId);
        return {
          grant_type: 'refresh_token',
          client_id: CONFIDENTIAL.clientId,
          client_secret: CONFIDENTIAL.clientSecret,
          refresh_token: t.refresh_token,
        };
      },
    },
    {
      name: 'refresh token already used',
      error: 'unauthorized_client',
      description: 'token was already used',
      call: async () => {
        const t = await loginTokens(emu);
        assert.equal((await refresh(emu, t.refresh_token)).status, 200);
        return {
          grant_type: 'refresh_token',
          client_id: CONFIDENTIAL.clientId,
          client_secret: CONFIDENTIAL.clientSecret,
          refresh_token: t.refresh_token,
        };
      },
    },
    {
      name: 'refresh token of another client',
      error: 'invalid_grant',
      description: 'refresh token was not issued to this client',
      call: async () => {
        const t = await loginTokens(emu);
        return {
          grant_type: 'refresh_token',
          client_id: OTHER_CONFIDENTIAL.clientId,
          client_secret: OTHER_CONFIDENTIAL.clientSecret,
          refresh_token: t.refresh_token,
        };
      },
    },
    {
      name: 'other grant_type',
      error: 'unsupported_grant_type',
      description: 'Only refresh_token or authorization_code grant type is supported',
      call: async () => ({
        grant_type: 'client_credentials',
        client_id: CONFIDENTIAL.clientId,
        client_secret: CONFIDENTIAL.clientSecret,
      }),
    },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      const body = await row.call();
      for (const asJson of [false, true]) {
        const res = await tokenRequest(emu, { body, asJson });
        assert.equal(res.status, 400);
        assert.deepEqual(res.body, { error: row.error, error_description: row.description });
      }
      clock.set(Date.now());
    });
  }
});

describe('token endpoint: success and client authentication', () => {
  it('answers a code exchange with exactly access_token, token_type, expires_in, refresh_token', async () => {
    const { code, verifier } = await freshCode();
    const res = await tokenRequest(emu, { body: codeBody(code, verifier) });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body).sort(), [
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ]);
    assert.equal(res.body['token_type'], 'bearer');
    assert.equal(res.body['expires_in'], 3600);
  });

  it('issues RS256 JWTs with gnt/tt/cnt/exp/iat and nothing else', async () => {
    const t = await loginTokens(emu);
    const head = jwtPart(t.access_token, 0);
    assert.equal(head['alg'], 'RS256');
    assert.equal(typeof head['kid'], 'string');
    const access = jwtPart(t.access_token, 1);
    const refreshClaims = jwtPart(t.refresh_token, 1);
    assert.deepEqual(Object.keys(access).sort(), ['exp', 'gnt', 'iat', 'tt']);
    assert.deepEqual(Object.keys(refreshClaims).sort(), ['cnt', 'exp', 'gnt', 'iat', 'tt']);
    assert.equal(access['tt'], 0);
    assert.equal(refreshClaims['tt'], 1);
    assert.equal(access['gnt'], refreshClaims['gnt']);
    assert.equal((access['exp'] as number) - (access['iat'] as number), 3600);
    assert.equal((refreshClaims['exp'] as number) - (refreshClaims['iat'] as number), 730 * 3600);
    assert.equal(refreshClaims['cnt'], emu.grantCount('alice', CONFIDENTIAL.clientId));
  });

  it('accepts a JSON body', async () => {
    const { code, verifier } = await freshCode();
    const res = await tokenRequest(emu, { body: codeBody(code, verifier), asJson: true });
    assert.equal(res.status, 200);
    assert.equal(typeof res.body['access_token'], 'string');
  });

  it('accepts client_secret_basic', async () => {
    const { code, verifier } = await freshCode();
    const body: Record<string, string> = codeBody(code, verifier);
    delete body['client_id'];
    delete body['client_secret'];
    const res = await tokenRequest(emu, { body, basic: [CONFIDENTIAL.clientId, CONFIDENTIAL.clientSecret] });
    assert.equal(res.status, 200);
  });

  it('refuses body and Basic credentials that differ, and a malformed Basic header', async () => {
    const { code, verifier } = await freshCode();
    const secret = await tokenRequest(emu, {
      body: codeBody(code, verifier),
      basic: [CONFIDENTIAL.clientId, 'other-secret'],
    });
    assert.deepEqual(secret.body, {
      error: 'invalid_request',
      error_description: 'client_secret in request body inconsistent with Authorization header',
    });
    const id = await tokenRequest(emu, {
      body: codeBody(code, verifier),
      basic: [OTHER_CONFIDENTIAL.clientId, CONFIDENTIAL.clientSecret],
    });
    assert.deepEqual(id.body, {
      error: 'invalid_request',
      error_description: 'client_id in request body inconsistent with Authorization header',
    });
    const res = await fetch(`${emu.url}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic bm9jb2xvbg==' },
      body: new URLSearchParams(codeBody(code, verifier)),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      error: 'invalid_request',
      error_description: 'cannot parse basic auth header',
    });
    // None of the failures consumed the code.
    assert.equal((await tokenRequest(emu, { body: codeBody(code, verifier) })).status, 200);
  });

  it('says "invalid empty client secret" when a confidential client sends none', async () => {
    const { code, verifier } = await freshCode();
    const res = await tokenRequest(emu, { body: codeBody(code, verifier, { client_secret: '' }) });
    assert.deepEqual(res.body, {
      error: 'unauthorized_client',
      error_description: 'invalid empty client secret',
    });
  });

  it('quotes an unknown client id Go-style on the refresh grant', async () => {
    const res = await tokenRequest(emu, {
      body: { grant_type: 'refresh_token', client_id: 'nobody', refresh_token: 'x' },
    });
    assert.deepEqual(res.body, {
      error: 'invalid_client',
      error_description: 'cannot load client with client id: "nobody"',
    });
  });

  it('adds an id_token when the scope has openid', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ch = pkce();
      const { redirect } = await browserFlow(e2, new UserAgent(), {
        ...CONFIDENTIAL,
        scope: 'openid profile email groups',
        nonce: 'n-123',
        challenge: ch.challenge,
        method: ch.method,
      });
      const res = await tokenRequest(e2, {
        body: {
          grant_type: 'authorization_code',
          client_id: CONFIDENTIAL.clientId,
          client_secret: CONFIDENTIAL.clientSecret,
          redirect_uri: CONFIDENTIAL.redirectUri,
          code: redirect.searchParams.get('code')!,
          code_verifier: ch.verifier,
        },
      });
      assert.equal(res.status, 200);
      assert.equal('scope' in res.body, false);
      const id = jwtPart(res.body['id_token'] as string, 1);
      assert.equal(id['iss'], e2.url);
      assert.equal(id['sub'], '1');
      assert.deepEqual(id['aud'], [CONFIDENTIAL.clientId]);
      assert.equal(id['nonce'], 'n-123');
      assert.equal(id['preferred_username'], 'alice');
      assert.equal(id['email'], 'alice@example.test');
      assert.deepEqual(id['groups'], ['acme', 'acme:owners', 'acme:devs', 'solo']);
    } finally {
      await e2.close();
    }
  });
});

describe('codes and PKCE', () => {
  it('codes have no time expiry', async () => {
    const { code, verifier } = await freshCode();
    clock.advance(30 * 24 * 3600);
    try {
      assert.equal((await tokenRequest(emu, { body: codeBody(code, verifier) })).status, 200);
    } finally {
      clock.set(Date.now());
    }
  });

  it('accepts plain PKCE, and checks its verifier', async () => {
    const { code, verifier } = await freshCode({ method: 'plain' });
    const wrong = await tokenRequest(emu, { body: codeBody(code, `${verifier}x`) });
    assert.deepEqual(wrong.body, {
      error: 'unauthorized_client',
      error_description: 'failed PKCE code challenge',
    });
    assert.equal((await tokenRequest(emu, { body: codeBody(code, verifier) })).status, 200);
  });

  it('lets a confidential client go without PKCE', async () => {
    const { code } = await freshCode({ pkce: false });
    const body: Record<string, string> = codeBody(code, '');
    delete body['code_verifier'];
    assert.equal((await tokenRequest(emu, { body })).status, 200);
  });

  it('lets a public client exchange and refresh without a secret', async () => {
    const ch = pkce();
    const { redirect } = await browserFlow(emu, new UserAgent(), {
      ...PUBLIC,
      redirectUri: 'http://127.0.0.1:47001/native',
      challenge: ch.challenge,
      method: ch.method,
    });
    const res = await tokenRequest(emu, {
      body: {
        grant_type: 'authorization_code',
        client_id: PUBLIC.clientId,
        redirect_uri: 'http://127.0.0.1:47001/native',
        code: redirect.searchParams.get('code')!,
        code_verifier: ch.verifier,
      },
    });
    assert.equal(res.status, 200);
    const again = await tokenRequest(emu, {
      body: {
        grant_type: 'refresh_token',
        client_id: PUBLIC.clientId,
        refresh_token: res.body['refresh_token'] as string,
      },
    });
    assert.equal(again.status, 200);
  });
});

describe('grant-wide refresh rotation', () => {
  it('every code exchange and refresh bumps the grant counter and kills all earlier refresh tokens', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const first = await loginTokens(e2, { ua });
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), 2); // created at 1, bumped by the exchange
      const r1 = await refresh(e2, first.refresh_token);
      assert.equal(r1.status, 200);
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), 3);
      // A second login of the same user through the same app kills the first login's refresh token.
      const second = await loginTokens(e2, { ua });
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), 4);
      for (const stale of [first.refresh_token, r1.body['refresh_token'] as string]) {
        assert.deepEqual((await refresh(e2, stale)).body, {
          error: 'unauthorized_client',
          error_description: 'token was already used',
        });
      }
      // Access tokens carry no counter: the first login's one still works until it expires.
      assert.equal((await api(e2, '/api/v1/user', { token: first.access_token })).status, 200);
      assert.equal((await refresh(e2, second.refresh_token)).status, 200);
      // Another user's grant is separate.
      await loginTokens(e2, { who: USERS.bob });
      assert.equal(e2.grantCount('bob', CONFIDENTIAL.clientId), 2);
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), 5);
    } finally {
      await e2.close();
    }
  });

  it('an access token is no refresh token (it carries no counter)', async () => {
    const t = await loginTokens(emu);
    assert.deepEqual((await refresh(emu, t.access_token)).body, {
      error: 'unauthorized_client',
      error_description: 'token was already used',
    });
  });
});

describe('revocation by the user', () => {
  it('kills access tokens, refresh tokens and unused codes of the grant at once', async () => {
    const { emu: e2 } = await startWorld();
    try {
      const ua = new UserAgent();
      const t = await loginTokens(e2, { ua });
      assert.equal((await api(e2, '/api/v1/user', { token: t.access_token })).status, 200);
      const ch = pkce();
      const { redirect } = await browserFlow(e2, ua, {
        ...CONFIDENTIAL,
        challenge: ch.challenge,
        method: ch.method,
      });
      e2.revokeGrant('alice', CONFIDENTIAL.clientId);
      assert.equal(e2.grantCount('alice', CONFIDENTIAL.clientId), undefined);
      const res = await api(e2, '/api/v1/user', { token: t.access_token });
      assert.equal(res.status, 401);
      assert.deepEqual(res.body, {
        message: 'user does not exist [uid: 0, name: ]',
        url: `${e2.url}/api/swagger`,
      });
      assert.deepEqual((await refresh(e2, t.refresh_token)).body, {
        error: 'invalid_grant',
        error_description: 'grant does not exist',
      });
      const code = await tokenRequest(e2, {
        body: {
          grant_type: 'authorization_code',
          client_id: CONFIDENTIAL.clientId,
          client_secret: CONFIDENTIAL.clientSecret,
          redirect_uri: CONFIDENTIAL.redirectUri,
          code: redirect.searchParams.get('code')!,
          code_verifier: ch.verifier,
        },
      });
      assert.deepEqual(code.body, {
        error: 'unauthorized_client',
        error_description: 'client is not authorized',
      });
      // The next authorize asks for consent again and starts a new grant.
      const again = await browserFlow(e2, ua, {
        ...CONFIDENTIAL,
        challenge: ch.challenge,
        method: ch.method,
      });
      assert.equal(again.consentShown, true);
    } finally {
      await e2.close();
    }
  });
});
