// Starts the broker in-process on a real loopback port, with a real SQLite file in a temp folder.
// The broker's public URL must be known before it is built (it is the issuer), so a free port is
// found first and then listened on.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { listen } from '../../src/http/server.ts';
import { type Broker, buildBroker } from '../../src/main/broker.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { captureLogger } from './log-capture.ts';
import { STANDIN_COMMAND } from './standin.ts';

export const FORGEJO_CLIENT_ID = 'broker-app-id';
export const FORGEJO_CLIENT_SECRET = 'gto_broker-app-secret-0123456789';

/**
 * The settings every test broker starts from: its public URL, the emulator and the broker's app in
 * it, a database in `dir` and a fresh key (or the one given, to open the database afterwards).
 */
export function testBrokerEnv(o: {
  publicUrl: string;
  forgejoUrl: string;
  dir: string;
  secretKey?: string;
}): Record<string, string> {
  return {
    BROKER_PUBLIC_URL: o.publicUrl,
    FORGEJO_URL: o.forgejoUrl,
    FORGEJO_CLIENT_ID,
    FORGEJO_CLIENT_SECRET,
    BROKER_DB: join(o.dir, 'broker.db'),
    BROKER_SECRET_KEY: o.secretKey ?? randomBytes(32).toString('base64'),
    // Off unless a test is about it (test/e2e/prewarm.test.ts): a child per sign-in would be load
    // and token refreshes that tests counting them did not ask for.
    BROKER_CHILD_PREWARM: 'off',
  };
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The in-process broker on its SQLite file, which the tests may read directly. */
export type SqliteBroker = Omit<Broker, 'store'> & { store: SqliteStore };

export type BrokerHarness = {
  url: string;
  broker: SqliteBroker;
  dbPath: string;
  logs: ReturnType<typeof captureLogger>;
  close(): Promise<void>;
};

export async function startBrokerInProcess(opts: {
  port?: number;
  forgejoUrl?: string;
  env?: Record<string, string>;
  cimdExtraCa?: string[];
}): Promise<BrokerHarness> {
  const port = opts.port ?? (await freePort());
  const tmp = mkdtempSync(join(tmpdir(), 'broker-oauth-'));
  const url = `http://127.0.0.1:${port}`;
  const loaded = loadConfig(
    {
      ...testBrokerEnv({ publicUrl: url, forgejoUrl: opts.forgejoUrl ?? 'http://127.0.0.1:9', dir: tmp }),
      BROKER_RATE_LIMIT: '1000',
      BROKER_CHILD_COMMAND: STANDIN_COMMAND,
      ...opts.env,
    },
    [],
  );
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const logs = captureLogger('info');
  const built = buildBroker(loaded.config, logs.log, { cimdExtraCa: opts.cimdExtraCa });
  if (!(built.store instanceof SqliteStore)) throw new Error('the in-process harness runs on SQLite');
  const broker = built as SqliteBroker;
  await listen(broker.app, '127.0.0.1', port);
  return {
    url,
    broker,
    dbPath: loaded.config.db,
    logs,
    close: async () => {
      await broker.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

export async function registerClient(
  url: string,
  metadata: Record<string, unknown>,
): Promise<{ client_id: string; client_secret?: string } & Record<string, unknown>> {
  const res = await fetch(`${url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(metadata),
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  return (await res.json()) as { client_id: string; client_secret?: string };
}

/** Every row of every table, for "unchanged" and "no cleartext" checks. */
export function dumpTables(broker: SqliteBroker): Record<string, unknown[]> {
  const tables = broker.store.db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((r) => r['name'] as string);
  return Object.fromEntries(tables.map((t) => [t, broker.store.db.prepare(`SELECT * FROM "${t}"`).all()]));
}
