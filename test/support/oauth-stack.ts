// The Forgejo emulator and an in-process broker wired to each other, plus a scripted walk through
// authorize → consent → Forgejo login → callback with the cookie-jar user agent.
import assert from 'node:assert/strict';
import {
  type EmulatorOptions,
  type EmulatorUser,
  type ForgejoEmulator,
  startForgejoEmulator,
} from '../../emulator/forgejo/emulator.ts';
import {
  type BrokerHarness,
  FORGEJO_CLIENT_ID,
  FORGEJO_CLIENT_SECRET,
  form,
  freePort,
  pkce,
  startBrokerInProcess,
} from './oauth-harness.ts';
import { type Page, UserAgent } from './user-agent.ts';

export const USERS: EmulatorUser[] = [
  { id: 1001, login: 'alice', password: 'alice-pw', orgs: [{ name: 'acme', teams: ['devs'] }] },
  { id: 1002, login: 'bob', password: 'bob-pw', orgs: [{ name: 'other' }] },
  { id: 1003, login: 'carol', password: 'carol-pw' },
];

/** The emulator with the test users and the broker's OAuth app, redirecting to `brokerUrl`. */
export function startEmulatorFor(
  brokerUrl: string,
  extra: Partial<EmulatorOptions> = {},
): Promise<ForgejoEmulator> {
  return startForgejoEmulator({
    users: USERS,
    apps: [
      {
        clientId: FORGEJO_CLIENT_ID,
        clientSecret: FORGEJO_CLIENT_SECRET,
        name: 'forgejo-mcp-broker',
        redirectUris: [`${brokerUrl}/oauth/callback`],
      },
    ],
    ...extra,
  });
}

export type Stack = BrokerHarness & { emulator: ForgejoEmulator; closeAll(): Promise<void> };

export async function startStack(
  opts: { env?: Record<string, string>; emulator?: Partial<EmulatorOptions>; cimdExtraCa?: string[] } = {},
): Promise<Stack> {
  const port = await freePort();
  const emulator = await startEmulatorFor(`http://127.0.0.1:${port}`, opts.emulator);
  const h = await startBrokerInProcess({
    port,
    forgejoUrl: emulator.url,
    env: opts.env,
    cimdExtraCa: opts.cimdExtraCa,
  });
  return {
    ...h,
    emulator,
    closeAll: async () => {
      await h.close();
      await emulator.close();
    },
  };
}

export type FlowOptions = {
  clientId: string;
  redirectUri: string;
  login?: string;
  password?: string;
  scope?: string;
  resource?: string;
  state?: string;
  ua?: UserAgent;
  challenge?: string;
};

export function authorizeUrl(base: string, o: FlowOptions & { challenge: string }): string {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: o.clientId,
    redirect_uri: o.redirectUri,
    code_challenge: o.challenge,
    code_challenge_method: 'S256',
    state: o.state ?? 'client-state-1',
  });
  if (o.scope !== undefined) q.set('scope', o.scope);
  if (o.resource !== undefined) q.set('resource', o.resource);
  return `${base}/oauth/authorize?${q}`;
}

const atRedirect = (redirectUri: string) => (u: URL) => u.href.startsWith(`${redirectUri}?`);

/** Walks the browser part; returns the client redirect's parameters and the pages seen. */
export async function browserFlow(
  base: string,
  o: FlowOptions,
): Promise<{ params: URLSearchParams; verifier: string; consent: Page; ua: UserAgent; location: string }> {
  const ua = o.ua ?? new UserAgent();
  const { verifier, challenge } = o.challenge ? { verifier: '', challenge: o.challenge } : pkce();
  const stop = atRedirect(o.redirectUri);
  const consent = await ua.get(authorizeUrl(base, { ...o, challenge }), { stop });
  assert.equal(consent.status, 200, consent.body);
  let page = await ua.submit(consent, 'consent-form', { button: 'consent-approve', stop });
  if (page.location === undefined && page.body.includes('login-form')) {
    page = await ua.submit(page, 'login-form', {
      fields: { user_name: o.login ?? 'alice', password: o.password ?? `${o.login ?? 'alice'}-pw` },
      stop,
    });
  }
  if (page.location === undefined && page.body.includes('grant-form')) {
    page = await ua.submit(page, 'grant-form', { button: 'grant-approve', stop });
  }
  assert.ok(
    page.location,
    `flow did not reach the client redirect: ${page.status} ${page.url}\n${page.body.slice(0, 500)}`,
  );
  return { params: new URL(page.location).searchParams, verifier, consent, ua, location: page.location };
}

export type Tokens = {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope: string;
  token_type: string;
};

export async function tokenRequest(
  base: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  const init = form(fields);
  const res = await fetch(`${base}/oauth/token`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), ...headers },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** The whole flow up to tokens, for a client authenticating in the body (or public). */
export async function fullFlow(
  base: string,
  o: FlowOptions & { clientSecret?: string },
): Promise<{ tokens: Tokens; code: string; verifier: string; ua: UserAgent }> {
  const { params, verifier, ua } = await browserFlow(base, o);
  const code = params.get('code');
  assert.ok(code, `no code: ${params}`);
  const res = await tokenRequest(base, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: o.redirectUri,
    code_verifier: verifier,
    client_id: o.clientId,
    ...(o.clientSecret ? { client_secret: o.clientSecret } : {}),
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { tokens: res.body as unknown as Tokens, code, verifier, ua };
}
