// GET /oauth/callback: Forgejo sends the browser back here. The state must be one this broker
// created after consent, in this same browser; then the Forgejo code is exchanged, the user
// identified and checked against the allow-lists, their one Forgejo credential replaced, and the
// client gets a single-use broker code.
import { randomUUID } from 'node:crypto';
import { ResponseBodyError } from 'oauth4webapi';
import type { ForgejoUser } from '../forgejo/client.ts';
import { hashSecret, newSecret, safeEqual } from '../store/secrets.ts';
import type { AuthRequestRecord } from '../store/store.ts';
import { accountSignedIn } from './account.ts';
import { browserHash, clearBrowserCookie, clientRedirect } from './authorize.ts';
import type { AuthContext } from './context.ts';
import { errorPage } from './pages.ts';
import { type OAuthError, type OAuthRequest, type OAuthResponse, one } from './respond.ts';

const CODE_TTL_MS = 60_000;

export function isAllowed(ctx: AuthContext, user: ForgejoUser): boolean {
  if (ctx.allowedUsers.length === 0 && ctx.allowedOrgs.length === 0) return true;
  if (ctx.allowedUsers.includes(user.login.toLowerCase())) return true;
  return user.groups.some((g) => ctx.allowedOrgs.includes(g.toLowerCase()));
}

/** Forgejo's code (in the callback's query) exchanged with the broker's verifier, and who signed in. */
export async function forgejoSignIn(
  ctx: AuthContext,
  req: OAuthRequest,
  state: string,
  verifier: string,
): Promise<{ tokens: { accessToken: string; refreshToken: string; expiresAt: number }; user: ForgejoUser }> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') params.set(k, v);
  const tokens = await ctx.forgejo.exchangeCode(params, state, verifier);
  return { tokens, user: await ctx.forgejo.userinfo(tokens.accessToken) };
}

export async function callback(
  ctx: AuthContext,
  req: OAuthRequest,
  now = Date.now(),
): Promise<OAuthResponse> {
  const bad = (status: number, msg: string) => errorPage(status, 'Sign-in could not be completed', msg);
  let state: string;
  try {
    state = one(req.query, 'state', true);
  } catch (e) {
    return bad(400, (e as OAuthError).message);
  }
  const ar = await ctx.store.takeAuthRequestByState(hashSecret(state), now);
  if (!ar) {
    // The connected-apps page signs in through the same Forgejo app, so through this same callback.
    const login = await ctx.store.takeAccountLogin(hashSecret(state), now);
    if (login) return accountSignedIn(ctx, req, state, login, now);
  }
  if (!ar || ar.upstreamVerifier === null) {
    return bad(
      400,
      'This sign-in is unknown, expired or was already completed. Start again from your application.',
    );
  }
  const browser = browserHash(req, ar.idHash);
  if (!browser || !safeEqual(browser, ar.browserHash)) {
    return bad(403, 'This sign-in was started in another browser.');
  }
  // The sign-in is over whatever follows (its state is consumed): its binding cookie can go.
  const res = await finish(ctx, req, { ...ar, upstreamVerifier: ar.upstreamVerifier }, state, now);
  res.headers['set-cookie'] = clearBrowserCookie(ar.idHash);
  return res;
}

/** From the approved, browser-checked request to the client's code (or the reason there is none). */
async function finish(
  ctx: AuthContext,
  req: OAuthRequest,
  ar: AuthRequestRecord & { upstreamVerifier: string },
  state: string,
  now: number,
): Promise<OAuthResponse> {
  const back = (params: Record<string, string>) =>
    clientRedirect(ctx, ar.redirectUri, { ...params, state: ar.clientState });
  const upstreamError = req.query['error'];
  if (upstreamError !== undefined) {
    const denied = upstreamError === 'access_denied';
    return back({
      error: denied ? 'access_denied' : 'server_error',
      error_description: denied ? 'the user denied access at Forgejo' : 'Forgejo refused the authorization',
    });
  }
  let user: ForgejoUser;
  let tokens: { accessToken: string; refreshToken: string; expiresAt: number };
  try {
    ({ tokens, user } = await forgejoSignIn(ctx, req, state, ar.upstreamVerifier));
  } catch (e) {
    const failure = describeUpstreamFailure(e, ctx.forgejoUrl);
    ctx.log.warn(
      { err: { name: (e as Error).name, message: (e as Error).message }, cause: failure.cause },
      'Forgejo login failed',
    );
    const url = back({ error: 'server_error', error_description: 'signing in to Forgejo failed' }).headers[
      'location'
    ] as string;
    return errorPage(502, 'Sign-in could not be completed', failure.message, {
      href: url,
      text: 'Return to the application',
    });
  }
  if (!isAllowed(ctx, user)) {
    ctx.log.info({ userId: user.id, login: user.login }, 'user refused by the allow-list');
    ctx.audit?.record({
      event: 'sign_in_refused',
      login: user.login,
      clientId: ar.clientId,
      reason: 'allow-list',
    });
    const url = clientRedirect(ctx, ar.redirectUri, {
      error: 'access_denied',
      error_description: 'this Forgejo user may not use this server',
      state: ar.clientState,
    }).headers['location'] as string;
    return errorPage(
      403,
      'Access denied',
      `The Forgejo user ${user.login} is not allowed to use this server. Ask its operator to add you.`,
      {
        href: url,
        text: 'Return to the application',
      },
    );
  }
  // The newest credential is the only live one at Forgejo (each exchange rotates the grant).
  await ctx.store.putCredential({ userId: user.id, login: user.login, ...tokens, updatedAt: now });
  const grantId = randomUUID();
  const code = newSecret('mcpac_');
  await ctx.store.createGrant(
    {
      grantId,
      userId: user.id,
      login: user.login,
      clientId: ar.clientId,
      scopes: ar.scopes,
      resource: ar.resource,
      createdAt: now,
      mode: ar.mode ?? 'read',
      clientName: ar.clientName,
      redirectUri: ar.redirectUri,
    },
    {
      codeHash: hashSecret(code),
      grantId,
      clientId: ar.clientId,
      redirectUri: ar.redirectUri,
      codeChallenge: ar.codeChallenge,
      resource: ar.resource,
      expiresAt: now + CODE_TTL_MS,
      usedAt: null,
    },
  );
  ctx.log.info(
    { userId: user.id, login: user.login, clientId: ar.clientId, grantId },
    'authorization granted',
  );
  ctx.signedIn?.({ id: user.id, login: user.login });
  ctx.audit?.record({
    event: 'sign_in',
    login: user.login,
    userId: user.id,
    clientId: ar.clientId,
    clientName: ar.clientName,
  });
  return back({ code });
}

/**
 * Why the code exchange or userinfo call failed, for the operator's log line and in words the user
 * can pass on: the broker's own Forgejo credentials refused, Forgejo unreachable, or another answer.
 * Forgejo's error descriptions name no secret, so they are quoted.
 */
export function describeUpstreamFailure(e: unknown, forgejoUrl: string): { cause: string; message: string } {
  if (e instanceof ResponseBodyError) {
    const said = `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
    if (e.error === 'invalid_client' || /client secret|cannot load client/i.test(e.error_description ?? '')) {
      return {
        cause: `Forgejo refused the broker's client credentials (${said})`,
        message: `Forgejo refused this server's own credentials (${said}). The operator must correct FORGEJO_CLIENT_ID or FORGEJO_CLIENT_SECRET; nothing is wrong with your account.`,
      };
    }
    return {
      cause: `Forgejo refused the code exchange (${said})`,
      message: `Forgejo refused to complete the sign-in (${said}). Try again from your application; if it persists, tell the operator.`,
    };
  }
  const err = e as Error & { cause?: { code?: string } };
  const network =
    err.name === 'TimeoutError' ||
    (err.name === 'TypeError' && /fetch failed/i.test(err.message)) ||
    ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(err.cause?.code ?? '');
  if (network) {
    return {
      cause: `Forgejo at ${forgejoUrl} is unreachable (${err.cause?.code ?? err.name})`,
      message: `This server could not reach Forgejo at ${forgejoUrl} to complete your sign-in. Try again later; if it persists, tell the operator.`,
    };
  }
  return {
    cause: `unexpected answer from Forgejo (${err.message})`,
    message:
      'Forgejo gave this server an answer it could not use to complete your sign-in. Tell the operator.',
  };
}
