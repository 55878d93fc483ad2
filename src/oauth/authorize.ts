// GET /oauth/authorize and the consent POST (design flow 3, decision 4). Until the client and its
// redirect URI are trusted, errors are a page, never a redirect; after that, they go back to the
// client with `error`, `state` and `iss`. Nothing reaches Forgejo before the user approved.
import { hashSecret, newSecret, safeEqual } from '../store/secrets.ts';
import type { AuthRequestRecord, ClientRecord, GrantMode } from '../store/store.ts';
import { isCimdClientId } from './cimd.ts';
import { type AuthContext, resolveClient } from './context.ts';
import { resourceUrl, SCOPES } from './metadata.ts';
import { consentPage, errorPage } from './pages.ts';
import { matchRedirectUri } from './redirect-uri.ts';
import {
  header,
  OAuthError,
  type OAuthRequest,
  type OAuthResponse,
  one,
  type Params,
  readCookie,
  redirect,
} from './respond.ts';

export const BROWSER_COOKIE = '__Host-fmb-browser';
const REQUEST_TTL_MS = 10 * 60_000;
/** Pending authorizations are a buffer strangers can fill: it is bounded. */
const MAX_PENDING = 10_000;
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The client's redirect URI with the response parameters added (RFC 9207 `iss` always). */
export function clientRedirect(
  ctx: AuthContext,
  redirectUri: string,
  params: Record<string, string | null | undefined>,
): OAuthResponse {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v != null) url.searchParams.set(k, v);
  url.searchParams.set('iss', ctx.publicUrl);
  return redirect(url.href);
}

export function browserCookie(value: string): string {
  return `${BROWSER_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${REQUEST_TTL_MS / 1000}`;
}

/** The hash of this browser's binding cookie, if it sent a well-formed one. */
export function browserHash(req: OAuthRequest): string | undefined {
  const v = readCookie(req, BROWSER_COOKIE);
  return v && SECRET_SHAPE.test(v) ? hashSecret(v) : undefined;
}

async function trustedClient(
  ctx: AuthContext,
  q: Params,
): Promise<{ client: ClientRecord; redirectUri: string }> {
  const client = await resolveClient(ctx, one(q, 'client_id', true));
  const requested = one(q, 'redirect_uri');
  const redirectUri = requested ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined);
  if (!redirectUri) throw new OAuthError('invalid_request', 'redirect_uri is required for this client');
  if (!matchRedirectUri(client.redirectUris, redirectUri)) {
    throw new OAuthError('invalid_request', 'redirect_uri is not registered for this client');
  }
  return { client, redirectUri };
}

export async function authorize(
  ctx: AuthContext,
  req: OAuthRequest,
  now = Date.now(),
): Promise<OAuthResponse> {
  const q = req.query;
  let trusted: { client: ClientRecord; redirectUri: string };
  try {
    trusted = await trustedClient(ctx, q);
  } catch (e) {
    if (!(e instanceof OAuthError)) throw e;
    return errorPage(
      400,
      'This authorization request is not valid',
      `${e.message}. Nothing was sent to the application.`,
    );
  }
  const { client, redirectUri } = trusted;
  const state = typeof q['state'] === 'string' && q['state'].length <= 4096 ? q['state'] : undefined;
  try {
    if (one(q, 'response_type', true) !== 'code')
      throw new OAuthError('unsupported_response_type', 'response_type must be code');
    const method = one(q, 'code_challenge_method');
    const challenge = one(q, 'code_challenge');
    if (!challenge) throw new OAuthError('invalid_request', 'code_challenge is required (PKCE)');
    if (method !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256');
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge))
      throw new OAuthError('invalid_request', 'code_challenge is not an S256 challenge');
    one(q, 'state');
    const resource = one(q, 'resource') ?? resourceUrl(ctx.publicUrl);
    if (resource !== resourceUrl(ctx.publicUrl)) {
      throw new OAuthError('invalid_target', `resource must be ${resourceUrl(ctx.publicUrl)}`);
    }
    // Unknown scopes (Claude.ai sends `claudeai`) are ignored, not errors.
    const asked = (one(q, 'scope') ?? '').split(' ');
    const scopes = SCOPES.filter((s) => asked.includes(s));

    const cookie = readCookie(req, BROWSER_COOKIE);
    const browser = cookie && SECRET_SHAPE.test(cookie) ? cookie : newSecret();
    const requestId = newSecret();
    const csrf = newSecret();
    const record: AuthRequestRecord = {
      idHash: hashSecret(requestId),
      browserHash: hashSecret(browser),
      csrfHash: hashSecret(csrf),
      clientId: client.clientId,
      clientName: client.name,
      redirectUri,
      clientState: state ?? null,
      codeChallenge: challenge,
      resource,
      scopes: scopes.length ? scopes : [...SCOPES],
      upstreamStateHash: null,
      upstreamVerifier: null,
      expiresAt: now + REQUEST_TTL_MS,
    };
    if (!(await ctx.store.insertAuthRequest(record, now, MAX_PENDING))) {
      throw new OAuthError(
        'temporarily_unavailable',
        'too many sign-ins in progress; try again in a few minutes',
      );
    }
    const res = consentPage({
      clientName: client.name,
      clientId: client.clientId,
      redirectUri,
      forgejoUrl: ctx.forgejoUrl,
      forgejoScope: ctx.forgejoScope,
      requestId,
      csrf,
      cimd: isCimdClientId(client.clientId),
      publicUrl: ctx.publicUrl,
      accessTokenTtlMs: ctx.accessTokenTtlMs,
      refreshTokenTtlMs: ctx.refreshTokenTtlMs,
      offersWrite: ctx.offersWrite ?? true,
    });
    res.headers['set-cookie'] = browserCookie(browser);
    return res;
  } catch (e) {
    if (!(e instanceof OAuthError)) throw e;
    return clientRedirect(ctx, redirectUri, { error: e.error, error_description: e.message, state });
  }
}

/** POST /oauth/consent: Approve → 303 to Forgejo with the broker's own state and PKCE; Deny → access_denied. */
export async function consent(ctx: AuthContext, req: OAuthRequest, now = Date.now()): Promise<OAuthResponse> {
  const form = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Params;
  const bad = (status: number, msg: string) => errorPage(status, 'This consent form cannot be used', msg);
  let requestId: string;
  let csrf: string;
  let decision: string;
  let mode: GrantMode;
  try {
    requestId = one(form, 'request', true);
    csrf = one(form, 'csrf', true);
    decision = one(form, 'decision', true);
    // Least privilege when the choice is missing or not on offer.
    mode = one(form, 'mode') === 'write' && (ctx.offersWrite ?? true) ? 'write' : 'read';
  } catch (e) {
    return bad(400, (e as Error).message);
  }
  const ar = await ctx.store.getAuthRequest(hashSecret(requestId));
  if (!ar || ar.expiresAt <= now || ar.upstreamStateHash !== null) {
    return bad(400, 'The request expired or was already answered. Start again from your application.');
  }
  const browser = browserHash(req);
  if (!browser || !safeEqual(browser, ar.browserHash) || !safeEqual(hashSecret(csrf), ar.csrfHash)) {
    return bad(403, 'The form did not come from this browser’s consent page.');
  }
  if (header(req, 'sec-fetch-site') === 'cross-site')
    return bad(403, 'Cross-site form submissions are refused.');
  if (decision !== 'approve') {
    await ctx.store.deleteAuthRequest(ar.idHash);
    return clientRedirect(ctx, ar.redirectUri, {
      error: 'access_denied',
      error_description: 'the user denied access',
      state: ar.clientState,
    });
  }
  const upstreamState = newSecret();
  const verifier = newSecret();
  if (
    !(await ctx.store.approveAuthRequest(
      ar.idHash,
      hashSecret(upstreamState),
      verifier,
      now + REQUEST_TTL_MS,
      now,
      mode,
    ))
  ) {
    return bad(400, 'The request was already answered.');
  }
  return redirect(await ctx.forgejo.authorizationUrl(upstreamState, verifier));
}
