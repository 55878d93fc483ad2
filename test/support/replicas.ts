// Broker replicas as operators run them (deploy/compose-ha), all on loopback: a throwaway PostgreSQL
// cluster, N broker processes on one database with one key and one public URL, and Debian's Caddy
// running the replicas' Caddyfile (adapted only in its address) in front of them over HTTPS. Each
// replica keeps its port across a kill and a restart, so Caddy sees the same upstream come back.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import type { EmulatorUser, ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type RealGitea, startRealGitea as startGitea } from '../../scripts/real-gitea.ts';
import { type BrokerProcess, startBroker } from './broker-process.ts';
import { type CaddyProxy, HA_CADDYFILE, startCaddy } from './caddy.ts';
import { freePort, testBrokerEnv } from './oauth-harness.ts';
import { startEmulatorFor } from './oauth-stack.ts';
import { type PostgresCluster, startPostgres } from './postgres.ts';
import { eventually } from './wait.ts';

export type Replica = {
  port: number;
  /** The running process, or undefined between a kill and a restart. */
  broker: BrokerProcess | undefined;
  /** http://127.0.0.1:<port>, the replica itself (Caddy's upstream). */
  url: string;
};

export type ReplicaStack = {
  /** Caddy's https URL: the public URL every replica is the issuer of. */
  url: string;
  caddy: CaddyProxy;
  /** The Forgejo emulator, or undefined when the replicas sign in with the real Gitea. */
  emulator: ForgejoEmulator | undefined;
  replicas: Replica[];
  /** postgres:// URL of the shared database. */
  db: string;
  /** SIGKILL, as a crash or an OOM kill: no shutdown, no cleanup. Resolves once it is gone. */
  kill(i: number): Promise<void>;
  /** Starts the replica again on its port with the same settings; resolves once Caddy sends it requests. */
  restart(i: number): Promise<void>;
  /** Every replica's log so far, concatenated (the killed runs' too). */
  logs(): string;
  close(): Promise<void>;
};

/** Pids of the processes `pid` started (a broker's MCP server children), or [] once it is gone. */
export function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // The process is gone.
  }
  return pids;
}

export async function startReplicas(opts: {
  users: EmulatorUser[];
  replicas?: number;
  /** Forgejo access token life in the emulator (default: an hour). */
  accessTokenTtlSeconds?: number;
  env?: Record<string, string>;
  /** How many replicas run at first (default all); `restart(i)` starts the others. */
  running?: number;
  /** Caddy serves plain HTTP (for load drivers that speak HTTP only) instead of HTTPS. */
  http?: boolean;
  /** The Forgejo side: the emulator (default) or the real Gitea of test/real (scripts/real-gitea.ts). */
  forge?: 'emulator' | 'gitea';
}): Promise<ReplicaStack> {
  const n = opts.replicas ?? 2;
  const tmp = mkdtempSync(join(tmpdir(), 'broker-replicas-'));
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const upstreams = Object.fromEntries(ports.map((p, i) => [`BROKER_UPSTREAM_${i + 1}`, `127.0.0.1:${p}`]));
  let cluster: PostgresCluster | undefined;
  let emulator: ForgejoEmulator | undefined;
  let gitea: RealGitea | undefined;
  let caddy: CaddyProxy | undefined;
  const replicas: Replica[] = ports.map((port) => ({
    port,
    broker: undefined,
    url: `http://127.0.0.1:${port}`,
  }));
  const logs: string[] = [];
  const stopBroker = async (r: Replica, signal: NodeJS.Signals) => {
    const b = r.broker;
    if (!b) return;
    r.broker = undefined;
    if (b.proc.exitCode === null && b.proc.signalCode === null) {
      b.proc.kill(signal);
      await b.exited;
    }
    logs.push(b.stderr());
  };
  const close = async () => {
    for (const r of replicas) await stopBroker(r, 'SIGTERM');
    await caddy?.stop();
    await emulator?.close();
    await gitea?.close();
    cluster?.stop();
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    caddy = await startCaddy({ caddyfile: HA_CADDYFILE, env: upstreams, http: opts.http ?? false });
    // What NODE_EXTRA_CA_CERTS does at startup: this process's fetch (and so the SDKs) trusts Caddy.
    if (!opts.http)
      setDefaultCACertificates([...getCACertificates('default'), readFileSync(caddy.caPath, 'utf8')]);
    const ttl = opts.accessTokenTtlSeconds ? { accessTokenTtlSeconds: opts.accessTokenTtlSeconds } : {};
    let forge: Record<string, string>;
    if (opts.forge === 'gitea') {
      gitea = await startGitea({
        redirectUris: [`${caddy.url}/oauth/callback`],
        users: opts.users.map((u) => ({ login: u.login, password: u.password })),
        ...ttl,
      });
      forge = {
        FORGEJO_URL: gitea.url,
        FORGEJO_CLIENT_ID: gitea.app.clientId,
        FORGEJO_CLIENT_SECRET: gitea.app.clientSecret,
      };
    } else {
      emulator = await startEmulatorFor(caddy.url, { users: opts.users, ...ttl });
      forge = { FORGEJO_URL: emulator.url };
    }
    cluster = await startPostgres();
    const db = await cluster.createDatabase();
    const env = {
      ...testBrokerEnv({
        publicUrl: caddy.url,
        forgejoUrl: forge['FORGEJO_URL'] as string,
        dir: tmp,
        secretKey: randomBytes(32).toString('base64'),
      }),
      ...forge,
      BROKER_DB: db,
      BROKER_TRUSTED_PROXIES: '127.0.0.1',
      BROKER_RATE_LIMIT: '100000',
      ...opts.env,
    };
    const start = async (i: number) => {
      const r = replicas[i] as Replica;
      const b = await startBroker({ ...env, BROKER_LISTEN: `127.0.0.1:${r.port}` });
      r.broker = b;
      // Caddy sends a replica nothing until its active check has seen /healthz answer 200: the
      // broker logs that request once it has answered it.
      const checked = await eventually(() => b.stderr().includes('"route":"/healthz","status":200'), {
        timeoutMs: 15_000,
        intervalMs: 50,
      });
      if (!checked) throw new Error(`Caddy never checked replica ${i} (${r.url}):\n${caddy?.logs()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    };
    // One at a time: each migrates the database at startup (the second waits for the first anyway).
    for (let i = 0; i < (opts.running ?? n); i++) await start(i);
    const url = caddy.url;
    const c = caddy;
    return {
      url,
      caddy: c,
      emulator,
      replicas,
      db,
      kill: (i) => stopBroker(replicas[i] as Replica, 'SIGKILL'),
      restart: start,
      logs: () => [...logs, ...replicas.map((r) => r.broker?.stderr() ?? '')].join(''),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
