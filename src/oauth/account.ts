// The connected-apps page (/account): a user signs in through Forgejo (the broker's one Forgejo
// app, the same callback), sees every grant their AI apps hold, and revokes one or all. Revoking
// deletes the grant in the store, whose event closes that grant's sessions and streams at once.
// Server-rendered, no script, CSRF-protected forms, unframeable (pages.ts).
import type { ForgejoUser } from '../forgejo/client.ts';
import { hashSecret, newSecret, safeEqual } from '../store/secrets.ts';
import type { GrantRecord } from '../store/store.ts';
import { browserCookie, browserHash, clearBrowserCookie } from './authorize.ts';
import { forgejoSignIn, isAllowed } from './callback.ts';
import { isCimdClientId } from './cimd.ts';
import type { AuthContext } from './context.ts';
import { type AppRow, accountPage, errorPage, signInPage } from './pages.ts';
import {
  header,
  type OAuthRequest,
  type OAuthResponse,
  one,
  type Params,
  readCookie,
  redirect,
} from './respond.ts';

export const ACCOUNT_COOKIE = '__Host-fmb-account';
const LOGIN_TTL_MS = 10 * 60_000;
/** Long enough to look and revoke, short enough that a shared computer forgets it. */
export const ACCOUNT_SESSION_TTL_MS = 30 * 60_000;
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

function sessionCookie(value: string, maxAgeMs: number): string {
  return `${ACCOUNT_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

/** The forms' CSRF token: derived one-way from the HttpOnly session cookie, so only this page has it. */
function csrfFor(sessionCookieValue: string): string {
  return hashSecret(`csrf:${sessionCookieValue}`);
}

async function currentSession(ctx: AuthContext, req: OAuthRequest, now: number) {
  const v = readCookie(req, ACCOUNT_COOKIE);
  if (!v || !SECRET_SHAPE.test(v)) return undefined;
  return ctx.store.getAccountSession(hashSecret(v), now);
}

function hostOf(uri: string): string {
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.host : `${u.protocol}//${u.host}`;
  } catch {
    return '';
  }
}

function row(ctx: AuthContext, g: GrantRecord): AppRow {
  return {
    grantId: g.grantId,
    clientName: g.clientName || g.clientId,
    redirectHost: hostOf(g.redirectUri ?? ''),
    registration: isCimdClientId(g.clientId) ? 'CIMD' : 'DCR',
    mode: g.mode ?? 'write',
    createdAt: g.createdAt,
    lastUsedAt: g.lastUsedAt ?? null,
    activeSessions: ctx.activeSessions?.(g.grantId) ?? 0,
  };
}

/** GET /account */
export async function account(ctx: AuthContext, req: OAuthRequest, now = Date.now()): Promise<OAuthResponse> {
  const s = await currentSession(ctx, req, now);
  if (!s) return signInPage();
  const csrf = csrfFor(readCookie(req, ACCOUNT_COOKIE) as string);
  const grants = await ctx.store.listGrants(s.userId);
  const notice = typeof req.query['done'] === 'string' ? req.query['done'] : undefined;
  const res = accountPage({
    login: s.login,
    apps: grants.map((g) => row(ctx, g)),
    csrf,
    notice: notice === 'revoked' || notice === 'revoked-all' ? notice : undefined,
    forgejoHost: new URL(ctx.forgejoUrl).host,
  });
  return res;
}

/** GET /account/login: the broker's own state and PKCE, then Forgejo's login. */
export async function accountLogin(
  ctx: AuthContext,
  _req: OAuthRequest,
  now = Date.now(),
): Promise<OAuthResponse> {
  // A fresh browser binding per sign-in, in a cookie named after it (as for client sign-ins).
  const browser = newSecret();
  const state = newSecret();
  const verifier = newSecret();
  const stateHash = hashSecret(state);
  await ctx.store.insertAccountLogin(stateHash, hashSecret(browser), verifier, now + LOGIN_TTL_MS);
  return redirect(await ctx.forgejo.authorizationUrl(state, verifier), {
    'set-cookie': browserCookie(stateHash, browser, LOGIN_TTL_MS / 1000),
  });
}

/** The callback's second half for a connected-apps sign-in (its state was an account login). */
export async function accountSignedIn(
  ctx: AuthContext,
  req: OAuthRequest,
  state: string,
  login: { browserHash: string; verifier: string },
  now: number,
): Promise<OAuthResponse> {
  const bad = (status: number, msg: string) => errorPage(status, 'Sign-in could not be completed', msg);
  const stateHash = hashSecret(state);
  const browser = browserHash(req, stateHash);
  if (!browser || !safeEqual(browser, login.browserHash))
    return bad(403, 'This sign-in was started in another browser.');
  if (req.query['error'] !== undefined) return bad(400, 'Forgejo did not authorize the sign-in.');
  let user: ForgejoUser;
  let tokens: { accessToken: string; refreshToken: string; expiresAt: number };
  try {
    ({ tokens, user } = await forgejoSignIn(ctx, req, state, login.verifier));
  } catch (e) {
    ctx.log.warn({ err: { name: (e as Error).name, message: (e as Error).message } }, 'Forgejo login failed');
    return bad(502, 'Signing in to Forgejo failed. Try again.');
  }
  if (!isAllowed(ctx, user))
    return bad(403, `The Forgejo user ${user.login} is not allowed to use this server.`);
  // Each code exchange rotates the user's Forgejo grant: the new credential is the only live one.
  await ctx.store.putCredential({ userId: user.id, login: user.login, ...tokens, updatedAt: now });
  const id = newSecret();
  await ctx.store.insertAccountSession({
    idHash: hashSecret(id),
    userId: user.id,
    login: user.login,
    csrfHash: hashSecret(csrfFor(id)),
    expiresAt: now + ACCOUNT_SESSION_TTL_MS,
  });
  return redirect('/account', {
    'set-cookie': [sessionCookie(id, ACCOUNT_SESSION_TTL_MS), clearBrowserCookie(stateHash)],
  });
}

/** POST /account/revoke (one grant), /account/revoke-all, /account/logout. */
export async function accountAction(
  ctx: AuthContext,
  req: OAuthRequest,
  action: 'revoke' | 'revoke-all' | 'logout',
  now = Date.now(),
): Promise<OAuthResponse> {
  const bad = (status: number, msg: string) => errorPage(status, 'This form cannot be used', msg);
  const s = await currentSession(ctx, req, now);
  if (!s) return bad(401, 'Your sign-in on this page expired. Open the page again and sign in.');
  const form = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Params;
  let csrf: string;
  try {
    csrf = one(form, 'csrf', true);
  } catch (e) {
    return bad(400, (e as Error).message);
  }
  if (!safeEqual(hashSecret(csrf), s.csrfHash) || header(req, 'sec-fetch-site') === 'cross-site')
    return bad(403, 'The form did not come from this page.');
  if (action === 'logout') {
    await ctx.store.deleteAccountSession(s.idHash);
    return redirect('/account', { 'set-cookie': sessionCookie('', 0) });
  }
  if (action === 'revoke-all') {
    await ctx.store.revokeUser(s.userId);
    ctx.audit?.record({ event: 'grant_revoked', by: 'user', userId: s.userId, login: s.login });
    return redirect('/account?done=revoked-all');
  }
  let grantId: string;
  try {
    grantId = one(form, 'grant', true);
  } catch (e) {
    return bad(400, (e as Error).message);
  }
  const grant = (await ctx.store.listGrants(s.userId)).find((g) => g.grantId === grantId);
  if (grant) {
    await ctx.store.revokeGrant(grant.grantId);
    ctx.audit?.record({
      event: 'grant_revoked',
      by: 'user',
      grantId,
      userId: s.userId,
      login: s.login,
      clientId: grant.clientId,
    });
  }
  return redirect('/account?done=revoked');
}
