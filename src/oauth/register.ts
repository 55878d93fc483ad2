// RFC 7591 dynamic client registration. The secret and the RFC 7592 registration access token are
// returned once and stored only hashed.
import { randomUUID } from 'node:crypto';
import { metrics } from '../metrics/metrics.ts';
import { hashSecret, newSecret } from '../store/secrets.ts';
import type { AuthMethod, ClientRecord, OAuthStore, RegistrationBudget } from '../store/store.ts';
import { registrationClientUri } from './metadata.ts';
import { redirectUriProblem } from './redirect-uri.ts';
import { errorJson, json, OAuthError, type OAuthResponse } from './respond.ts';

const AUTH_METHODS: AuthMethod[] = ['client_secret_post', 'client_secret_basic', 'none'];
const GRANT_TYPES = ['authorization_code', 'refresh_token'];

// The consent page shows the name: bidi controls (U+202E and kin) and zero-width or other invisible
// characters would let it read as another application's name, so they are refused, with every
// other control, format, private-use or unassigned character and line separator.
const UNSAFE_NAME_CHARACTER = /[\p{C}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

export function cleanClientName(raw: unknown, fallback: string): string {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || raw.trim() === '' || raw.length > 200 || UNSAFE_NAME_CHARACTER.test(raw)) {
    throw new OAuthError(
      'invalid_client_metadata',
      'client_name must be printable text of at most 200 characters, without control, bidi or invisible characters',
    );
  }
  return raw.trim();
}

/** Validates redirect URIs for a client; the whole list fails on the first bad entry. */
export function checkRedirectUris(raw: unknown, publicClient: boolean, errorCode: string): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 20) {
    throw new OAuthError(errorCode, 'redirect_uris must be a list of 1 to 20 URIs');
  }
  for (const uri of raw) {
    const problem = redirectUriProblem(uri, publicClient);
    if (problem) throw new OAuthError(errorCode, problem);
  }
  return raw as string[];
}

function stringList(raw: unknown, name: string, dflt: string[], allowed: string[]): string[] {
  if (raw === undefined) return dflt;
  if (!Array.isArray(raw) || raw.some((g) => typeof g !== 'string' || !allowed.includes(g))) {
    throw new OAuthError('invalid_client_metadata', `${name} may contain only ${allowed.join(', ')}`);
  }
  return [...new Set(raw as string[])];
}

/** The metadata a client may set, validated the same way at registration and at an RFC 7592 update. */
export type ClientMetadata = {
  authMethod: AuthMethod;
  name: string;
  redirectUris: string[];
  grantTypes: string[];
  responseTypes: string[];
};

/**
 * What one registration may store. Anyone may register, and Claude.ai registers anew for every
 * connection, so each one is kept small: real clients' redirect URIs are well under 100 characters
 * and VS Code's list, the longest seen, has four.
 */
export const REGISTRATION_LIMITS = { redirectUris: 10, redirectUriLength: 512, metadataBytes: 4096 };

/** Refuses metadata beyond REGISTRATION_LIMITS, at registration and at an RFC 7592 update alike. */
export function checkRegistrationSize(v: ClientMetadata): void {
  const L = REGISTRATION_LIMITS;
  if (v.redirectUris.length > L.redirectUris)
    throw new OAuthError('invalid_redirect_uri', `at most ${L.redirectUris} redirect URIs`);
  if (v.redirectUris.some((u) => u.length > L.redirectUriLength))
    throw new OAuthError(
      'invalid_redirect_uri',
      `redirect URIs must be at most ${L.redirectUriLength} characters`,
    );
  if (Buffer.byteLength(JSON.stringify(v)) > L.metadataBytes)
    throw new OAuthError(
      'invalid_client_metadata',
      `the client metadata must be at most ${L.metadataBytes} bytes`,
    );
}

/** RFC 7591 §2 for this server; `defaultAuthMethod` applies when the field is absent. */
export function validateClientMetadata(
  body: unknown,
  defaultAuthMethod: AuthMethod = 'client_secret_basic',
): ClientMetadata {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new OAuthError('invalid_client_metadata', 'the body must be a JSON object');
  }
  const m = body as Record<string, unknown>;
  const method = m['token_endpoint_auth_method'] ?? defaultAuthMethod;
  if (!AUTH_METHODS.includes(method as AuthMethod)) {
    throw new OAuthError(
      'invalid_client_metadata',
      `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}`,
    );
  }
  const authMethod = method as AuthMethod;
  const redirectUris = checkRedirectUris(m['redirect_uris'], authMethod === 'none', 'invalid_redirect_uri');
  const grantTypes = stringList(m['grant_types'], 'grant_types', ['authorization_code'], GRANT_TYPES);
  if (!grantTypes.includes('authorization_code')) {
    throw new OAuthError('invalid_client_metadata', 'grant_types must include authorization_code');
  }
  const responseTypes = stringList(m['response_types'], 'response_types', ['code'], ['code']);
  if (m['scope'] !== undefined && typeof m['scope'] !== 'string') {
    throw new OAuthError('invalid_client_metadata', 'scope must be a string');
  }
  const name = cleanClientName(m['client_name'], 'Unnamed MCP client');
  const v = { authMethod, name, redirectUris, grantTypes, responseTypes };
  checkRegistrationSize(v);
  return v;
}

/** The stored metadata: what GET returns again, without any secret. */
export function storedMetadata(
  clientId: string,
  issuedAt: number,
  v: ClientMetadata,
  hasSecret: boolean,
): Record<string, unknown> {
  return {
    client_id: clientId,
    client_id_issued_at: issuedAt,
    client_name: v.name,
    redirect_uris: v.redirectUris,
    token_endpoint_auth_method: v.authMethod,
    grant_types: v.grantTypes,
    response_types: v.responseTypes,
    ...(hasSecret ? { client_secret_expires_at: 0 } : {}),
  };
}

/** The client information response (RFC 7591 §3.2.1 with RFC 7592 §3's two fields). */
export function clientInformation(
  publicUrl: string,
  metadata: Record<string, unknown>,
  registrationToken: string,
  secret?: string,
): Record<string, unknown> {
  return {
    ...metadata,
    ...(secret ? { client_secret: secret } : {}),
    registration_client_uri: registrationClientUri(publicUrl, metadata['client_id'] as string),
    registration_access_token: registrationToken,
  };
}

/**
 * `budget` bounds the registrations waiting for their first sign-in (BROKER_MAX_UNUSED_CLIENTS);
 * when it is full, abandoned ones (older than a sign-in can take) make room, and a flood of fresh
 * ones is refused with 503 until they age: no stranger can evict a registration whose user is
 * signing in right now.
 */
export async function register(
  store: OAuthStore,
  publicUrl: string,
  body: unknown,
  budget: RegistrationBudget,
  now = Date.now(),
): Promise<OAuthResponse> {
  try {
    const v = validateClientMetadata(body);
    const clientId = randomUUID();
    const secret = v.authMethod === 'none' ? undefined : newSecret('mcpcs_');
    const registrationToken = newSecret('mcprat_');
    const metadata = storedMetadata(clientId, Math.floor(now / 1000), v, secret !== undefined);
    const client: ClientRecord = {
      clientId,
      secretHash: secret ? hashSecret(secret) : null,
      authMethod: v.authMethod,
      name: v.name,
      redirectUris: v.redirectUris,
      metadata,
      createdAt: now,
      usedAt: null,
      registrationTokenHash: hashSecret(registrationToken),
    };
    if (!(await store.insertClient(client, budget))) {
      metrics.registrations.inc({ outcome: 'refused' });
      return json(
        503,
        {
          error: 'temporarily_unavailable',
          error_description: 'too many registrations are waiting for their first sign-in; retry in a minute',
        },
        { 'retry-after': '60' },
      );
    }
    metrics.registrations.inc({ outcome: 'ok' });
    return json(201, clientInformation(publicUrl, metadata, registrationToken, secret));
  } catch (e) {
    if (e instanceof OAuthError) {
      metrics.registrations.inc({ outcome: 'refused' });
      return errorJson(e);
    }
    throw e;
  }
}
