// The per-user Forgejo credential (design decision 2): one per Forgejo user, shared by all of that
// user's broker grants, refreshed single-flight ahead of expiry. Forgejo refusing a refresh means
// the user revoked the app (or the credential is otherwise dead): all of their grants go.
import type { EventEmitter } from 'node:events';
import type { Audit } from '../audit/audit.ts';
import type { Logger } from '../log/log.ts';
import { metrics } from '../metrics/metrics.ts';
import type { OAuthStore, StoreEventMap } from '../store/store.ts';
import { type ForgejoClient, forgejoErrorFields, UpstreamGrantError } from './client.ts';

export class CredentialRevokedError extends Error {
  override name = 'CredentialRevokedError';
  /** Read structurally by the pool and the gateway: the user must sign in again (HTTP 401). */
  readonly signInRequired = true;
}

export type CredentialManagerOptions = {
  store: OAuthStore;
  forgejo: Pick<ForgejoClient, 'refresh' | 'accessTokenRejected'>;
  log: Logger;
  /** Refresh when the token expires within this many ms. */
  refreshMarginMs: number;
  audit?: Audit;
};

export class CredentialManager {
  readonly #opts: CredentialManagerOptions;
  readonly #inflight = new Map<number, Promise<{ token: string; expiresAt: number }>>();

  constructor(opts: CredentialManagerOptions) {
    this.#opts = opts;
  }

  /** `tokenChanged(userId)`, `userRevoked(userId)`, `grantRevoked({grantId, userId})`. */
  get events(): EventEmitter<StoreEventMap> {
    return this.#opts.store.events;
  }

  /**
   * The user's current Forgejo access token, refreshed first (once, however many callers ask at
   * the same time) when it expires within the margin or within `minValidityMs`.
   */
  async accessToken(
    userId: number,
    opts: { minValidityMs?: number; forceRefresh?: boolean } = {},
  ): Promise<{ token: string; expiresAt: number }> {
    const running = this.#inflight.get(userId);
    if (running) return running;
    const cred = await this.#opts.store.getCredential(userId);
    if (!cred) throw new CredentialRevokedError(`no Forgejo credential for user ${userId}`);
    const margin = Math.max(this.#opts.refreshMarginMs, opts.minValidityMs ?? 0);
    if (!opts.forceRefresh && cred.expiresAt - Date.now() > margin) {
      return { token: cred.accessToken, expiresAt: cred.expiresAt };
    }
    // Checked again: another caller may have started a refresh while we read the store.
    const again = this.#inflight.get(userId);
    if (again) return again;
    const flight = this.#refresh(userId, cred.refreshToken, cred.login).finally(() =>
      this.#inflight.delete(userId),
    );
    this.#inflight.set(userId, flight);
    return flight;
  }

  /**
   * After a child given `token` failed to start: if Forgejo refuses the token (the user revoked
   * the app, or the token died before its time), refresh it now. Forgejo refusing the refresh as
   * well signs the user out (CredentialRevokedError), so clients are asked to sign in again
   * instead of failing the same way on every call.
   */
  async recheck(userId: number, token: string): Promise<'valid' | 'refreshed'> {
    if (!(await this.#opts.forgejo.accessTokenRejected(token))) return 'valid';
    const cred = await this.#opts.store.getCredential(userId);
    if (cred && cred.accessToken !== token) return 'refreshed';
    this.#opts.log.warn(
      { userId, login: cred?.login },
      'Forgejo refuses the user’s access token; refreshing it',
    );
    await this.accessToken(userId, { forceRefresh: true });
    return 'refreshed';
  }

  async #refresh(
    userId: number,
    refreshToken: string,
    login: string,
  ): Promise<{ token: string; expiresAt: number }> {
    const { store } = this.#opts;
    return store.withCredentialLock(userId, async () => {
      // Re-read under the lock: another replica may have refreshed while this one waited, and its
      // refresh spent the token read before; the credential it stored is the current one.
      const current = await store.getCredential(userId);
      if (!current) throw new CredentialRevokedError(`no Forgejo credential for user ${userId}`);
      if (current.refreshToken !== refreshToken)
        return { token: current.accessToken, expiresAt: current.expiresAt };
      return this.#refreshNow(userId, refreshToken, login);
    });
  }

  async #refreshNow(
    userId: number,
    refreshToken: string,
    login: string,
  ): Promise<{ token: string; expiresAt: number }> {
    const { store, forgejo, log } = this.#opts;
    try {
      const t = await forgejo.refresh(refreshToken);
      await store.putCredential({ userId, login, ...t, updatedAt: Date.now() });
      metrics.refreshes.inc({ outcome: 'ok', error: '' });
      log.info({ userId, login }, 'Forgejo token refreshed');
      return { token: t.accessToken, expiresAt: t.expiresAt };
    } catch (e) {
      if (!(e instanceof UpstreamGrantError)) {
        metrics.refreshes.inc({ outcome: 'failed', error: (e as Error).name });
        throw e;
      }
      // A newer login may have replaced the credential while we refreshed the old one. Said in the
      // log: with the cluster-wide lock it should not happen, so each one is worth looking at.
      const now = await store.getCredential(userId);
      if (now && now.refreshToken !== refreshToken) {
        log.info(
          { userId, login, reason: e.message, ...forgejoErrorFields(e.cause) },
          'Forgejo refused a refresh token the credential no longer holds; using the one stored meanwhile',
        );
        return { token: now.accessToken, expiresAt: now.expiresAt };
      }
      log.warn(
        { userId, login, reason: e.message, ...forgejoErrorFields(e.cause) },
        'Forgejo credential is dead; revoking the user’s grants',
      );
      metrics.refreshes.inc({ outcome: 'refused', error: 'invalid_grant' });
      this.#opts.audit?.record({ event: 'grant_revoked', by: 'forgejo', userId, login });
      await store.revokeUser(userId);
      throw new CredentialRevokedError(e.message);
    }
  }
}
