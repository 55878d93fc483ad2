// POST /oauth/token (authorization_code, refresh_token) and POST /oauth/revoke (RFC 7009).
// Client authentication follows the registered method; any failure is 401 invalid_client, which
// makes Claude.ai register afresh instead of looping.

import { createHash, createHmac } from 'node:crypto';
import { metrics } from '../metrics/metrics.ts';
import { hashSecret, newSecret, safeEqual } from '../store/secrets.ts';
import type { AuthMethod, ClientRecord, GrantRecord, TokenPair } from '../store/store.ts';
import { type AuthContext, resolveClient } from './context.ts';
import { resourceUrl } from './metadata.ts';
import { clientKey, failureKey, slowDown } from './rate-keys.ts';
import {
  errorJson,
  header,
  json,
  OAuthError,
  type OAuthRequest,
  type OAuthResponse,
  one,
  type Params,
} from './respond.ts';

const UNAUTHORIZED = { 'www-authenticate': 'Basic realm="forgejo-mcp-broker"' };

function formOf(req: OAuthRequest): Params {
  const type = header(req, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (
    type !== 'application/x-www-form-urlencoded' ||
    typeof req.body !== 'object' ||
    req.body === null ||
    Array.isArray(req.body)
  ) {
    throw new OAuthError('invalid_request', 'the body must be application/x-www-form-urlencoded');
  }
  return req.body as Params;
}

/** Which client is calling, by the method it registered; every failure is 401 invalid_client. */
export async function authenticateClient(
  ctx: AuthContext,
  req: OAuthRequest,
  form: Params,
): Promise<ClientRecord> {
  const authz = header(req, 'authorization');
  let clientId: string | undefined;
  let secret: string | undefined;
  let method: AuthMethod;
  if (authz !== undefined) {
    const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(authz);
    const decoded = m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : '';
    const i = decoded.indexOf(':');
    if (i < 1) throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
    try {
      // RFC 6749 §2.3.1: both parts are form-encoded before joining.
      clientId = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
      secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' '));
    } catch {
      throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
    }
    if (one(form, 'client_secret') !== undefined)
      throw new OAuthError('invalid_request', 'use only one client authentication method');
    const formId = one(form, 'client_id');
    if (formId !== undefined && formId !== clientId)
      throw new OAuthError('invalid_request', 'client_id differs from the Basic credentials');
    method = 'client_secret_basic';
  } else {
    clientId = one(form, 'client_id');
    secret = one(form, 'client_secret');
    method = secret === undefined ? 'none' : 'client_secret_post';
  }
  if (clientId === undefined)
    throw new OAuthError('invalid_client', 'client authentication is required', 401);
  let client: ClientRecord;
  try {
    client = await resolveClient(ctx, clientId, req.signal);
  } catch (e) {
    if (e instanceof OAuthError) throw new OAuthError('invalid_client', e.message, 401);
    throw e;
  }
  if (client.authMethod !== method) {
    throw new OAuthError('invalid_client', `this client must authenticate with ${client.authMethod}`, 401);
  }
  if (method !== 'none' && !(client.secretHash && safeEqual(hashSecret(secret ?? ''), client.secretHash))) {
    throw new OAuthError('invalid_client', 'client authentication failed', 401);
  }
  return client;
}

type IssuedPair = { pair: TokenPair; access: string; refresh: string };

function newPair(ctx: AuthContext, now: number): IssuedPair {
  return pairOf(ctx, newSecret('mcpat_'), newSecret('mcprt_'), now);
}

/**
 * The pair that succeeds a refresh token is derived from it (an HMAC under a key of the broker's),
 * so a retry within the grace window gets the very same pair back while only hashes are stored:
 * whoever presents the old token then, client or thief, continues the one chain that reuse
 * detection watches, and cannot start a second one.
 */
function successorPair(ctx: AuthContext, refreshToken: string, now: number): IssuedPair {
  const derive = (prefix: string) =>
    prefix + createHmac('sha256', ctx.successorKey).update(`${prefix}${refreshToken}`).digest('base64url');
  return pairOf(ctx, derive('mcpat_'), derive('mcprt_'), now);
}

function pairOf(ctx: AuthContext, access: string, refresh: string, now: number): IssuedPair {
  return {
    access,
    refresh,
    pair: {
      accessHash: hashSecret(access),
      accessExpiresAt: now + ctx.accessTokenTtlMs,
      refreshHash: hashSecret(refresh),
      refreshExpiresAt: now + ctx.refreshTokenTtlMs,
    },
  };
}

function tokenResponse(
  t: { access: string; refresh: string },
  scopes: string[],
  expiresInMs: number,
): OAuthResponse {
  return json(
    200,
    {
      access_token: t.access,
      token_type: 'Bearer',
      expires_in: Math.max(0, Math.floor(expiresInMs / 1000)),
      refresh_token: t.refresh,
      scope: scopes.join(' '),
    },
    { pragma: 'no-cache' },
  );
}

function checkResource(form: Params, expected: string): void {
  const resource = one(form, 'resource');
  if (resource !== undefined && resource !== expected)
    throw new OAuthError('invalid_target', 'resource does not match the grant');
}

async function codeGrant(
  ctx: AuthContext,
  client: ClientRecord,
  form: Params,
  now: number,
): Promise<OAuthResponse> {
  const code = one(form, 'code', true);
  const redirectUri = one(form, 'redirect_uri', true);
  const verifier = one(form, 'code_verifier', true);
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier))
    throw new OAuthError('invalid_request', 'code_verifier is malformed');
  const codeHash = hashSecret(code);
  const row = await ctx.store.getCode(codeHash);
  if (!row || row.clientId !== client.clientId)
    throw new OAuthError('invalid_grant', 'unknown authorization code');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const verified = safeEqual(challenge, row.codeChallenge);
  if (row.usedAt !== null) {
    // A used code seen again means it leaked (RFC 6749 §4.1.2), but revoking is the victim's loss
    // if anyone can trigger it: only a replay by the authenticated client, or one that proves it
    // holds the verifier, revokes what the code issued.
    if (client.authMethod !== 'none' || verified) {
      ctx.audit?.record({ event: 'code_replay_detected', clientId: client.clientId, grantId: row.grantId });
      await ctx.store.revokeGrant(row.grantId);
      throw new OAuthError('invalid_grant', 'authorization code was already used; its tokens are revoked');
    }
    ctx.log.warn(
      { clientId: client.clientId, grantId: row.grantId },
      'a used authorization code was presented again without its verifier; refused, its tokens kept',
    );
    throw new OAuthError('invalid_grant', 'authorization code was already used');
  }
  if (row.expiresAt <= now) throw new OAuthError('invalid_grant', 'authorization code expired');
  if (row.redirectUri !== redirectUri)
    throw new OAuthError('invalid_grant', 'redirect_uri differs from the authorization request');
  if (!verified) throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
  checkResource(form, row.resource);
  const t = newPair(ctx, now);
  if ((await ctx.store.redeemCode(codeHash, now, t.pair)) !== 'ok') {
    throw new OAuthError('invalid_grant', 'authorization code was already used; its tokens are revoked');
  }
  const grant = await grantOf(ctx, t.access);
  metrics.tokens.inc({ grant_type: 'authorization_code' });
  ctx.audit?.record({
    event: 'token_issued',
    grantType: 'authorization_code',
    login: grant.login,
    clientId: client.clientId,
    grantId: grant.grantId,
  });
  return tokenResponse(t, grant.scopes, ctx.accessTokenTtlMs);
}

async function grantOf(ctx: AuthContext, access: string): Promise<GrantRecord> {
  const found = await ctx.store.findAccessToken(hashSecret(access));
  if (!found) throw new OAuthError('invalid_grant', 'the grant was revoked meanwhile');
  return found.grant;
}

async function refreshGrant(
  ctx: AuthContext,
  client: ClientRecord,
  form: Params,
  now: number,
): Promise<OAuthResponse> {
  const refresh = one(form, 'refresh_token', true);
  checkResource(form, resourceUrl(ctx.publicUrl)); // the broker has one resource; every grant is for it
  const t = successorPair(ctx, refresh, now);
  const outcome = await ctx.store.rotateRefreshToken(
    hashSecret(refresh),
    client.clientId,
    now,
    ctx.refreshReuseGraceMs,
    t.pair,
  );
  if (!outcome.ok) {
    const why = {
      unknown: 'unknown refresh token',
      expired: 'refresh token expired',
      wrong_client: 'refresh token was not issued to this client',
      reused: 'refresh token was already used; the grant is revoked',
    }[outcome.reason];
    if (outcome.reason === 'reused')
      ctx.audit?.record({ event: 'refresh_reuse_detected', clientId: client.clientId });
    throw new OAuthError('invalid_grant', why);
  }
  metrics.tokens.inc({ grant_type: 'refresh_token' });
  ctx.audit?.record({
    event: 'token_issued',
    grantType: 'refresh_token',
    login: outcome.grant.login,
    clientId: client.clientId,
    grantId: outcome.grant.grantId,
  });
  return tokenResponse(t, outcome.grant.scopes, outcome.accessExpiresAt - now);
}

/**
 * A client id in a request proves nothing, so its rate-limit bucket is charged only once the
 * request proved it is that client: a confidential client when it authenticated (then its bucket
 * pays at once, and an empty one refuses), a public client when its grant checked out (its bucket
 * is only looked at here, and paid in `settle`). This keeps a stranger from locking a client out.
 */
function admit(ctx: AuthContext, req: OAuthRequest, client: ClientRecord): OAuthResponse | undefined {
  const key = clientKey(client.clientId, req.ip);
  const wait = client.authMethod === 'none' ? ctx.rateLimits.wait(key) : ctx.rateLimits.take(key);
  if (wait === 0) return undefined;
  metrics.rateLimited.inc({ bucket: 'token-client' });
  return slowDown(wait);
}

/** Charges what `admit` left open: a public client's proven request to it, any failure before that to the source. */
function settle(
  ctx: AuthContext,
  req: OAuthRequest,
  client: ClientRecord | undefined,
  proven: boolean,
): void {
  if (client && client.authMethod !== 'none') return;
  ctx.rateLimits.take(client && proven ? clientKey(client.clientId, req.ip) : failureKey(req.ip));
}

export async function token(ctx: AuthContext, req: OAuthRequest, now = Date.now()): Promise<OAuthResponse> {
  let client: ClientRecord | undefined;
  try {
    const form = formOf(req);
    const grantType = one(form, 'grant_type', true);
    client = await authenticateClient(ctx, req, form);
    const refused = admit(ctx, req, client);
    if (refused) return refused;
    let res: OAuthResponse;
    if (grantType === 'authorization_code') res = await codeGrant(ctx, client, form, now);
    else if (grantType === 'refresh_token') res = await refreshGrant(ctx, client, form, now);
    else
      throw new OAuthError(
        'unsupported_grant_type',
        'grant_type must be authorization_code or refresh_token',
      );
    settle(ctx, req, client, true);
    return res;
  } catch (e) {
    if (!(e instanceof OAuthError)) throw e;
    settle(ctx, req, client, false);
    return errorJson(e, e.status === 401 ? UNAUTHORIZED : {});
  }
}

export async function revoke(ctx: AuthContext, req: OAuthRequest): Promise<OAuthResponse> {
  let client: ClientRecord | undefined;
  try {
    const form = formOf(req);
    client = await authenticateClient(ctx, req, form);
    const refused = admit(ctx, req, client);
    if (refused) return refused;
    const value = one(form, 'token', true);
    const hint = one(form, 'token_type_hint');
    if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') {
      throw new OAuthError('unsupported_token_type', 'token_type_hint must be access_token or refresh_token');
    }
    // Both kinds live in one table keyed by hash, so the hint is not needed to find the token.
    // An unknown token, or one of another client, is answered 200 like any other (RFC 7009 §2.2),
    // but only a token of this client proves a public client is who it says.
    const kind = await ctx.store.revokeToken(hashSecret(value), client.clientId);
    settle(ctx, req, client, kind !== undefined);
    if (kind) ctx.audit?.record({ event: 'token_revoked', kind, clientId: client.clientId });
    return { status: 200, headers: { 'cache-control': 'no-store' } };
  } catch (e) {
    if (!(e instanceof OAuthError)) throw e;
    settle(ctx, req, client, false);
    return errorJson(e, e.status === 401 ? UNAUTHORIZED : {});
  }
}
