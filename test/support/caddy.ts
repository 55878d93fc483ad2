// Runs the system's `caddy` with the repository's deploy/caddy/Caddyfile in front of an upstream on
// loopback, so tests exercise the proxy configuration operators deploy, not a look-alike.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

export const REPO_CADDYFILE = join(import.meta.dirname, '..', '..', 'deploy', 'caddy', 'Caddyfile');
/** The replicas' Caddyfile (deploy/compose-ha): two upstreams, health checks, affinity. */
export const HA_CADDYFILE = join(import.meta.dirname, '..', '..', 'deploy', 'compose-ha', 'Caddyfile');

/** The site line of the deployed Caddyfile: its address comes from the environment. */
const SITE_LINE = '{$BROKER_DOMAIN} {';

/**
 * Global options that only isolate a test run: no admin endpoint (parallel runs would share
 * localhost:2019), no attempt to add the local CA to the machine's trust store, no HTTP listener
 * on port 80 for redirects.
 */
const TEST_GLOBAL_OPTIONS = '{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}\n\n';

/**
 * The repository's Caddyfile, adapted only in its address: the site becomes https://127.0.0.1:port
 * bound to loopback with a certificate from Caddy's local CA (`tls internal`) instead of ACME, or
 * plain http://127.0.0.1:port with `http` (for load drivers that speak HTTP only), and
 * test-isolation global options are prepended. The site's directives are left exactly as shipped.
 */
export function adaptCaddyfile(text: string, port: number, opts: { http?: boolean } = {}): string {
  if (/^\{\s*$/m.test(text)) {
    throw new Error('the Caddyfile has a global options block; adaptCaddyfile must merge it first');
  }
  const lines = text.split('\n');
  const site = lines.filter((l) => l.trim() === SITE_LINE);
  if (site.length !== 1) throw new Error(`expected exactly one site line "${SITE_LINE}" in the Caddyfile`);
  const address = opts.http
    ? `http://127.0.0.1:${port} {\n\tbind 127.0.0.1`
    : `https://127.0.0.1:${port} {\n\ttls internal\n\tbind 127.0.0.1`;
  const adapted = lines.map((l) => (l.trim() === SITE_LINE ? address : l));
  return TEST_GLOBAL_OPTIONS + adapted.join('\n');
}

export type CaddyProxy = {
  /** https://127.0.0.1:<port> (http:// with the `http` option), served by Caddy. */
  url: string;
  /** PEM file of Caddy's local root CA: trust it (https `ca` option, NODE_EXTRA_CA_CERTS) to connect. */
  caPath: string;
  pid: number;
  logs: () => string;
  /** SIGTERM, then SIGKILL after a few seconds; removes Caddy's temp folder. Safe to call twice. */
  stop: () => Promise<void>;
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TLS handshake that trusts only Caddy's root CA succeeds: the site cert is issued. */
function tlsReady(port: number, caPath: string): Promise<boolean> {
  if (!existsSync(caPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(caPath) });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('secureConnect', () => {
      s.end();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Resolves once the port accepts a connection (a plain-HTTP site is up). */
function tcpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.end();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startOnce(
  env: Record<string, string>,
  caddyfile: string,
  timeoutMs: number,
  http: boolean,
): Promise<CaddyProxy> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'caddy-'));
  const config = join(dir, 'Caddyfile');
  writeFileSync(config, adaptCaddyfile(readFileSync(caddyfile, 'utf8'), port, { http }));
  const caPath = join(dir, 'data', 'caddy', 'pki', 'authorities', 'local', 'root.crt');
  const proc = spawn('caddy', ['run', '--config', config, '--adapter', 'caddyfile'], {
    cwd: dir,
    // Caddy keeps its CA, certificates and autosaved config under XDG folders: all inside `dir`.
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_DATA_HOME: join(dir, 'data'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (d: Buffer) => {
    if (out.length < 1_000_000) out += d.toString();
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const spawned = new Promise<Error | undefined>((resolve) => {
    proc.once('spawn', () => resolve(undefined));
    proc.once('error', (e) => resolve(e));
  });
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        if (!(await waitExit(proc, 5000))) {
          proc.kill('SIGKILL');
          await waitExit(proc, 5000);
        }
      }
      process.removeListener('exit', killOnExit);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const spawnError = await spawned;
  if (spawnError) {
    await stop();
    throw new Error(`cannot run caddy (install Debian's caddy package): ${spawnError.message}`);
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    if (http ? await tcpReady(port) : await tlsReady(port, caPath)) {
      const url = `${http ? 'http' : 'https'}://127.0.0.1:${port}`;
      return { url, caPath, pid: proc.pid as number, logs: () => out, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`caddy did not serve https://127.0.0.1:${port}:\n${out}`);
}

/**
 * Starts Caddy with the repository's Caddyfile (or `caddyfile`) proxying to `upstream` (host:port),
 * or with the variables in `env` (the replicas' Caddyfile reads BROKER_UPSTREAM_1 and _2).
 * Resolves when the HTTPS site answers TLS with a certificate of Caddy's local CA (with `http`:
 * when the plain-HTTP site accepts connections).
 */
export async function startCaddy(
  opts: { caddyfile?: string; timeoutMs?: number; http?: boolean } & (
    | { upstream: string }
    | { env: Record<string, string> }
  ),
): Promise<CaddyProxy> {
  const caddyfile = opts.caddyfile ?? REPO_CADDYFILE;
  const env = 'env' in opts ? opts.env : { BROKER_UPSTREAM: opts.upstream };
  let last: unknown;
  // The free port is found before Caddy binds it; another process may take it in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(env, caddyfile, opts.timeoutMs ?? 15_000, opts.http ?? false);
    } catch (e) {
      last = e;
      if (!/address already in use/.test((e as Error).message)) throw e;
    }
  }
  throw last;
}
