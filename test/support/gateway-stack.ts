// The /mcp stack with real parts below the OAuth server: Fastify, gateway, pool, supervisor and
// real child processes. Bearer tokens map to fixed users here; the end-to-end tests run the real
// authorization server instead.
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BearerResult, Principal } from '../../src/gateway/gate.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { registerMcpRoutes } from '../../src/gateway/routes.ts';
import type { TaskOptions } from '../../src/gateway/tasks.ts';
import type { HttpLimits } from '../../src/http/limits.ts';
import { type App, createHttpServer, listen } from '../../src/http/server.ts';
import { Pool, type PoolOptions } from '../../src/pool/pool.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { captureLogger } from './log-capture.ts';

export const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');
export const CONFORMANCE_SERVER = join(import.meta.dirname, '..', 'fixtures', 'conformance-server.ts');
export const EVERYTHING = join(
  import.meta.dirname,
  '..',
  '..',
  'node_modules',
  '@modelcontextprotocol',
  'server-everything',
  'dist',
  'index.js',
);

export const USERS: Record<string, Principal> = {
  'token-alice': {
    userId: 1,
    login: 'alice',
    grantId: 'g-alice',
    clientId: 'c',
    scopes: ['mcp'],
    resource: '',
    expiresAt: Date.now() + 3_600_000,
  },
  // The same user through another grant (another client they authorized).
  'token-alice-2': {
    userId: 1,
    login: 'alice',
    grantId: 'g-alice-2',
    clientId: 'c2',
    scopes: ['mcp'],
    resource: '',
    expiresAt: Date.now() + 3_600_000,
  },
  'token-bob': {
    userId: 2,
    login: 'bob',
    grantId: 'g-bob',
    clientId: 'c',
    scopes: ['mcp'],
    resource: '',
    expiresAt: Date.now() + 3_600_000,
  },
};

/**
 * Adds bearer token `name` for alice: of her usual grant unless another is named, expiring when
 * told. Tests use it for two apps of one user, refreshed tokens and tokens about to expire.
 */
export function aliceToken(name: string, o: { grantId?: string; expiresInMs?: number } = {}): string {
  const alice = USERS['token-alice'] as Principal;
  USERS[name] = {
    ...alice,
    grantId: o.grantId ?? alice.grantId,
    tokenHash: `hash-${name}`,
    expiresAt: Date.now() + (o.expiresInMs ?? 3_600_000),
  };
  return name;
}

/** Reads a response body to its end in the background: what came so far, and when it ended (0: not yet). */
export function drainBody(res: Response): { text: () => string; endedAt: () => number } {
  let buf = '';
  let endedAt = 0;
  void (async () => {
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) break;
        buf += decoder.decode(chunk.value, { stream: true });
      }
    } catch {}
    endedAt = Date.now();
  })();
  return { text: () => buf, endedAt: () => endedAt };
}

export type GatewayStack = {
  url: string;
  app: App;
  gateway: Gateway;
  pool: Pool;
  supervisor: Supervisor;
  logs: ReturnType<typeof captureLogger>;
  close(): Promise<void>;
};

export async function startGatewayStack(
  opts: {
    args?: string[];
    pool?: Partial<PoolOptions>;
    callTimeoutMs?: number;
    maxSessionsPerUser?: number;
    tasks?: Partial<TaskOptions>;
    limits?: Partial<HttpLimits>;
    /** Revocation announcements, as the OAuth side makes them. */
    events?: EventEmitter;
    maxResultChars?: number;
    /** The requestState key (stacks given the same one act as replicas of one broker). */
    requestStateKey?: Buffer;
  } = {},
): Promise<GatewayStack> {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-gw-'));
  const logs = captureLogger('info');
  const store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 4) });
  const app = createHttpServer({
    log: logs.log,
    store,
    buildInfo: { version: 't', git: 't' },
    limits: opts.limits,
  });
  const supervisor = new Supervisor({ log: logs.log });
  let gateway: Gateway | undefined;
  const pool = new Pool({
    command: process.execPath,
    args: opts.args ?? [FAULT_SERVER],
    forgejoUrl: 'http://127.0.0.1:9',
    idleMs: 60_000,
    maxChildren: 10,
    rotateMarginMs: 1000,
    stopGraceMs: 1000,
    bridge: {
      initTimeoutMs: 10_000,
      callTimeoutMs: opts.callTimeoutMs ?? 10_000,
      maxLineBytes: 1 << 20,
      clientInfo: { name: 'forgejo-mcp-broker', version: 't' },
      protocolVersion: '2025-11-25',
    },
    spawner: supervisor,
    tokens: { accessToken: async (id) => ({ token: `forgejo-${id}`, expiresAt: Date.now() + 3_600_000 }) },
    log: logs.log,
    events: {
      notification: (userId, msg) => gateway?.broadcast(userId, msg),
      orphanRequest: (userId, msg) => gateway?.orphanRequest(userId, msg),
    },
    ...opts.pool,
  });
  // The public URL holds the port, known only once listening: the route delegates to the gateway
  // created just after.
  registerMcpRoutes(app, {
    admit: (req, res, before) => (gateway as Gateway).admit(req, res, before),
    handle: (req, res, body, p) => (gateway as Gateway).handle(req, res, body, p),
  });
  const bound = await listen(app, '127.0.0.1', 0);
  const publicUrl = `http://127.0.0.1:${bound.port}`;
  gateway = new Gateway({
    publicUrl,
    allowedOrigins: [],
    allowedHosts: [],
    verifyBearer: async (h): Promise<BearerResult> => {
      const token = /^Bearer (.+)$/i.exec(h ?? '')?.[1];
      const p = token ? USERS[token] : undefined;
      if (!token) return { ok: false, error: 'invalid_token', description: 'a Bearer token is required' };
      if (!p) return { ok: false, error: 'invalid_token', description: 'the token is unknown or revoked' };
      return { ok: true, principal: { ...p, resource: `${publicUrl}/mcp` } };
    },
    pool,
    log: logs.log,
    sse: { maxQueuedBytes: 1 << 20, keepAliveMs: 15_000 },
    maxSessionsPerUser: opts.maxSessionsPerUser ?? 50,
    sessionIdleMs: 3_600_000,
    parkTtlMs: 60_000,
    tasks: { afterMs: 300, ttlMs: 60_000, maxPerUser: 5, ...opts.tasks },
    ...(opts.events ? { events: opts.events } : {}),
    ...(opts.maxResultChars === undefined ? {} : { maxResultChars: opts.maxResultChars }),
    ...(opts.requestStateKey ? { requestStateKey: opts.requestStateKey } : {}),
  });
  return {
    url: `${publicUrl}/mcp`,
    app,
    gateway,
    pool,
    supervisor,
    logs,
    async close() {
      gateway?.close();
      await pool.stopAll(Date.now() + 1000);
      await app.close();
      await store.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
