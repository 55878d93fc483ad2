// Builds the broker's parts from a validated config: store, Forgejo client, credentials, the
// authorization server and the HTTP app. main.ts adds signals and listening; tests use it as is.
import { dirname } from 'node:path';
import { Audit } from '../audit/audit.ts';
import type { Config } from '../config/config.ts';
import { ForgejoClient } from '../forgejo/client.ts';
import { CredentialManager } from '../forgejo/credentials.ts';
import { Gateway } from '../gateway/gateway.ts';
import { registerMcpRoutes } from '../gateway/routes.ts';
import { type BuildInfo, readBuildInfo } from '../http/build-info.ts';
import { registerMetricsRoute } from '../http/metrics-route.ts';
import { registerOAuthRoutes } from '../http/oauth-routes.ts';
import { RateLimiter } from '../http/rate-limit.ts';
import { type App, createHttpServer } from '../http/server.ts';
import type { Logger } from '../log/log.ts';
import { observe } from '../metrics/metrics.ts';
import { type AuthServer, createAuthServer } from '../oauth/auth-server.ts';
import { CimdResolver } from '../oauth/cimd.ts';
import { CATALOGUE } from '../policy/catalogue.ts';
import { Policy } from '../policy/policy.ts';
import { Pool, type PoolUser } from '../pool/pool.ts';
import { openStore } from '../store/open.ts';
import { deriveKey } from '../store/secrets.ts';
import type { BrokerStore } from '../store/store.ts';
import { detectIsolation, type Isolation, Supervisor } from '../supervisor/supervisor.ts';
import { callTelemetry } from './telemetry.ts';
import { recordingChildren, startUpkeep } from './upkeep.ts';

export type Broker = {
  app: App;
  store: BrokerStore;
  auth: AuthServer;
  gateway: Gateway;
  pool: Pool;
  supervisor: Supervisor;
  buildInfo: BuildInfo;
  audit: Audit;
  /** Stops the periodic purge (before the store closes). */
  stopPurge(): void;
  close(): Promise<void>;
};

const PURGE_EVERY_MS = 60_000;

/** How far ahead of its token's expiry a child is replaced (capped at a third of the token's life). */
const ROTATE_MARGIN_MS = 60_000;
const CHILD_STOP_GRACE_MS = 3_000;

/** The sandbox the host allows, said once at startup; the database folder holds the key file too. */
function childIsolation(config: Config, log: Logger): Isolation {
  // The SQLite folder holds the key file too; a PostgreSQL database is not on this machine's disk.
  const hide = config.dbKind === 'sqlite' ? [dirname(config.db)] : [];
  const { isolation, problem } = detectIsolation(config.childIsolation, { hide });
  if (isolation.kind === 'none')
    log.warn(
      { isolation: 'none', ...(problem ? { reason: problem } : {}) },
      `child isolation is off: ${isolation.summary}`,
    );
  else log.info({ isolation: isolation.kind }, `child isolation: ${isolation.summary}`);
  return isolation;
}

export function buildBroker(config: Config, log: Logger, opts: { cimdExtraCa?: string[] } = {}): Broker {
  const [, ...args] = config.childCommand;
  const commandPath = config.childCommandPath;
  const isolation = childIsolation(config, log);
  // Read once: it may run `git rev-parse`.
  const buildInfo = readBuildInfo();
  const store = openStore({
    kind: config.dbKind,
    db: config.db,
    secretKey: config.secretKey,
    previousKeys: config.previousSecretKeys,
  });
  const upkeep = startUpkeep(store, log);
  const forgejo = new ForgejoClient({
    forgejoUrl: config.forgejoUrl,
    clientId: config.forgejoClientId,
    clientSecret: config.forgejoClientSecret,
    redirectUri: `${config.publicUrl}/oauth/callback`,
    scope: config.forgejoScope,
  });
  const audit = new Audit({ log, file: config.auditFile, arguments: config.auditArguments });
  const credentials = new CredentialManager({
    store,
    forgejo,
    log,
    refreshMarginMs: config.forgejoRefreshMargin,
    audit,
  });
  const policy = new Policy({ allow: config.tools, deny: config.toolsDeny });
  let gateway: Gateway | undefined;
  // Set once the pool exists (below); a sign-in cannot finish before the server listens.
  let pool: Pool | undefined;
  const rateLimits = new RateLimiter(config.rateLimit);
  const auth = createAuthServer(
    {
      publicUrl: config.publicUrl,
      store,
      forgejo,
      forgejoUrl: config.forgejoUrl,
      forgejoScope: config.forgejoScope,
      cimd: new CimdResolver({
        allowPrivateHosts: config.cimdAllowPrivateHosts,
        extraCa: opts.cimdExtraCa,
        timeoutMs: config.cimdTimeout,
        log,
      }),
      log,
      accessTokenTtlMs: config.accessTokenTtl,
      refreshTokenTtlMs: config.refreshTokenTtl,
      refreshReuseGraceMs: config.refreshReuseGrace,
      rateLimits,
      successorKey: deriveKey(config.secretKey, 'forgejo-mcp-broker refresh successor v1'),
      allowedUsers: config.allowedUsers,
      allowedOrgs: config.allowedOrgs,
      offersWrite: policy.offersWrite(CATALOGUE.keys()),
      activeSessions: (grantId) => gateway?.activeConnections(grantId) ?? 0,
      audit,
      ...(config.childPrewarm ? { signedIn: (user: PoolUser) => void pool?.prewarm(user) } : {}),
    },
    credentials,
    { ttlMs: config.unusedClientTtl, max: config.maxUnusedClients },
  );
  const app = createHttpServer({
    log,
    store,
    buildInfo,
    trustedProxies: config.trustedProxies,
    limits: {
      bodyTimeoutMs: config.bodyTimeout,
      requestTimeoutMs: config.requestTimeout,
      keepAliveTimeoutMs: config.keepAliveTimeout,
      unauthenticatedBufferBytes: config.unauthenticatedBuffer,
    },
  });
  registerOAuthRoutes(app, auth, { perKey: rateLimits, perIp: new RateLimiter(config.rateLimit * 10) });
  if (config.metricsToken) registerMetricsRoute(app, config.metricsToken);
  const supervisor = new Supervisor({
    log,
    limits: { graceMs: CHILD_STOP_GRACE_MS },
    isolation,
  });
  pool = new Pool({
    command: commandPath,
    args,
    forgejoUrl: config.forgejoUrl,
    idleMs: config.childIdle,
    maxChildren: config.maxChildren,
    rotateMarginMs: ROTATE_MARGIN_MS,
    stopGraceMs: CHILD_STOP_GRACE_MS,
    bridge: {
      initTimeoutMs: config.childStartTimeout,
      callTimeoutMs: config.callTimeout,
      maxLineBytes: 8 * 1024 * 1024,
      clientInfo: { name: 'forgejo-mcp-broker', version: buildInfo.version },
      protocolVersion: '2025-11-25',
    },
    spawner: recordingChildren(supervisor, store, log),
    tokens: {
      accessToken: (userId, o) => credentials.accessToken(userId, o),
      recheck: (userId, token) => credentials.recheck(userId, token),
    },
    log,
    events: {
      notification: (userId, msg) => gateway?.broadcast(userId, msg),
      orphanRequest: (userId, msg) => gateway?.orphanRequest(userId, msg),
    },
  });
  gateway = new Gateway({
    publicUrl: config.publicUrl,
    allowedOrigins: config.allowedOrigins,
    allowedHosts: config.allowedHosts,
    verifyBearer: auth.verifyBearer,
    pool,
    log,
    sse: { maxQueuedBytes: 4 * 1024 * 1024, keepAliveMs: 15_000 },
    maxSessionsPerUser: config.maxSessionsPerUser,
    sessionIdleMs: config.sessionIdle,
    sessionStore: store,
    parkTtlMs: config.callTimeout,
    requestStateKey: deriveKey(config.secretKey, 'forgejo-mcp-broker request state v1'),
    tasks: { afterMs: config.taskAfter, ttlMs: config.taskTtl, maxPerUser: config.maxTasksPerUser },
    maxResultChars: config.maxResultChars,
    events: credentials.events,
    policy,
    onCall: callTelemetry(store, audit),
    onRefused: (r) =>
      audit.record({
        event: 'policy_refused',
        login: r.login,
        clientId: r.clientId,
        tool: r.name,
        reason: r.reason,
      }),
  });
  registerMcpRoutes(app, gateway);
  const live = gateway;
  observe({
    childrenLive: () => pool.liveChildren,
    sessionsOpen: () => live.sessions.size,
    streamsOpen: () => live.streamCount,
    pendingAuthorizations: () => store.pendingAuthRequests(Date.now()),
  });
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
    gateway,
    pool,
    supervisor,
    buildInfo,
    audit,
    stopPurge: () => {
      clearInterval(purge);
      upkeep.stop();
    },
    close: async () => {
      clearInterval(purge);
      upkeep.stop();
      gateway?.close();
      await app.close();
      await pool.stopAll(Date.now() + 1000);
      await supervisor.stopAll(1000, 200);
      await audit.close();
      await store.close();
    },
  };
}
