// The same requests, sent to one Forgejo side, reduced to comparable one-line observations: the
// status with `error: error_description` for token errors, the shape of successes, the redirect
// parameters of the authorize endpoint, userinfo's fields and the API's 401.

import { walkForge } from '../support/forge-walk.ts';
import { pkce } from '../support/oauth-harness.ts';
import { UserAgent } from '../support/user-agent.ts';
import { type Forge, type ForgeApp, REDIRECTS } from './forges.ts';

type Tokens = { access_token: string; refresh_token: string };

export type Observations = Map<string, string>;

async function tokenCall(
  forge: Forge,
  fields: Record<string, string>,
): Promise<{ line: string; body: Record<string, unknown> }> {
  const res = await fetch(`${forge.url}/login/oauth/access_token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(fields).toString(),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { line: `${res.status} (not JSON) ${text.slice(0, 120)}`, body };
  }
  if (res.status === 200) {
    const keys = Object.keys(body).sort().join(',');
    return { line: `200 ${keys} token_type=${body['token_type']} expires_in=${body['expires_in']}`, body };
  }
  return { line: `${res.status} ${body['error']}: ${body['error_description']}`, body };
}

const grantIdOf = (jwt: string): number =>
  (JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { gnt: number }).gnt;

/** Runs every request of the differential test against `forge`. */
export async function observe(forge: Forge): Promise<Observations> {
  const seen: Observations = new Map();
  const ua = new UserAgent();
  const [r1, r2] = REDIRECTS;
  const atCallback = (u: URL) => u.href.startsWith(`${r1}?`) || u.href.startsWith(`${r2}?`);
  const authorizeUrl = (app: ForgeApp, o: { challenge: string; state: string; redirect?: string }) =>
    `${forge.url}/login/oauth/authorize?${new URLSearchParams({
      response_type: 'code',
      client_id: app.clientId,
      redirect_uri: o.redirect ?? r1,
      state: o.state,
      code_challenge: o.challenge,
      code_challenge_method: 'S256',
    })}`;
  const code = (app: ForgeApp, o: { challenge: string; state: string; redirect?: string }) =>
    walkForge(ua, authorizeUrl(app, o), forge.who, atCallback);
  const exchange = (c: string, verifier: string, extra: Record<string, string> = {}) =>
    tokenCall(forge, {
      grant_type: 'authorization_code',
      code: c,
      redirect_uri: r1,
      code_verifier: verifier,
      client_id: forge.app.clientId,
      client_secret: forge.app.clientSecret,
      ...extra,
    });
  const refresh = (token: string, extra: Record<string, string> = {}) =>
    tokenCall(forge, {
      grant_type: 'refresh_token',
      refresh_token: token,
      client_id: forge.app.clientId,
      client_secret: forge.app.clientSecret,
      ...extra,
    });

  // First authorization: the login form and the grant page.
  const p1 = pkce();
  const w1 = await code(forge.app, { challenge: p1.challenge, state: 's1' });
  seen.set('first authorize: pages', `login=${w1.sawLogin} grant=${w1.sawGrant}`);
  const c1 = w1.location.searchParams.get('code') ?? '';
  seen.set('first authorize: redirect', redirectShape(w1.location));

  // The token error table, each row with the still unused code c1 where a code is needed.
  const rows: [string, Promise<{ line: string }>][] = [
    ['code grant: unknown code', exchange('not-a-code', p1.verifier)],
    ['code grant: wrong verifier', exchange(c1, pkce().verifier)],
    ['code grant: missing verifier', exchange(c1, '')],
    ['code grant: wrong secret', exchange(c1, p1.verifier, { client_secret: 'wrong-secret' })],
    ['code grant: empty secret', exchange(c1, p1.verifier, { client_secret: '' })],
    ['code grant: unknown client', exchange(c1, p1.verifier, { client_id: 'no-such-client' })],
    ['code grant: another registered redirect_uri', exchange(c1, p1.verifier, { redirect_uri: r2 })],
    [
      'code grant: unregistered redirect_uri',
      exchange(c1, p1.verifier, { redirect_uri: 'http://127.0.0.1:9/elsewhere' }),
    ],
    ['code grant: no redirect_uri', exchange(c1, p1.verifier, { redirect_uri: '' })],
    [
      'code grant: code of another app',
      exchange(c1, p1.verifier, {
        client_id: forge.otherApp.clientId,
        client_secret: forge.otherApp.clientSecret,
      }),
    ],
    ['unsupported grant_type', tokenCall(forge, { grant_type: 'password', client_id: forge.app.clientId })],
  ];
  // One at a time: each must see c1 unused, and a forge may serialise on its database anyway.
  for (const [name, call] of rows) seen.set(name, (await call).line);

  const t1 = await exchange(c1, p1.verifier);
  seen.set('code grant: success', t1.line);
  seen.set('code grant: code used twice', (await exchange(c1, p1.verifier)).line);
  const tok1 = t1.body as unknown as Tokens;

  for (const [name, extra] of [
    ['refresh grant: wrong secret', { client_secret: 'wrong-secret' }],
    ['refresh grant: empty secret', { client_secret: '' }],
    ['refresh grant: unknown client', { client_id: 'no-such-client' }],
    [
      'refresh grant: refresh token of another app',
      { client_id: forge.otherApp.clientId, client_secret: forge.otherApp.clientSecret },
    ],
  ] as const) {
    seen.set(name, (await refresh(tok1.refresh_token, extra)).line);
  }
  seen.set('refresh grant: unparseable token', (await refresh('not.a.jwt')).line);
  seen.set('refresh grant: access token as refresh token', (await refresh(tok1.access_token)).line);
  const t2 = await refresh(tok1.refresh_token);
  seen.set('refresh grant: success', t2.line);
  seen.set('refresh grant: token already used', (await refresh(tok1.refresh_token)).line);
  const tok2 = t2.body as unknown as Tokens;

  // A second authorization by the same signed-in user: no grant page for a confidential app.
  const p2 = pkce();
  const w2 = await code(forge.app, { challenge: p2.challenge, state: 's2' });
  seen.set('second authorize (existing grant): pages', `login=${w2.sawLogin} grant=${w2.sawGrant}`);
  seen.set('second authorize (existing grant): redirect', redirectShape(w2.location));
  const p3 = pkce();
  const w3 = await walkForge(
    ua,
    authorizeUrl(forge.app, { challenge: p3.challenge, state: '' }),
    forge.who,
    atCallback,
  );
  seen.set('authorize with an empty state: redirect', redirectShape(w3.location));
  const t3 = await exchange(w2.location.searchParams.get('code') ?? '', p2.verifier);
  seen.set('second code exchange', t3.line);
  const tok3 = t3.body as unknown as Tokens;
  // Grant-wide rotation: the second login's exchange killed the refresh token of the first login.
  seen.set(
    'refresh token of the first login after the second login',
    (await refresh(tok2.refresh_token)).line,
  );
  seen.set(
    'API with the first login’s access token after the second login',
    await apiLine(forge, tok2.access_token),
  );

  // userinfo and the API's authentication.
  seen.set('userinfo with a valid token', await userinfoLine(forge, `Bearer ${tok3.access_token}`));
  seen.set('userinfo without a token', await userinfoLine(forge, undefined));
  seen.set('userinfo with a bad token', await userinfoLine(forge, 'Bearer not-a-token'));
  seen.set('GET /api/v1/version with a bad token', await apiLine(forge, 'not-a-token', '/version'));
  seen.set('GET /api/v1/version without a token', await apiLine(forge, undefined, '/version'));

  // The user revokes the app in their settings: every token of the grant fails.
  await forge.revoke(ua, grantIdOf(tok3.access_token));
  seen.set('refresh after the user revoked the app', (await refresh(tok3.refresh_token)).line);
  seen.set(
    'API with an access token after the user revoked the app',
    await apiLine(forge, tok3.access_token),
  );
  return seen;
}

function redirectShape(u: URL): string {
  const names = [...u.searchParams.keys()].sort();
  const state = u.searchParams.get('state');
  return `${u.origin}${u.pathname} params=${names.join(',')}${state === null ? '' : ` state=${JSON.stringify(state)}`}`;
}

async function userinfoLine(forge: Forge, authorization: string | undefined): Promise<string> {
  const res = await fetch(`${forge.url}/login/oauth/userinfo`, {
    headers: authorization ? { authorization } : {},
  });
  const type = (res.headers.get('content-type') ?? '').split(';')[0];
  const challenge = res.headers.get('www-authenticate');
  const text = await res.text();
  if (res.status !== 200)
    return `${res.status} ${type} ${JSON.stringify(text.trim())} www-authenticate=${challenge}`;
  const body = JSON.parse(text) as Record<string, unknown>;
  const groups = Array.isArray(body['groups'])
    ? (body['groups'] as string[]).sort().join(',')
    : String(body['groups']);
  return `200 ${type} ${Object.keys(body).sort().join(',')} sub-is-user-id=${body['sub'] === String(forge.userId)} preferred_username=${body['preferred_username']} groups=${groups}`;
}

async function apiLine(forge: Forge, token: string | undefined, path = '/user'): Promise<string> {
  const res = await fetch(`${forge.url}/api/v1${path}`, {
    headers: token ? { authorization: `token ${token}` } : {},
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `${res.status} (not JSON)`;
  }
  if (res.status === 200)
    return `200 ${Object.keys(body).includes('version') ? 'version' : `login=${body['login']}`}`;
  const url = typeof body['url'] === 'string' ? body['url'].replace(forge.url, '<root>') : body['url'];
  return `${res.status} ${JSON.stringify(body['message'])} url=${url}`;
}
