// A user's whole sign-in for a fresh public client with a choice on the consent page, walked with
// the cookie-jar user agent; returns the access token and the consent page's HTML.
import assert from 'node:assert/strict';
import { pkce, registerClient } from './oauth-harness.ts';
import { authorizeUrl, type Stack, tokenRequest } from './oauth-stack.ts';
import { UserAgent } from './user-agent.ts';

const REDIRECT = 'http://127.0.0.1:47311/cb';

export async function signInAs(
  s: Stack,
  o: { mode?: string; clientName?: string; login?: string } = {},
): Promise<{ token: string; consent: string; clientId: string }> {
  const c = await registerClient(s.url, {
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
    client_name: o.clientName ?? `app ${o.mode ?? ''}`,
  });
  const login = o.login ?? 'alice';
  const { verifier, challenge } = pkce();
  const ua = new UserAgent();
  const stop = (u: URL) => u.href.startsWith(`${REDIRECT}?`);
  const consent = await ua.get(
    authorizeUrl(s.url, { clientId: c.client_id, redirectUri: REDIRECT, challenge }),
    {
      stop,
    },
  );
  let page = await ua.submit(consent, 'consent-form', {
    button: 'consent-approve',
    stop,
    ...(o.mode ? { fields: { mode: o.mode } } : {}),
  });
  if (page.location === undefined)
    page = await ua.submit(page, 'login-form', {
      fields: { user_name: login, password: `${login}-pw` },
      stop,
    });
  if (page.location === undefined)
    page = await ua.submit(page, 'grant-form', { button: 'grant-approve', stop });
  assert.ok(page.location, `no redirect to the client: ${page.status} ${page.body.slice(0, 300)}`);
  const code = new URL(page.location).searchParams.get('code') as string;
  const t = await tokenRequest(s.url, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: c.client_id,
  });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  return { token: t.body['access_token'] as string, consent: consent.body, clientId: c.client_id };
}
