// The broker under test: a Forgejo emulator, the real broker process (src/main/main.ts of the
// checkout under BENCH_BROKER_ROOT) with the stdio server as every user's child, and users signed in
// through the broker's own OAuth flow by a scripted browser.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type EmulatorUser,
  type ForgejoEmulator,
  startForgejoEmulator,
} from '../../emulator/forgejo/emulator.ts';
import { askMemory, type BrokerMemory } from '../../scripts/memory-ask.ts';
import { type PostgresCluster, startPostgres } from '../../test/support/postgres.ts';
import { findForm, UserAgent } from '../../test/support/user-agent.ts';
import type { StdioServer } from '../servers.ts';
import { freePort, type Spawned, spawnGroup, waitForPort } from '../support/processes.ts';
import { type HttpRunning, type Target, TargetUnavailable } from './target.ts';

const FORGEJO_CLIENT_ID = 'forgejo-mcp-broker-bench';
const FORGEJO_CLIENT_SECRET = 'bench-secret-not-for-production';
/** The bench's MCP client never receives the redirect: the browser stops there and reads the code. */
const CLIENT_REDIRECT_URI = 'http://127.0.0.1:9/bench/callback';
const PROBE = join(import.meta.dirname, '..', '..', 'scripts', 'memory-probe.ts');

export const OAUTH_UNAVAILABLE = 'broker OAuth flow not available on this checkout';
export const MCP_UNAVAILABLE = 'broker /mcp endpoint not available on this checkout';

export type UserTokens = { accessToken: string; refreshToken: string };
export type Credentials = { login: string; password: string };

export type Broker = {
  /** root URL, no trailing slash */
  url: string;
  mcpUrl: string;
  tokenUrl: string;
  pid: number;
  forgejo: ForgejoEmulator;
  users: Credentials[];
  /**
   * The bench's MCP client, registered on first use (DCR): its token-endpoint form fields
   * (client_id, redirect_uri, resource). Throws TargetUnavailable without the OAuth endpoints.
   */
  oauthClient(): Promise<Record<string, string>>;
  /** One authorization code for this user through the whole browser flow, not yet exchanged. */
  authorize(user: Credentials): Promise<{ code: string; verifier: string }>;
  /** authorize + token exchange */
  signIn(user: Credentials): Promise<UserTokens>;
  memory(): Promise<BrokerMemory>;
  stderr(): string;
  stop(): Promise<void>;
};

export type BrokerOptions = {
  brokerRoot: string;
  server: StdioServer;
  userCount: number;
  logLevel: string;
  /** extra node flags for the broker process, e.g. --cpu-prof (BENCH_BROKER_NODE_ARGS) */
  nodeArgs: string[];
  /**
   * Start each user's child when they sign in (BROKER_CHILD_PREWARM). Off unless asked: the bench
   * signs everyone in first, and the cold, memory and scale figures mean children started by calls.
   */
  prewarm?: boolean;
  /** BROKER_DB: a postgres:// URL for the PostgreSQL store; a SQLite file in the data folder otherwise */
  database?: string;
};

function benchUsers(count: number): EmulatorUser[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    login: `bench${String(i + 1).padStart(4, '0')}`,
    password: `bench-password-${i + 1}`,
    repos: [{ name: 'repo', issues: [{ title: 'one' }] }],
  }));
}

/**
 * How the broker is told which stdio server to run for each user: BROKER_CHILD_COMMAND is one
 * command line, split on spaces with quotes grouping words (no shell). The broker gives the child
 * FORGEJO_URL and FORGEJO_ACCESS_TOKEN itself, so the server's own env is not passed.
 */
export function childSettings(server: StdioServer): Record<string, string> {
  const word = (w: string) => {
    if (w !== '' && !/[\s"']/.test(w)) return w;
    if (w.includes('"')) throw new Error(`cannot quote ${w} for BROKER_CHILD_COMMAND`);
    return `"${w}"`;
  };
  return { BROKER_CHILD_COMMAND: [server.command, ...server.args].map(word).join(' ') };
}

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const users = benchUsers(opts.userCount);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const forgejo = await startForgejoEmulator({
    users,
    apps: [
      {
        clientId: FORGEJO_CLIENT_ID,
        clientSecret: FORGEJO_CLIENT_SECRET,
        name: 'forgejo-mcp-broker (bench)',
        redirectUris: [`${url}/oauth/callback`],
      },
    ],
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'broker-bench-'));
  let spawned: Spawned | undefined;
  const cleanup = async () => {
    await spawned?.stop();
    await forgejo.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    spawned = spawnGroup(
      process.execPath,
      [...opts.nodeArgs, '--expose-gc', '--import', PROBE, join(opts.brokerRoot, 'src/main/main.ts')],
      {
        cwd: dataDir,
        ipc: true,
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          BROKER_PUBLIC_URL: url,
          BROKER_LISTEN: `127.0.0.1:${port}`,
          FORGEJO_URL: forgejo.url,
          FORGEJO_CLIENT_ID,
          FORGEJO_CLIENT_SECRET,
          BROKER_DB: opts.database ?? join(dataDir, 'broker.db'),
          BROKER_SECRET_KEY: randomBytes(32).toString('base64'),
          LOG_LEVEL: opts.logLevel,
          // The bench is one client from one address: rate limits would measure themselves.
          BROKER_RATE_LIMIT: '100000000',
          // Caps above what the scale and memory parts use: they measure the broker, not its limits.
          BROKER_MAX_CHILDREN: String(Math.max(100, opts.userCount + 50)),
          BROKER_MAX_SESSIONS_PER_USER: '10000',
          BROKER_CHILD_PREWARM: opts.prewarm ? 'on' : 'off',
          ...childSettings(opts.server),
        },
      },
    );
    await waitForPort(port, spawned);
    let registered: Promise<Record<string, string>> | undefined;
    const oauthClient = () => {
      registered ??= registerClient(url);
      return registered;
    };
    const agents = new Map<string, UserAgent>();
    const proc = spawned;
    const broker: Broker = {
      url,
      mcpUrl: `${url}/mcp`,
      tokenUrl: `${url}/oauth/token`,
      pid: proc.pid,
      forgejo,
      users: users.map((u) => ({ login: u.login, password: u.password })),
      oauthClient,
      authorize: async (user) => {
        const clientForm = await oauthClient();
        let ua = agents.get(user.login);
        if (!ua) {
          ua = new UserAgent();
          agents.set(user.login, ua);
        }
        const verifier = randomBytes(32).toString('base64url');
        const authorizeUrl = new URL(`${url}/oauth/authorize`);
        authorizeUrl.search = new URLSearchParams({
          response_type: 'code',
          client_id: clientForm['client_id']!,
          redirect_uri: CLIENT_REDIRECT_URI,
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
          state: randomBytes(12).toString('base64url'),
          resource: `${url}/mcp`,
        }).toString();
        const code = await approveInBrowser(ua, authorizeUrl, user, CLIENT_REDIRECT_URI);
        return { code, verifier };
      },
      signIn: async (user) => {
        const { code, verifier } = await broker.authorize(user);
        return exchangeCode(broker.tokenUrl, await oauthClient(), code, verifier);
      },
      // Live heap: the probe collects fully first.
      memory: () => askMemory(proc.proc, { gc: true }, 10_000),
      stderr: proc.stderr,
      stop: cleanup,
    };
    return broker;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

async function registerClient(url: string): Promise<Record<string, string>> {
  const res = await fetch(`${url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'forgejo-mcp-broker bench',
      redirect_uris: [CLIENT_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  const body = await res.text();
  if (res.status === 404) throw new TargetUnavailable(OAUTH_UNAVAILABLE);
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`client registration: HTTP ${res.status} ${body.slice(0, 300)}`);
  const clientId = (JSON.parse(body) as { client_id?: unknown }).client_id;
  if (typeof clientId !== 'string') throw new Error('client registration answered no client_id');
  return { client_id: clientId, redirect_uri: CLIENT_REDIRECT_URI, resource: `${url}/mcp` };
}

/**
 * The browser's part of the flow: from the broker's authorize URL through the broker's consent page,
 * Forgejo's sign-in and consent, back through the broker's callback, to the redirect to the client.
 * Returns the authorization code the client would receive.
 */
export async function approveInBrowser(
  ua: UserAgent,
  authorizeUrl: URL,
  user: Credentials,
  clientRedirectUri: string,
): Promise<string> {
  const redirect = new URL(clientRedirectUri);
  const stop = (u: URL) => u.origin === redirect.origin && u.pathname === redirect.pathname;
  let page = await ua.get(authorizeUrl, { stop });
  for (let step = 0; step < 8 && page.location === undefined; step++) {
    if (findForm(page.body, 'consent-form')) {
      page = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop });
    } else if (findForm(page.body, 'login-form')) {
      page = await ua.submit(page, 'login-form', {
        fields: { user_name: user.login, password: user.password },
        stop,
      });
    } else if (findForm(page.body, 'grant-form')) {
      page = await ua.submit(page, 'grant-form', { button: 'grant-approve', stop });
    } else {
      throw new Error(
        `OAuth flow stuck at ${new URL(page.url).pathname}: HTTP ${page.status} ${page.body.slice(0, 300)}`,
      );
    }
  }
  if (page.location === undefined) throw new Error('OAuth flow did not come back to the client');
  const back = new URL(page.location);
  const error = back.searchParams.get('error');
  if (error)
    throw new Error(`OAuth flow ended in ${error}: ${back.searchParams.get('error_description') ?? ''}`);
  const code = back.searchParams.get('code');
  if (!code) throw new Error('OAuth flow came back without a code');
  return code;
}

export async function exchangeCode(
  tokenUrl: string,
  clientForm: Record<string, string>,
  code: string,
  verifier: string,
): Promise<UserTokens> {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      ...clientForm,
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
    }),
  });
  const body = (await res.json()) as { access_token?: unknown; refresh_token?: unknown; error?: unknown };
  if (res.status !== 200 || typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string')
    throw new Error(`code exchange: HTTP ${res.status} ${String(body.error ?? '')}`);
  return { accessToken: body.access_token, refreshToken: body.refresh_token };
}

/** Fails with MCP_UNAVAILABLE when the checkout's broker has no /mcp gateway yet. */
export async function checkMcp(broker: Broker, accessToken: string): Promise<void> {
  const res = await fetch(broker.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.body?.cancel();
  if (res.status === 404) throw new TargetUnavailable(MCP_UNAVAILABLE);
}

/** The round-trip target: one signed-in user, bearer on every request. */
export function brokerTarget(opts: Pick<BrokerOptions, 'brokerRoot' | 'logLevel' | 'nodeArgs'>): Target {
  return {
    name: 'broker',
    label: 'forgejo-mcp-broker (bearer)',
    start: (server) => startSignedIn({ ...opts, server, userCount: 1 }),
  };
}

/** Another checkout's broker beside this one, in the same run (BENCH_BASELINE_ROOT): before/after. */
export function brokerBaselineTarget(
  opts: Pick<BrokerOptions, 'brokerRoot' | 'logLevel' | 'nodeArgs'>,
  commit: string,
): Target {
  return {
    name: 'broker-baseline',
    label: `forgejo-mcp-broker at ${commit} (baseline)`,
    start: (server) => startSignedIn({ ...opts, server, userCount: 1 }),
  };
}

/**
 * The same broker on the PostgreSQL store (a throwaway cluster on loopback, as the tests start it):
 * what the per-call cost of one replica is when its store is a database server, not a file.
 */
export function brokerPostgresTarget(
  opts: Pick<BrokerOptions, 'brokerRoot' | 'logLevel' | 'nodeArgs'>,
): Target {
  return {
    name: 'broker-pg',
    label: 'forgejo-mcp-broker on PostgreSQL (bearer)',
    start: async (server) => {
      let cluster: PostgresCluster;
      try {
        cluster = await startPostgres();
      } catch (e) {
        throw new TargetUnavailable(`PostgreSQL: ${(e as Error).message}`);
      }
      try {
        const running = await startSignedIn({
          ...opts,
          server,
          userCount: 1,
          database: await cluster.createDatabase(),
        });
        return {
          ...running,
          stop: async () => {
            await running.stop();
            cluster.stop();
          },
        };
      } catch (e) {
        cluster.stop();
        throw e;
      }
    },
  };
}

async function startSignedIn(opts: BrokerOptions): Promise<HttpRunning> {
  const broker = await startBroker(opts);
  try {
    const tokens = await broker.signIn(broker.users[0]!);
    await checkMcp(broker, tokens.accessToken);
    return {
      kind: 'http',
      url: broker.mcpUrl,
      headers: { authorization: `Bearer ${tokens.accessToken}` },
      pid: broker.pid,
      stop: broker.stop,
    };
  } catch (e) {
    await broker.stop();
    throw e;
  }
}
