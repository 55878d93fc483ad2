// The check /mcp runs on every request: the token's hash, looked up in memory or in the store.
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

/** How long a verified token is trusted without the store: a bound for a missed revocation event. */
export const BEARER_CACHE_TTL_MS = 30_000;
/** Entries kept at most; the oldest go first (only tokens that verified are ever cached). */
export const BEARER_CACHE_MAX = 10_000;

type Cached = { principal: Principal; until: number };

/**
 * The bearer check of every /mcp request. A token that verified is kept in memory (by its hash) so a
 * tool call costs no database read; every revocation the store announces — its own, or another
 * process's through the change log — drops the entries it concerns before the next request is
 * checked, and an entry older than BEARER_CACHE_TTL_MS is read again. Unknown or refused tokens are
 * never cached, so guessing cannot fill the cache.
 */
export function createBearerVerifier(store: OAuthStore, resource: string, requiredScope = 'mcp') {
  const cache = new Map<string, Cached>();
  // Bumped by every revocation: a lookup that started before one may not fill the cache with what
  // the revocation has just removed.
  let generation = 0;
  const drop = (match: (p: Principal) => boolean) => {
    generation++;
    for (const [hash, c] of cache) if (match(c.principal)) cache.delete(hash);
  };
  store.events.on('accessTokenRevoked', ({ tokenHash }) => {
    generation++;
    cache.delete(tokenHash);
  });
  store.events.on('grantRevoked', ({ grantId }) => drop((p) => p.grantId === grantId));
  store.events.on('userRevoked', (userId) => drop((p) => p.userId === userId));

  const verifyBearer = async (authorization: string | undefined, now = Date.now()): Promise<BearerResult> => {
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization?.trim() ?? '');
    if (!m) return { ok: false, error: 'invalid_token', description: 'a Bearer token is required' };
    const tokenHash = hashSecret(m[1] as string);
    const hit = cache.get(tokenHash);
    if (hit && hit.until > now) {
      if (hit.principal.expiresAt <= now) {
        cache.delete(tokenHash);
        return { ok: false, error: 'invalid_token', description: 'the token expired' };
      }
      store.noteGrantUsed(hit.principal.grantId, now);
      return { ok: true, principal: hit.principal };
    }
    const startedAt = generation;
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
    // Frozen: one object answers every request of this token while it is cached.
    const principal: Principal = Object.freeze({
      userId: g.userId,
      login: g.login,
      grantId: g.grantId,
      clientId: g.clientId,
      scopes: Object.freeze([...g.scopes]) as string[],
      resource: g.resource,
      mode: g.mode ?? 'write',
      expiresAt: found.expiresAt,
      tokenHash,
    });
    if (startedAt === generation) {
      cache.delete(tokenHash);
      if (cache.size >= BEARER_CACHE_MAX) cache.delete(cache.keys().next().value as string);
      cache.set(tokenHash, { principal, until: now + BEARER_CACHE_TTL_MS });
    }
    return { ok: true, principal };
  };
  /**
   * Forgets every cached token: for a change made to the database behind the store's back (a test
   * that ages tokens in place), which no event announces.
   */
  const forgetCached = (): void => {
    generation++;
    cache.clear();
  };
  return Object.assign(verifyBearer, { forgetCached });
}

export type VerifyBearer = ReturnType<typeof createBearerVerifier>;
