// Builds the broker's parts from a validated config: store, Forgejo client, credentials, the
// authorization server and the HTTP app. main.ts adds signals and listening; tests use it as is.
import type { Config } from '../config/config.ts';
import { ForgejoClient } from '../forgejo/client.ts';
import { CredentialManager } from '../forgejo/credentials.ts';
import { readBuildInfo } from '../http/build-info.ts';
import { registerOAuthRoutes } from '../http/oauth-routes.ts';
import { type App, createHttpServer } from '../http/server.ts';
import type { Logger } from '../log/log.ts';
import { type AuthServer, createAuthServer } from '../oauth/auth-server.ts';
import { CimdResolver } from '../oauth/cimd.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';

export type Broker = {
  app: App;
  store: SqliteStore;
  auth: AuthServer;
  /** Stops the periodic purge (before the store closes). */
  stopPurge(): void;
  close(): Promise<void>;
};

const PURGE_EVERY_MS = 60_000;

export function buildBroker(config: Config, log: Logger, opts: { cimdExtraCa?: string[] } = {}): Broker {
  const store = new SqliteStore({ path: config.db, secretKey: config.secretKey });
  const forgejo = new ForgejoClient({
    forgejoUrl: config.forgejoUrl,
    clientId: config.forgejoClientId,
    clientSecret: config.forgejoClientSecret,
    redirectUri: `${config.publicUrl}/oauth/callback`,
    scope: config.forgejoScope,
  });
  const credentials = new CredentialManager({
    store,
    forgejo,
    log,
    refreshMarginMs: config.forgejoRefreshMargin,
  });
  const auth = createAuthServer(
    {
      publicUrl: config.publicUrl,
      store,
      forgejo,
      forgejoUrl: config.forgejoUrl,
      forgejoScope: config.forgejoScope,
      cimd: new CimdResolver({ allowPrivateHosts: config.cimdAllowPrivateHosts, extraCa: opts.cimdExtraCa }),
      log,
      accessTokenTtlMs: config.accessTokenTtl,
      refreshTokenTtlMs: config.refreshTokenTtl,
      refreshReuseGraceMs: config.refreshReuseGrace,
      allowedUsers: config.allowedUsers,
      allowedOrgs: config.allowedOrgs,
    },
    credentials,
    config.unusedClientTtl,
  );
  const app = createHttpServer({
    log,
    store,
    buildInfo: readBuildInfo(),
    trustedProxies: config.trustedProxies,
  });
  registerOAuthRoutes(app, auth, config.rateLimit);
  const purge = setInterval(() => {
    auth.purge().then(
      (n) => n > 0 && log.debug({ rows: n }, 'purged expired rows'),
      (e: Error) => log.error({ err: { message: e.message } }, 'purge failed'),
    );
  }, PURGE_EVERY_MS);
  purge.unref();
  return {
    app,
    store,
    auth,
    stopPurge: () => clearInterval(purge),
    close: async () => {
      clearInterval(purge);
      await app.close();
      await store.close();
    },
  };
}
