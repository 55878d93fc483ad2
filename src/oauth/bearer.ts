// The check /mcp runs on every request: one lookup by the token's hash.
import { hashSecret } from '../store/secrets.ts';
import type { GrantMode, OAuthStore } from '../store/store.ts';

export type Principal = {
  /** Forgejo user id. */
  userId: number;
  login: string;
  grantId: string;
  clientId: string;
  scopes: string[];
  resource: string;
  /** The grant's mode chosen on the consent page. */
  mode: GrantMode;
  expiresAt: number;
  /** SHA-256 of the bearer token: what a revocation of that one token is announced by. */
  tokenHash: string;
};

export type BearerResult =
  | { ok: true; principal: Principal }
  | { ok: false; error: 'invalid_token' | 'insufficient_scope'; description: string };

export function createBearerVerifier(store: OAuthStore, resource: string, requiredScope = 'mcp') {
  return async function verifyBearer(
    authorization: string | undefined,
    now = Date.now(),
  ): Promise<BearerResult> {
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization?.trim() ?? '');
    if (!m) return { ok: false, error: 'invalid_token', description: 'a Bearer token is required' };
    const tokenHash = hashSecret(m[1] as string);
    const found = await store.findAccessToken(tokenHash);
    if (!found) return { ok: false, error: 'invalid_token', description: 'the token is unknown or revoked' };
    if (found.expiresAt <= now)
      return { ok: false, error: 'invalid_token', description: 'the token expired' };
    const g = found.grant;
    if (g.resource !== resource)
      return { ok: false, error: 'invalid_token', description: 'the token is for another resource' };
    if (!g.scopes.includes(requiredScope)) {
      return {
        ok: false,
        error: 'insufficient_scope',
        description: `the token lacks the ${requiredScope} scope`,
      };
    }
    return {
      ok: true,
      principal: {
        userId: g.userId,
        login: g.login,
        grantId: g.grantId,
        clientId: g.clientId,
        scopes: g.scopes,
        resource: g.resource,
        mode: g.mode ?? 'write',
        expiresAt: found.expiresAt,
        tokenHash,
      },
    };
  };
}

export type VerifyBearer = ReturnType<typeof createBearerVerifier>;
