// Shared set-up for the emulator's tests: a small world, a movable clock, the browser flow to a code.
import { createHash, randomBytes } from 'node:crypto';
import {
  type EmulatorOptions,
  type ForgejoEmulator,
  startForgejoEmulator,
} from '../../emulator/forgejo/emulator.ts';
import { type Page, UserAgent } from '../support/user-agent.ts';

export const CONFIDENTIAL = {
  clientId: 'conf-app',
  clientSecret: 'conf-secret',
  redirectUri: 'http://127.0.0.1:9/cb',
};
export const OTHER_CONFIDENTIAL = {
  clientId: 'other-app',
  clientSecret: 'other-secret',
  redirectUri: 'http://127.0.0.1:9/other',
};
export const PUBLIC = { clientId: 'public-app', redirectUri: 'http://127.0.0.1/native' };

export const USERS = {
  alice: { login: 'alice', password: 'alice-pw' },
  bob: { login: 'bob', password: 'bob-pw' },
};

export function worldOptions(): EmulatorOptions {
  return {
    users: [
      {
        id: 1,
        login: 'alice',
        password: USERS.alice.password,
        fullName: 'Alice A',
        email: 'alice@example.test',
        orgs: [{ name: 'acme', teams: ['Owners', 'devs'] }, { name: 'solo' }],
        repos: [
          {
            name: 'alpha',
            description: 'first',
            issues: [{ title: 'a1', body: 'one' }, { title: 'a2' }, { title: 'a3 closed', state: 'closed' }],
          },
          { name: 'secret', private: true, issues: [{ title: 's1' }] },
        ],
      },
      {
        id: 2,
        login: 'bob',
        password: USERS.bob.password,
        repos: [{ name: 'tools', private: true, issues: [{ title: 'b1' }] }],
      },
    ],
    apps: [
      {
        clientId: CONFIDENTIAL.clientId,
        clientSecret: CONFIDENTIAL.clientSecret,
        name: 'Confidential App',
        redirectUris: [CONFIDENTIAL.redirectUri, 'http://127.0.0.1:9/second', 'http://127.0.0.1/portless'],
      },
      {
        clientId: OTHER_CONFIDENTIAL.clientId,
        clientSecret: OTHER_CONFIDENTIAL.clientSecret,
        name: 'Other App',
        redirectUris: [OTHER_CONFIDENTIAL.redirectUri],
      },
      { clientId: PUBLIC.clientId, name: 'Native App', redirectUris: [PUBLIC.redirectUri] },
    ],
  };
}

export type Clock = { now: () => number; advance: (seconds: number) => void; set: (ms: number) => void };

export function clock(): Clock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (s) => {
      offset += s * 1000;
    },
    set: (ms) => {
      offset = ms - Date.now();
    },
  };
}

export async function startWorld(
  extra: Partial<EmulatorOptions> = {},
): Promise<{ emu: ForgejoEmulator; clock: Clock }> {
  const c = clock();
  const emu = await startForgejoEmulator({ ...worldOptions(), now: c.now, ...extra });
  return { emu, clock: c };
}

export function pkce(method: 'S256' | 'plain' = 'S256'): {
  verifier: string;
  challenge: string;
  method: string;
} {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
  return { verifier, challenge, method };
}

export type AuthorizeParams = {
  clientId: string;
  redirectUri: string;
  state?: string;
  scope?: string;
  nonce?: string;
  challenge?: string;
  method?: string;
  responseType?: string;
};

export function authorizeUrl(emu: ForgejoEmulator, p: AuthorizeParams): string {
  const q = new URLSearchParams({ response_type: p.responseType ?? 'code', client_id: p.clientId });
  q.set('redirect_uri', p.redirectUri);
  if (p.state !== undefined) q.set('state', p.state);
  if (p.scope !== undefined) q.set('scope', p.scope);
  if (p.nonce !== undefined) q.set('nonce', p.nonce);
  if (p.challenge !== undefined) q.set('code_challenge', p.challenge);
  if (p.method !== undefined) q.set('code_challenge_method', p.method);
  return `${emu.url}/login/oauth/authorize?${q}`;
}

/** Follow redirects on the emulator only; stop at anything elsewhere (a client's redirect_uri). */
export const onlyEmulator = (emu: ForgejoEmulator) => (url: URL) => url.origin !== new URL(emu.url).origin;

export async function signIn(emu: ForgejoEmulator, ua: UserAgent, who: { login: string; password: string }) {
  const form = await ua.get(`${emu.url}/user/login`);
  const after = await ua.submit(form, 'login-form', {
    fields: { user_name: who.login, password: who.password },
    button: 'login-submit',
  });
  if (!after.body.includes('id="signed-in-as"')) throw new Error(`sign-in as ${who.login} failed`);
}

/**
 * Browser part of the code flow: authorize (signing in when asked), approve the consent page if one
 * shows; returns the redirect to the client (its URL parsed) and whether consent was shown.
 */
export async function browserFlow(
  emu: ForgejoEmulator,
  ua: UserAgent,
  p: AuthorizeParams,
  who: { login: string; password: string } = USERS.alice,
  decision: 'grant-approve' | 'grant-deny' = 'grant-approve',
): Promise<{ redirect: URL; consentShown: boolean; page: Page }> {
  const stop = onlyEmulator(emu);
  let page = await ua.get(authorizeUrl(emu, p), { stop });
  if (page.location === undefined && page.body.includes('id="login-form"')) {
    page = await ua.submit(page, 'login-form', {
      fields: { user_name: who.login, password: who.password },
      button: 'login-submit',
      stop,
    });
  }
  let consentShown = false;
  if (page.location === undefined && page.body.includes('id="grant-form"')) {
    consentShown = true;
    page = await ua.submit(page, 'grant-form', { button: decision, stop });
  }
  if (page.location === undefined)
    throw new Error(`flow ended on ${page.url} with ${page.status}: ${page.body}`);
  return { redirect: new URL(page.location), consentShown, page };
}

export type TokenCall = {
  body: Record<string, string>;
  basic?: [string, string];
  asJson?: boolean;
};

export async function tokenRequest(
  emu: ForgejoEmulator,
  call: TokenCall,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {
    'content-type': call.asJson ? 'application/json' : 'application/x-www-form-urlencoded',
  };
  if (call.basic) headers['authorization'] = `Basic ${Buffer.from(call.basic.join(':')).toString('base64')}`;
  const res = await fetch(`${emu.url}/login/oauth/access_token`, {
    method: 'POST',
    headers,
    body: call.asJson ? JSON.stringify(call.body) : new URLSearchParams(call.body).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export type Tokens = { access_token: string; refresh_token: string; token_type: string; expires_in: number };

/** A full login of `who` through a confidential app: the token response. */
export async function loginTokens(
  emu: ForgejoEmulator,
  opts: { who?: { login: string; password: string }; scope?: string; ua?: UserAgent } = {},
): Promise<Tokens> {
  const ua = opts.ua ?? new UserAgent();
  const { verifier, challenge, method } = pkce();
  const { redirect } = await browserFlow(
    emu,
    ua,
    { ...CONFIDENTIAL, state: 'st', scope: opts.scope ?? '', challenge, method },
    opts.who ?? USERS.alice,
  );
  const code = redirect.searchParams.get('code');
  if (!code) throw new Error(`no code in ${redirect}`);
  const res = await tokenRequest(emu, {
    body: {
      grant_type: 'authorization_code',
      client_id: CONFIDENTIAL.clientId,
      client_secret: CONFIDENTIAL.clientSecret,
      redirect_uri: CONFIDENTIAL.redirectUri,
      code,
      code_verifier: verifier,
    },
  });
  if (res.status !== 200) throw new Error(`token exchange failed: ${JSON.stringify(res.body)}`);
  return res.body as Tokens;
}

export function refresh(emu: ForgejoEmulator, refreshToken: string, app = CONFIDENTIAL) {
  return tokenRequest(emu, {
    body: {
      grant_type: 'refresh_token',
      client_id: app.clientId,
      client_secret: app.clientSecret,
      refresh_token: refreshToken,
    },
  });
}

export async function api(
  emu: ForgejoEmulator,
  path: string,
  init: { token?: string; scheme?: string; authorization?: string; method?: string; json?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers: Record<string, string> = {};
  if (init.authorization) headers['authorization'] = init.authorization;
  else if (init.token) headers['authorization'] = `${init.scheme ?? 'token'} ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${emu.url}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

export function jwtPart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}
