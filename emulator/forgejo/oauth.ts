// Forgejo as OAuth2/OIDC provider: sign-in, authorize, consent, token, userinfo, discovery, JWKS.
// Error texts and their order of checks follow Forgejo's routers/web/auth/oauth2_provider.go.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { EmulatorApp } from './emulator.ts';
import { html, type Incoming, json, type Reply, redirect, text } from './http.ts';
import { signJwt, verifyJwt } from './jwt.ts';
import { consentPage, grantErrorPage, homePage, loginPage } from './pages.ts';
import {
  type Grant,
  grantOf,
  randomToken,
  remember,
  type Session,
  seconds,
  type User,
  userById,
  userByLogin,
  type World,
} from './state.ts';

export const SESSION_COOKIE = 'i_like_gitea';

// ---------------------------------------------------------------------------------------------
// Browser session

export function sessionOf(world: World, req: Incoming): Session | undefined {
  const id = req.cookies.get(SESSION_COOKIE);
  return id === undefined ? undefined : world.sessions.get(id);
}

function newSession(world: World, userId?: number): Session {
  const s: Session = { id: randomToken(), csrf: randomToken(24), userId };
  remember(world.sessions, s.id, s);
  return s;
}

const sessionCookie = (s: Session): string => `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Lax`;

const signedInUser = (world: World, s: Session | undefined): User | undefined =>
  s?.userId === undefined ? undefined : userById(world, s.userId);

/** Only same-site paths, as Forgejo refuses risky redirect_to values. */
const safeRedirectTo = (to: string): string => (/^\/(?![/\\])/.test(to) ? to : '/');

export function home(world: World, req: Incoming): Reply {
  const user = signedInUser(world, sessionOf(world, req));
  return { ...html(200, homePage(user?.login)), user: user?.login };
}

export function loginForm(world: World, req: Incoming): Reply {
  const redirectTo = req.query.get('redirect_to') ?? '';
  let session = sessionOf(world, req);
  const user = signedInUser(world, session);
  if (user) return { ...redirect(safeRedirectTo(redirectTo)), user: user.login };
  const headers: Record<string, string> = {};
  if (!session) {
    session = newSession(world);
    headers['set-cookie'] = sessionCookie(session);
  }
  return html(200, loginPage(session.csrf, redirectTo), headers);
}

export function loginSubmit(world: World, req: Incoming): Reply {
  const session = sessionOf(world, req);
  if (!session || !secretEqual(req.form.get('_csrf') ?? '', session.csrf)) {
    return text(400, 'Invalid CSRF token.');
  }
  const redirectTo = req.form.get('redirect_to') ?? req.query.get('redirect_to') ?? '';
  const name = req.form.get('user_name') ?? '';
  const user =
    userByLogin(world, name) ?? world.users.find((u) => u.email.toLowerCase() === name.toLowerCase());
  if (!user || !secretEqual(req.form.get('password') ?? '', user.password)) {
    return html(200, loginPage(session.csrf, redirectTo, 'Username or password is incorrect.'));
  }
  // A new session id on sign-in (no session fixation); the old one is dropped.
  world.sessions.delete(session.id);
  const signedIn = newSession(world, user.id);
  return {
    ...redirect(safeRedirectTo(redirectTo), { 'set-cookie': sessionCookie(signedIn) }),
    user: user.login,
  };
}

export function logout(world: World, req: Incoming): Reply {
  const session = sessionOf(world, req);
  if (session) world.sessions.delete(session.id);
  return redirect('/', { 'set-cookie': `${SESSION_COOKIE}=; Path=/; Max-Age=0` });
}

// ---------------------------------------------------------------------------------------------
// Authorize and consent

/** Forgejo's OAuth2Application.ContainsRedirectURI (v16). */
export function containsRedirectUri(app: EmulatorApp, uri: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/\/$/, '');
  const contains = (s: string) => app.redirectUris.some((r) => norm(r) === norm(s));
  if (app.clientSecret === undefined) {
    // RFC 8252 §7.3: any port on a loopback IP literal, for public (native) clients only.
    try {
      const u = new URL(uri);
      const host = u.hostname.replace(/^\[|\]$/g, '');
      if (u.protocol === 'http:' && u.port !== '' && isLoopbackIp(host)) {
        u.port = '';
        if (contains(u.toString())) return true;
      }
    } catch {
      // not a URL: only the exact comparison below can match
    }
  }
  return contains(uri);
}

/** WHATWG URL has already normalised the host: 127.1 is 127.0.0.1, [0:0::1] is [::1]. */
function isLoopbackIp(host: string): boolean {
  return (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

function withQuery(uri: string, params: Record<string, string>): string {
  const u = new URL(uri);
  const q = new URLSearchParams(u.search);
  for (const [k, v] of Object.entries(params)) q.set(k, v);
  q.sort(); // Go's url.Values.Encode sorts by key
  u.search = q.toString();
  return u.toString();
}

function authorizeError(redirectUri: string, error: string, description: string, state: string): Reply {
  return redirect(withQuery(redirectUri, { error, error_description: description, state }));
}

function codeRedirect(world: World, grant: Grant, p: Omit<PendingFields, 'clientId'>): Reply {
  const code = randomToken();
  remember(world.codes, code, {
    grantId: grant.id,
    redirectUri: p.redirectUri,
    challenge: p.challenge,
    challengeMethod: p.challengeMethod,
  });
  const params: Record<string, string> = { code };
  if (p.state !== '') params['state'] = p.state;
  return redirect(withQuery(p.redirectUri, params));
}

type PendingFields = {
  clientId: string;
  redirectUri: string;
  state: string;
  challenge: string;
  challengeMethod: string;
};

const param = (req: Incoming, name: string): string => req.form.get(name) ?? req.query.get(name) ?? '';

export function authorize(world: World, req: Incoming): Reply {
  const session = sessionOf(world, req);
  const user = signedInUser(world, session);
  if (!session || !user) {
    const here = req.path + (req.rawQuery ? `?${req.rawQuery}` : '');
    return redirect(`/user/login?redirect_to=${encodeURIComponent(here)}`);
  }
  const withUser = (r: Reply): Reply => ({ ...r, user: user.login });
  const clientId = param(req, 'client_id');
  const redirectUri = param(req, 'redirect_uri');
  const state = param(req, 'state');
  const app = world.apps.get(clientId);
  if (!app) return withUser(html(400, grantErrorPage('unauthorized_client', 'Client ID not registered')));
  if (!containsRedirectUri(app, redirectUri)) {
    return withUser(html(400, grantErrorPage('invalid_request', 'Unregistered Redirect URI')));
  }
  if (param(req, 'response_type') !== 'code') {
    return withUser(
      authorizeError(
        redirectUri,
        'unsupported_response_type',
        'Only code response type is supported.',
        state,
      ),
    );
  }
  const challengeMethod = param(req, 'code_challenge_method');
  const challenge = param(req, 'code_challenge');
  const confidential = app.clientSecret !== undefined;
  if (challengeMethod === '' && !confidential) {
    return withUser(
      authorizeError(redirectUri, 'invalid_request', 'PKCE is required for public clients', state),
    );
  }
  if (challengeMethod !== '' && challengeMethod !== 'S256' && challengeMethod !== 'plain') {
    return withUser(
      authorizeError(redirectUri, 'invalid_request', 'unsupported code challenge method', state),
    );
  }
  const nonce = param(req, 'nonce');
  const grant = grantOf(world, user.id, app.clientId);
  // Confidential client the user already granted: no consent screen (RFC 6749 §10.2 only asks it
  // for public clients). As Forgejo does: a grant that exists with another scope string is a
  // server_error, so a client must keep its scope stable.
  if (confidential && grant) {
    if (grant.scope !== param(req, 'scope')) {
      return withUser(
        authorizeError(redirectUri, 'server_error', 'a grant exists with different scope', state),
      );
    }
    if (nonce !== '') grant.nonce = nonce;
    return withUser(codeRedirect(world, grant, { redirectUri, state, challenge, challengeMethod }));
  }
  session.pending = { clientId: app.clientId, redirectUri, state, challenge, challengeMethod };
  return withUser(
    html(
      200,
      consentPage(app, user.login, {
        csrf: session.csrf,
        clientId: app.clientId,
        redirectUri,
        state,
        scope: param(req, 'scope'),
        nonce,
      }),
      { 'x-frame-options': 'DENY' },
    ),
  );
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

export function grantSubmit(world: World, req: Incoming): Reply {
  const session = sessionOf(world, req);
  const user = signedInUser(world, session);
  if (!session || !user) return redirect('/user/login');
  const withUser = (r: Reply): Reply => ({ ...r, user: user.login });
  if (!secretEqual(req.form.get('_csrf') ?? '', session.csrf)) {
    return withUser(text(400, 'Invalid CSRF token.'));
  }
  const f = (name: string) => req.form.get(name) ?? '';
  const p = session.pending;
  if (!p || p.clientId !== f('client_id') || p.state !== f('state') || p.redirectUri !== f('redirect_uri')) {
    return withUser(text(400, 'Bad Request'));
  }
  if (!GO_TRUE.has(f('granted'))) {
    return withUser(authorizeError(p.redirectUri, 'access_denied', 'the request is denied', p.state));
  }
  const app = world.apps.get(p.clientId);
  if (!app) return withUser(text(500, 'Internal Server Error'));
  let grant = grantOf(world, user.id, app.clientId);
  const scope = f('scope');
  if (!grant) {
    grant = {
      id: world.nextId.grant++,
      userId: user.id,
      clientId: app.clientId,
      scope,
      counter: 1,
      nonce: '',
    };
    world.grants.set(grant.id, grant);
  } else if (grant.scope !== scope) {
    return withUser(
      authorizeError(p.redirectUri, 'server_error', 'a grant exists with different scope', p.state),
    );
  }
  if (f('nonce') !== '') grant.nonce = f('nonce');
  return withUser(codeRedirect(world, grant, p));
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

const tokenError = (error: string, description: string): Reply =>
  json(400, { error, error_description: description });

/** Constant-time comparison (through SHA-256, so lengths leak nothing either). */
export function secretEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

function decodeBasic(value: string): [string, string] | undefined {
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (value === '' || colon < 0) return undefined;
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

export function basicCredentials(header: string | undefined): [string, string] | undefined | 'malformed' {
  const [scheme, data] = (header ?? '').trim().split(/\s+/);
  if (scheme?.toLowerCase() !== 'basic') return undefined;
  return decodeBasic(data ?? '') ?? 'malformed';
}

export function token(world: World, req: Incoming): Reply {
  const f = (name: string) => req.form.get(name) ?? '';
  let clientId = f('client_id');
  let clientSecret = f('client_secret');
  const basic = basicCredentials(req.headers.authorization);
  if (basic === 'malformed') return tokenError('invalid_request', 'cannot parse basic auth header');
  if (basic) {
    if (clientId !== '' && clientId !== basic[0]) {
      return tokenError(
        'invalid_request',
        'client_id in request body inconsistent with Authorization header',
      );
    }
    if (clientSecret !== '' && clientSecret !== basic[1]) {
      return tokenError(
        'invalid_request',
        'client_secret in request body inconsistent with Authorization header',
      );
    }
    [clientId, clientSecret] = basic;
  }
  const grantType = f('grant_type');
  if (grantType === 'authorization_code') return codeGrant(world, req, clientId, clientSecret);
  if (grantType === 'refresh_token') return refreshGrant(world, req, clientId, clientSecret);
  return tokenError(
    'unsupported_grant_type',
    'Only refresh_token or authorization_code grant type is supported',
  );
}

const badSecret = (app: EmulatorApp, secret: string): string | undefined => {
  if (app.clientSecret === undefined || secretEqual(secret, app.clientSecret)) return undefined;
  return secret === '' ? 'invalid empty client secret' : 'invalid client secret';
};

function pkceOk(method: string, challenge: string, verifier: string): boolean {
  if (method === '') return true;
  if (method === 'plain') return verifier === challenge;
  if (method === 'S256') return createHash('sha256').update(verifier).digest('base64url') === challenge;
  return false;
}

function codeGrant(world: World, req: Incoming, clientId: string, secret: string): Reply {
  const app = world.apps.get(clientId);
  if (!app) return tokenError('invalid_client', `cannot load client with client id: '${clientId}'`);
  const secretProblem = badSecret(app, secret);
  if (secretProblem) return tokenError('unauthorized_client', secretProblem);
  const codeValue = req.form.get('code') ?? '';
  const code = world.codes.get(codeValue);
  const grant = code && world.grants.get(code.grantId);
  if (!code || !grant) return tokenError('unauthorized_client', 'client is not authorized');
  if (!pkceOk(code.challengeMethod, code.challenge, req.form.get('code_verifier') ?? '')) {
    return tokenError('unauthorized_client', 'failed PKCE code challenge');
  }
  if (grant.clientId !== app.clientId) return tokenError('invalid_grant', 'invalid grant');
  if ((req.form.get('redirect_uri') ?? '') !== code.redirectUri) {
    return tokenError('unauthorized_client', 'redirect_uri does not match the authorization request');
  }
  world.codes.delete(codeValue);
  return tokenResponse(world, grant);
}

function refreshGrant(world: World, req: Incoming, clientId: string, secret: string): Reply {
  const app = world.apps.get(clientId);
  if (!app)
    return tokenError('invalid_client', `cannot load client with client id: ${JSON.stringify(clientId)}`);
  const secretProblem = badSecret(app, secret);
  if (secretProblem) return tokenError('invalid_client', secretProblem);
  const claims = verifyJwt(world.key.jwk, req.form.get('refresh_token') ?? '', seconds(world.now()));
  if (!claims || typeof claims['gnt'] !== 'number') {
    return tokenError('unauthorized_client', 'unable to parse refresh token');
  }
  const grant = world.grants.get(claims['gnt']);
  if (!grant) return tokenError('invalid_grant', 'grant does not exist');
  if (grant.clientId !== app.clientId) {
    return tokenError('invalid_grant', 'refresh token was not issued to this client');
  }
  const cnt = typeof claims['cnt'] === 'number' ? claims['cnt'] : 0;
  if (cnt === 0 || cnt !== grant.counter) return tokenError('unauthorized_client', 'token was already used');
  return tokenResponse(world, grant);
}

/** Every code exchange and every refresh bumps the grant's counter: older refresh tokens die. */
function tokenResponse(world: World, grant: Grant): Reply {
  grant.counter++;
  const iat = seconds(world.now());
  const body: Record<string, unknown> = {
    access_token: signJwt(world.key, { gnt: grant.id, tt: 0, exp: iat + world.accessTtl, iat }),
    token_type: 'bearer',
    expires_in: world.accessTtl,
    refresh_token: signJwt(world.key, {
      gnt: grant.id,
      tt: 1,
      cnt: grant.counter,
      exp: iat + world.refreshTtl,
      iat,
    }),
  };
  const scopes = grant.scope.split(' ');
  if (scopes.includes('openid')) {
    const user = userById(world, grant.userId);
    if (user) {
      const idToken: Record<string, unknown> = {
        iss: world.url,
        sub: String(user.id),
        aud: [grant.clientId],
        exp: iat + world.accessTtl,
        iat,
      };
      if (grant.nonce !== '') idToken['nonce'] = grant.nonce;
      if (scopes.includes('profile')) {
        Object.assign(idToken, {
          name: user.fullName || user.login,
          preferred_username: user.login,
          profile: `${world.url}/${user.login}`,
          picture: avatarUrl(world, user),
          locale: 'en-US',
          updated_at: seconds(user.created),
        });
      }
      if (scopes.includes('email')) Object.assign(idToken, { email: user.email, email_verified: true });
      if (scopes.includes('groups')) idToken['groups'] = groupsOf(user);
      body['id_token'] = signJwt(world.key, idToken);
    }
  }
  return json(200, body);
}

// ---------------------------------------------------------------------------------------------
// Access tokens, userinfo, discovery

export function avatarUrl(world: World, user: User): string {
  return `${world.url}/avatars/${createHash('md5').update(user.email.toLowerCase()).digest('hex')}`;
}

export function groupsOf(user: User): string[] {
  return user.orgs.flatMap((o) => [o.name, ...o.teams.map((t) => `${o.name}:${t.toLowerCase()}`)]);
}

/** Forgejo's CheckOAuthAccessToken: a valid access JWT of a grant that still exists. */
export function checkAccessToken(world: World, value: string): { user: User; grant: Grant } | undefined {
  const claims = verifyJwt(world.key.jwk, value, seconds(world.now()));
  if (claims?.['tt'] !== 0 || typeof claims['gnt'] !== 'number') return undefined;
  const grant = world.grants.get(claims['gnt']);
  const user = grant && userById(world, grant.userId);
  return grant && user ? { user, grant } : undefined;
}

/** The token of an `Authorization: token|Bearer <t>` header (scheme case-insensitive). */
export function headerToken(header: string | undefined): string | undefined {
  const fields = (header ?? '').trim().split(/\s+/);
  const scheme = fields[0]?.toLowerCase();
  return fields.length === 2 && (scheme === 'token' || scheme === 'bearer') ? fields[1] : undefined;
}

/** Forgejo's auth.unauthorized_credentials, what its web auth middleware answers a bad token with. */
export const UNAUTHORIZED_CREDENTIALS =
  'Credentials are incorrect or have expired. Retry your command or see https://codeberg.org/forgejo/forgejo/issues/2809 for more information';

export function userinfo(world: World, req: Incoming): Reply {
  const value = headerToken(req.headers.authorization);
  // No token at all reaches the handler, which asks for one; a token that resolves to no user is
  // refused before it by the web auth middleware (http.Error: text, no WWW-Authenticate).
  if (value === undefined)
    return text(401, 'no valid authorization', { 'www-authenticate': 'Bearer realm=""' });
  const found = checkAccessToken(world, value);
  if (!found) return text(401, `${UNAUTHORIZED_CREDENTIALS}\n`);
  const { user } = found;
  const body: Record<string, unknown> = {
    sub: String(user.id),
    name: user.fullName,
    preferred_username: user.login,
    email: user.email,
    picture: avatarUrl(world, user),
  };
  const groups = groupsOf(user);
  if (groups.length > 0) body['groups'] = groups;
  return { ...json(200, body), user: user.login };
}

export function discovery(world: World): Reply {
  const root = world.url;
  return json(200, {
    issuer: root,
    authorization_endpoint: `${root}/login/oauth/authorize`,
    token_endpoint: `${root}/login/oauth/access_token`,
    jwks_uri: `${root}/login/oauth/keys`,
    userinfo_endpoint: `${root}/login/oauth/userinfo`,
    introspection_endpoint: `${root}/login/oauth/introspect`,
    response_types_supported: ['code', 'id_token'],
    id_token_signing_alg_values_supported: ['RS256'],
    subject_types_supported: ['public'],
    scopes_supported: ['openid', 'profile', 'email', 'groups'],
    claims_supported: [
      'aud',
      'exp',
      'iat',
      'iss',
      'sub',
      'name',
      'preferred_username',
      'profile',
      'picture',
      'website',
      'locale',
      'updated_at',
      'email',
      'email_verified',
      'groups',
    ],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
  });
}

export function jwks(world: World): Reply {
  return json(200, { keys: [world.key.jwk] });
}
