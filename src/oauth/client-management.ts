// RFC 7592 client configuration endpoint, `<issuer>/oauth/register/<client_id>`: a dynamically
// registered client reads, updates or deletes its own registration with the registration access
// token it got at registration. Claude.ai gives up on a registration response without
// `registration_client_uri`; a client that deletes itself keeps the registration table small.
//
// The token is stored only as a hash, so a read or an update answers with the token the client
// presented (RFC 7592 §3 requires the field; the client keeps using the same one). Every failure to
// authenticate is the same 401 whether the client exists or not, so one client's token reveals
// nothing about another client's URI.
import { hashSecret, safeEqual } from '../store/secrets.ts';
import type { ClientRecord } from '../store/store.ts';
import type { AuthContext } from './context.ts';
import { clientInformation, storedMetadata, validateClientMetadata } from './register.ts';
import { errorJson, header, json, OAuthError, type OAuthRequest, type OAuthResponse } from './respond.ts';

// Compared against when the client is unknown, so that case takes the same path as a wrong token.
const NO_TOKEN_HASH = hashSecret('no registration access token');

/** Fields RFC 7592 §2.2 forbids in an update request: the server sets them. */
const SERVER_FIELDS = [
  'registration_access_token',
  'registration_client_uri',
  'client_secret_expires_at',
  'client_id_issued_at',
];

type Authorized = { client: ClientRecord; token: string };

function unauthorized(description: string, tokenPresented: boolean): OAuthResponse {
  // RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
  const challenge = tokenPresented
    ? `Bearer error="invalid_token", error_description="${description}"`
    : 'Bearer';
  return errorJson(new OAuthError('invalid_token', description, 401), { 'www-authenticate': challenge });
}

/** The client of the URI if the bearer is its registration access token; a 401 response otherwise. */
async function authorizeRequest(ctx: AuthContext, req: OAuthRequest): Promise<Authorized | OAuthResponse> {
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header(req, 'authorization') ?? '');
  if (!m) return unauthorized('a registration access token is required', false);
  const token = m[1] as string;
  const clientId = req.params?.['clientId'] ?? '';
  const client = clientId.length <= 200 ? await ctx.store.getClient(clientId) : undefined;
  const expected = client?.registrationTokenHash ?? NO_TOKEN_HASH;
  if (!client?.registrationTokenHash || !safeEqual(hashSecret(token), expected)) {
    return unauthorized('the registration access token is not valid for this client', true);
  }
  return { client, token };
}

function information(ctx: AuthContext, metadata: Record<string, unknown>, token: string): OAuthResponse {
  return json(200, clientInformation(ctx.publicUrl, metadata, token), { pragma: 'no-cache' });
}

/** GET: the client's current metadata (RFC 7592 §2.1). */
export async function readClient(ctx: AuthContext, req: OAuthRequest): Promise<OAuthResponse> {
  const auth = await authorizeRequest(ctx, req);
  if (!('client' in auth)) return auth;
  return information(ctx, auth.client.metadata, auth.token);
}

/**
 * PUT: replaces the metadata (RFC 7592 §2.2), validated as at registration. Omitted fields take
 * their defaults, except the token endpoint auth method, which keeps its value and cannot change:
 * the secret (or its absence) was issued for it.
 */
export async function updateClient(ctx: AuthContext, req: OAuthRequest): Promise<OAuthResponse> {
  const auth = await authorizeRequest(ctx, req);
  if (!('client' in auth)) return auth;
  const { client, token } = auth;
  try {
    const type = header(req, 'content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new OAuthError('invalid_request', 'the body must be application/json');
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new OAuthError('invalid_client_metadata', 'the body must be a JSON object');
    const m = body as Record<string, unknown>;
    if (m['client_id'] !== client.clientId)
      throw new OAuthError('invalid_request', 'client_id must be present and equal to this client’s');
    const forbidden = SERVER_FIELDS.filter((f) => f in m);
    if (forbidden.length > 0)
      throw new OAuthError('invalid_request', `the request must not include ${forbidden.join(', ')}`);
    const secret = m['client_secret'];
    if (secret !== undefined) {
      const matches =
        typeof secret === 'string' &&
        client.secretHash !== null &&
        safeEqual(hashSecret(secret), client.secretHash);
      if (!matches) throw new OAuthError('invalid_request', 'client_secret does not match this client’s');
    }
    const v = validateClientMetadata(m, client.authMethod);
    if (v.authMethod !== client.authMethod) {
      throw new OAuthError(
        'invalid_client_metadata',
        'token_endpoint_auth_method cannot change; register a new client instead',
      );
    }
    const issuedAt = client.metadata['client_id_issued_at'] as number;
    const metadata = storedMetadata(client.clientId, issuedAt, v, client.secretHash !== null);
    const ok = await ctx.store.updateClient(client.clientId, {
      name: v.name,
      redirectUris: v.redirectUris,
      metadata,
    });
    if (!ok) return unauthorized('the registration access token is not valid for this client', true);
    ctx.log.info({ clientId: client.clientId }, 'client registration updated');
    return information(ctx, metadata, token);
  } catch (e) {
    if (e instanceof OAuthError) return errorJson(e);
    throw e;
  }
}

/** DELETE: the client, its grants (sessions close) and its sign-ins in progress (RFC 7592 §2.3). */
export async function deleteClient(ctx: AuthContext, req: OAuthRequest): Promise<OAuthResponse> {
  const auth = await authorizeRequest(ctx, req);
  if (!('client' in auth)) return auth;
  if (!(await ctx.store.deleteClient(auth.client.clientId)))
    return unauthorized('the registration access token is not valid for this client', true);
  ctx.log.info({ clientId: auth.client.clientId }, 'client deleted itself');
  ctx.audit?.record({ event: 'grant_revoked', by: 'client', clientId: auth.client.clientId });
  return { status: 204, headers: { 'cache-control': 'no-store' } };
}
