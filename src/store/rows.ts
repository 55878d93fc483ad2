// Records as both backends read them back: the same tables and columns on SQLite and PostgreSQL
// (src/store/*/migrations), so one mapper per table serves both stores.
import { unpackMetadata } from './client-metadata.ts';
import type { Keyring } from './secrets.ts';
import type {
  AuthMethod,
  AuthRequestRecord,
  ClientRecord,
  ForgejoCredential,
  GrantMode,
  GrantRecord,
} from './store.ts';

type Row = Record<string, unknown>;

/** Scopes are stored space-separated; none is the empty string. */
export function splitScopes(s: string): string[] {
  return s === '' ? [] : s.split(' ');
}

export function clientFromRow(r: Row): ClientRecord {
  const clientId = r['client_id'] as string;
  const name = r['name'] as string;
  const redirectUris = JSON.parse(r['redirect_uris'] as string) as string[];
  return {
    clientId,
    secretHash: r['secret_hash'] as string | null,
    authMethod: r['auth_method'] as AuthMethod,
    name,
    redirectUris,
    metadata: unpackMetadata(r['metadata'] as string, clientId, name, redirectUris),
    createdAt: r['created_at'] as number,
    usedAt: r['used_at'] as number | null,
    registrationTokenHash: r['registration_token_hash'] as string | null,
  };
}

/** A pending sign-in; its PKCE verifier for Forgejo is sealed under the request's own id. */
export function authRequestFromRow(r: Row, keys: Keyring): AuthRequestRecord {
  const idHash = r['id_hash'] as string;
  const sealed = r['upstream_verifier'] as string | null;
  return {
    idHash,
    browserHash: r['browser_hash'] as string,
    csrfHash: r['csrf_hash'] as string,
    clientId: r['client_id'] as string,
    clientName: r['client_name'] as string,
    source: r['source'] as string,
    redirectUri: r['redirect_uri'] as string,
    clientState: r['client_state'] as string | null,
    codeChallenge: r['code_challenge'] as string,
    resource: r['resource'] as string,
    scopes: splitScopes(r['scopes'] as string),
    upstreamStateHash: r['upstream_state_hash'] as string | null,
    upstreamVerifier: sealed === null ? null : keys.open(sealed, `auth_request:${idHash}`),
    mode: (r['mode'] as GrantMode | null) ?? null,
    expiresAt: r['expires_at'] as number,
  };
}

export function grantFromRow(r: Row): GrantRecord {
  return {
    grantId: r['grant_id'] as string,
    userId: r['user_id'] as number,
    login: r['login'] as string,
    clientId: r['client_id'] as string,
    scopes: splitScopes(r['scopes'] as string),
    resource: r['resource'] as string,
    createdAt: r['created_at'] as number,
    mode: r['mode'] as GrantMode,
    clientName: r['client_name'] as string,
    redirectUri: r['redirect_uri'] as string,
    lastUsedAt: r['last_used_at'] as number | null,
  };
}

/** The grant with a use the bearer check saw but has not flushed yet, which is newer. */
export function withPendingUse(g: GrantRecord, used: ReadonlyMap<string, number>): GrantRecord {
  const pending = used.get(g.grantId);
  return pending && pending > (g.lastUsedAt ?? 0) ? { ...g, lastUsedAt: pending } : g;
}

/** A user's Forgejo credential; both tokens are sealed under the user's id. */
export function credentialFromRow(userId: number, r: Row, keys: Keyring): ForgejoCredential {
  const ctx = `forgejo_credential:${userId}`;
  return {
    userId,
    login: r['login'] as string,
    accessToken: keys.open(r['access_token'] as string, ctx),
    refreshToken: keys.open(r['refresh_token'] as string, ctx),
    expiresAt: r['expires_at'] as number,
    updatedAt: r['updated_at'] as number,
  };
}
