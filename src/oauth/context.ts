import type { Audit } from '../audit/audit.ts';
import type { ForgejoClient } from '../forgejo/client.ts';
import type { Logger } from '../log/log.ts';
import type { ClientRecord, OAuthStore } from '../store/store.ts';
import { type CimdResolver, isCimdClientId } from './cimd.ts';
import type { RateLimits } from './rate-keys.ts';
import { OAuthError } from './respond.ts';

/** Everything the authorization server's handlers share. */
export type AuthContext = {
  publicUrl: string;
  store: OAuthStore;
  forgejo: Pick<ForgejoClient, 'authorizationUrl' | 'exchangeCode' | 'userinfo'>;
  forgejoUrl: string;
  forgejoScope: string;
  cimd: CimdResolver;
  log: Logger;
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  refreshReuseGraceMs: number;
  /** Buckets at the configured rate; the token endpoint charges them once it knows the caller. */
  rateLimits: RateLimits;
  /** Derives the pair that succeeds a refresh token (see `successorPair` in token.ts). */
  successorKey: Buffer;
  allowedUsers: string[];
  allowedOrgs: string[];
  /** Whether the operator's tool policy leaves anything but reads: the consent page's choice. */
  offersWrite?: boolean;
  /** Live MCP sessions and streams of a grant (from the gateway), for the connected-apps page. */
  activeSessions?: (grantId: string) => number;
  /** The audit trail (sign-ins, consent, tokens); absent in tests that do not look at it. */
  audit?: Audit;
  /** A user finished signing in (their Forgejo credential is stored): the pool may start their child. */
  signedIn?: (user: { id: number; login: string }) => void;
};

/**
 * A registered client, or one described by its Client ID Metadata Document (whose fetch is
 * abandoned when `signal` aborts: the browser left).
 */
export async function resolveClient(
  ctx: AuthContext,
  clientId: string,
  signal?: AbortSignal,
): Promise<ClientRecord> {
  if (isCimdClientId(clientId)) return ctx.cimd.resolve(clientId, { signal });
  const client = clientId.length <= 200 ? await ctx.store.getClient(clientId) : undefined;
  if (!client) throw new OAuthError('invalid_client', 'unknown client_id', 401);
  return client;
}
