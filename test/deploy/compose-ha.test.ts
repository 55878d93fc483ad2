// The replicas' deployment (deploy/compose-ha): the compose file parses and wires PostgreSQL, two
// identical brokers and Caddy the way docs/deploy.md says; its Caddyfile adapts into a proxy to
// exactly those two brokers with health checks, Authorization affinity and no replay of a call.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseDuration, settings } from '../../src/config/settings.ts';
import { HA_CADDYFILE } from '../support/caddy.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'deploy', 'compose-ha');
const DOCS = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');

type Service = {
  build?: { context: string; dockerfile: string };
  image?: string;
  env_file?: Array<{ path: string; required?: boolean }>;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  networks?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  security_opt?: string[];
  cap_drop?: string[];
  read_only?: boolean;
};
type Compose = {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  networks: Record<string, { internal?: boolean; ipam?: unknown }>;
};

// Compose resolves `<<` merge keys and aliases; the shipped file uses an alias for the second broker.
const compose = parse(readFileSync(join(DIR, 'compose.yaml'), 'utf8'), {
  strict: true,
  uniqueKeys: true,
  merge: true,
}) as Compose;
const svc = (name: string) => compose.services[name] as Service;

type Proxy = {
  handler: string;
  upstreams: Array<{ dial: string }>;
  flush_interval: number;
  load_balancing: {
    selection_policy: { policy: string; field?: string };
    try_duration?: number;
    retries?: number;
    retry_match?: unknown;
  };
  health_checks: {
    active: { uri: string; expect_status: number; interval: number };
    passive: { fail_duration: number; max_fails: number; unhealthy_status?: unknown };
  };
  transport: { keep_alive: { idle_timeout: number } };
};

function adaptHa(env: Record<string, string>): { text: string; proxy: Proxy } {
  const json = execFileSync('caddy', ['adapt', '--config', HA_CADDYFILE, '--adapter', 'caddyfile'], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const text = JSON.stringify(JSON.parse(json));
  const proxies: Proxy[] = [];
  JSON.parse(json, (_k, v) => {
    if (v && typeof v === 'object' && (v as { handler?: string }).handler === 'reverse_proxy')
      proxies.push(v);
    return v;
  });
  assert.equal(proxies.length, 1, 'one reverse_proxy');
  return { text, proxy: proxies[0] as Proxy };
}

describe('deploy/compose-ha/compose.yaml', () => {
  it('parses into PostgreSQL, two brokers and Caddy', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['broker-1', 'broker-2', 'caddy', 'postgres']);
  });

  it('runs two identical replicas: one image, one settings file, one public URL, one database', () => {
    assert.deepEqual(svc('broker-1'), svc('broker-2'));
    const b = svc('broker-1');
    assert.equal(b.build?.dockerfile, 'Containerfile');
    assert.equal(resolve(DIR, b.build?.context ?? ''), ROOT);
    assert.deepEqual(b.env_file, [{ path: 'broker.env', required: true }]);
    assert.ok(existsSync(join(DIR, 'broker.env.example')));
    assert.ok(DOCS.includes('cp broker.env.example broker.env'));
    const env = b.environment ?? {};
    assert.match(env['BROKER_PUBLIC_URL'] ?? '', /^https:\/\/\$\{BROKER_DOMAIN:\?[^}]+\}$/);
    assert.match(
      env['BROKER_DB'] ?? '',
      /^postgres:\/\/broker:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/broker$/,
    );
    assert.equal(env['BROKER_LISTEN'], '0.0.0.0:8080');
    assert.deepEqual(b.depends_on, { postgres: { condition: 'service_healthy' } });
    // The key is required with PostgreSQL and must be the same on both: it comes from the one file.
    const example = readFileSync(join(DIR, 'broker.env.example'), 'utf8');
    assert.match(example, /^BROKER_SECRET_KEY=$/m);
    assert.doesNotMatch(example, /^BROKER_(DB|PUBLIC_URL)=/m, 'set by compose.yaml, not per replica');
  });

  it('keeps the single-node sandbox and hardening on every replica', () => {
    const b = svc('broker-1');
    assert.equal(b.environment?.['BROKER_CHILD_ISOLATION'], 'bwrap');
    assert.deepEqual(b.cap_drop, ['ALL']);
    assert.equal(b.read_only, true);
    assert.deepEqual(b.security_opt, [
      'no-new-privileges:true',
      'seccomp=unconfined',
      'apparmor=unconfined',
      'systempaths=unconfined',
    ]);
    assert.equal(b.ports, undefined, 'reached through Caddy only');
  });

  it('publishes only Caddy, keeps PostgreSQL on a network Caddy is not on, and declares every volume', () => {
    assert.equal(svc('postgres').ports, undefined);
    assert.deepEqual(svc('postgres').networks, ['db']);
    assert.equal(compose.networks['db']?.internal, true);
    assert.ok(!svc('caddy').networks?.includes('db'));
    assert.ok(svc('caddy').ports?.includes('443:443'));
    assert.match(svc('postgres').healthcheck?.test.join(' ') ?? '', /pg_isready/);
    assert.equal(svc('postgres').environment?.['POSTGRES_USER'], 'broker');
    assert.equal(svc('postgres').environment?.['POSTGRES_DB'], 'broker');
    for (const s of Object.values(compose.services)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] as string;
        if (source.startsWith('.')) assert.ok(existsSync(resolve(DIR, source)), v);
        else assert.ok(source in compose.volumes, `volume ${source} declared`);
      }
    }
    assert.ok(svc('caddy').volumes?.includes('./Caddyfile:/etc/caddy/Caddyfile:ro'));
  });

  it('points Caddy at both replicas by service name and the port they listen on', () => {
    const env = svc('caddy').environment ?? {};
    const { proxy } = adaptHa({
      BROKER_DOMAIN: 'mcp.example.com',
      BROKER_UPSTREAM_1: env['BROKER_UPSTREAM_1'] ?? '',
      BROKER_UPSTREAM_2: env['BROKER_UPSTREAM_2'] ?? '',
    });
    const port = (svc('broker-1').environment?.['BROKER_LISTEN'] ?? '').split(':')[1];
    assert.deepEqual(
      proxy.upstreams.map((u) => u.dial),
      [`broker-1:${port}`, `broker-2:${port}`],
    );
    assert.deepEqual(Object.keys(svc('caddy').depends_on ?? {}).sort(), ['broker-1', 'broker-2']);
  });
});

describe('deploy/compose-ha/Caddyfile', () => {
  const { text, proxy } = adaptHa({ BROKER_DOMAIN: 'mcp.example.com' });

  it('serves the one domain and defaults to the compose service names', () => {
    assert.match(text, /"host":\["mcp\.example\.com"\]/);
    assert.deepEqual(
      proxy.upstreams.map((u) => u.dial),
      ['broker-1:8080', 'broker-2:8080'],
    );
  });

  it('keeps a bearer token on one replica: the selection hashes the Authorization header', () => {
    assert.deepEqual(proxy.load_balancing.selection_policy, { policy: 'header', field: 'Authorization' });
  });

  it('never resends a request, and leaves a failing replica out at its first failure', () => {
    // Resending even a failed dial is off: the Caddy releases tested here close the body on it (see
    // the file's comment and test/deploy/caddy-ha.test.ts).
    assert.equal(proxy.load_balancing.try_duration, undefined);
    assert.equal(proxy.load_balancing.retries, undefined);
    assert.equal(proxy.load_balancing.retry_match, undefined);
    assert.equal(proxy.health_checks.passive.max_fails, 1);
    assert.ok(proxy.health_checks.passive.fail_duration > 0);
    // A broker's 503 (a full pool, a deadline) is an answer, not a dead replica.
    assert.equal(proxy.health_checks.passive.unhealthy_status, undefined);
  });

  it('checks /healthz actively and expects 200, which the broker answers only with its database', () => {
    assert.equal(proxy.health_checks.active.uri, '/healthz');
    assert.equal(proxy.health_checks.active.expect_status, 200);
    assert.ok(proxy.health_checks.active.interval > 0);
    const healthz = readFileSync(join(ROOT, 'src', 'http', 'healthz.ts'), 'utf8');
    assert.match(healthz, /store\.health\(\)/);
    assert.match(healthz, /code\(503\)/);
  });

  it('streams SSE at once, compresses nothing, and lets idle upstream connections go before the broker', () => {
    assert.equal(proxy.flush_interval, -1);
    assert.doesNotMatch(text, /"handler":"encode"/);
    const brokerMs = parseDuration(settings.keepAliveTimeout.default as string);
    assert.ok(proxy.transport.keep_alive.idle_timeout / 1e6 < brokerMs);
    assert.equal((JSON.parse(text) as { apps: Record<string, unknown> }).apps['tls'], undefined, 'ACME');
  });
});
