// GET /oauth/authorize and the consent POST (design flow 3, decision 4). Errors in the request are a
// page, never a redirect; the user's decision goes back to the client with `error`, `state` and
// `iss`. Nothing reaches Forgejo before the user approved.
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

/** One cookie per sign-in, named after its request: see `browserCookieName`. */
const BROWSER_COOKIE_PREFIX = '__Host-fmb-browser-';
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

/**
 * The browser binding is a fresh random value for every sign-in, in a cookie named after that
 * sign-in's request: a value the browser sent is never adopted and set back (fixation), and two
 * sign-ins in one browser do not overwrite each other's binding.
 */
function browserCookieName(requestIdHash: string): string {
  return `${BROWSER_COOKIE_PREFIX}${requestIdHash.slice(0, 16)}`;
}

export function browserCookie(requestIdHash: string, value: string, maxAgeS = REQUEST_TTL_MS / 1000): string {
  return `${browserCookieName(requestIdHash)}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}`;
}

/** The `Set-Cookie` that removes a finished sign-in's binding from the browser. */
export function clearBrowserCookie(requestIdHash: string): string {
  return browserCookie(requestIdHash, '', 0);
}

/** The hash of the binding cookie this browser holds for that request, if it sent a well-formed one. */
export function browserHash(req: OAuthRequest, requestIdHash: string): string | undefined {
  const v = readCookie(req, browserCookieName(requestIdHash));
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

/**
 * Every client here registered itself (or is described by a document anyone can host), so its
 * redirect URI is whatever a stranger chose. RFC 9700 §4.11.2: an error found in the request is
 * therefore shown here, not sent back there, or the broker's address would be a redirector to any
 * site. Only the user's own decision on the consent page (which names that site) goes back.
 */
function invalidRequestPage(e: OAuthError): OAuthResponse {
  return errorPage(
    400,
    'This authorization request is not valid',
    `${e.error}: ${e.message}. Nothing was sent to the application; start again from it.`,
  );
}

export async function authorize(
  ctx: AuthContext,
  req: OAuthRequest,
  now = Date.now(),
): Promise<OAuthResponse> {
  const q = req.query;
  try {
    const { client, redirectUri } = await trustedClient(ctx, q);
    if (one(q, 'response_type', true) !== 'code')
      throw new OAuthError('unsupported_response_type', 'response_type must be code');
    const method = one(q, 'code_challenge_method');
    const challenge = one(q, 'code_challenge');
    if (!challenge) throw new OAuthError('invalid_request', 'code_challenge is required (PKCE)');
    if (method !== 'S256') throw new OAuthError('invalid_request', 'code_challenge_method must be S256');
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge))
      throw new OAuthError('invalid_request', 'code_challenge is not an S256 challenge');
    const state = one(q, 'state');
    const resource = one(q, 'resource') ?? resourceUrl(ctx.publicUrl);
    if (resource !== resourceUrl(ctx.publicUrl)) {
      throw new OAuthError('invalid_target', `resource must be ${resourceUrl(ctx.publicUrl)}`);
    }
    // Unknown scopes (Claude.ai sends `claudeai`) are ignored, not errors.
    const asked = (one(q, 'scope') ?? '').split(' ');
    const scopes = SCOPES.filter((s) => asked.includes(s));

    const browser = newSecret();
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
    res.headers['set-cookie'] = browserCookie(record.idHash, browser);
    return res;
  } catch (e) {
    if (!(e instanceof OAuthError)) throw e;
    return invalidRequestPage(e);
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
  const browser = browserHash(req, ar.idHash);
  if (!browser || !safeEqual(browser, ar.browserHash) || !safeEqual(hashSecret(csrf), ar.csrfHash)) {
    return bad(403, 'The form did not come from this browser’s consent page.');
  }
  if (header(req, 'sec-fetch-site') === 'cross-site')
    return bad(403, 'Cross-site form submissions are refused.');
  ctx.audit?.record({
    event: 'consent',
    decision: decision === 'approve' ? 'granted' : 'denied',
    clientId: ar.clientId,
    clientName: ar.clientName,
    ...(decision === 'approve' ? { mode } : {}),
  });
  if (decision !== 'approve') {
    await ctx.store.deleteAuthRequest(ar.idHash);
    const res = clientRedirect(ctx, ar.redirectUri, {
      error: 'access_denied',
      error_description: 'the user denied access',
      state: ar.clientState,
    });
    res.headers['set-cookie'] = clearBrowserCookie(ar.idHash);
    return res;
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
