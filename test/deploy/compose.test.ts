import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const COMPOSE_DIR = join(ROOT, 'deploy', 'compose');
const COMPOSE = join(COMPOSE_DIR, 'compose.yaml');
const DOCS = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');

type Service = {
  build?: { context: string; dockerfile: string };
  image?: string;
  env_file?: Array<string | { path: string; required?: boolean }>;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  read_only?: boolean;
  stop_grace_period?: string;
  security_opt?: string[];
  cap_drop?: string[];
};
type Compose = { services: Record<string, Service>; volumes: Record<string, unknown> };

const compose = parse(readFileSync(COMPOSE, 'utf8'), { strict: true, uniqueKeys: true }) as Compose;
const broker = compose.services['broker'] as Service;
const caddy = compose.services['caddy'] as Service;

/**
 * A file the compose file names exists, or it is a file the operator makes by copying the shipped
 * `<name>.example`, as docs/deploy.md tells them to.
 */
function assertProvided(path: string): void {
  if (existsSync(path)) return;
  const rel = path.slice(COMPOSE_DIR.length + 1);
  assert.ok(existsSync(`${path}.example`), `${path} nor ${path}.example exists`);
  assert.ok(DOCS.includes(`cp ${rel}.example ${rel}`), `docs/deploy.md says to copy ${rel}.example`);
}

describe('deploy/compose/compose.yaml', () => {
  it('parses as YAML into a broker and a Caddy service', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['broker', 'caddy']);
  });

  it('references only files that exist (or are copied from a shipped example per the docs)', () => {
    const context = resolve(COMPOSE_DIR, broker.build!.context);
    assert.ok(statSync(context).isDirectory());
    assert.ok(existsSync(join(context, broker.build!.dockerfile)), broker.build!.dockerfile);
    assert.equal(context, ROOT);
    for (const s of Object.values(compose.services)) {
      for (const e of s.env_file ?? [])
        assertProvided(resolve(COMPOSE_DIR, typeof e === 'string' ? e : e.path));
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0] as string;
        if (source.startsWith('.') || source.startsWith('/'))
          assert.ok(existsSync(resolve(COMPOSE_DIR, source)), v);
      }
    }
    assert.deepEqual(caddy.volumes?.[0], '../caddy/Caddyfile:/etc/caddy/Caddyfile:ro');
  });

  it('keeps the broker database and Caddy’s certificates on declared named volumes', () => {
    const named = Object.values(compose.services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0] as string)
      .filter((src) => !src.startsWith('.') && !src.startsWith('/'));
    for (const v of named) assert.ok(v in compose.volumes, `volume ${v} declared`);
    assert.ok(broker.volumes?.includes('broker-data:/var/lib/forgejo-mcp-broker'));
    assert.equal(broker.environment?.['BROKER_DB'], '/var/lib/forgejo-mcp-broker/broker.db');
    assert.ok(caddy.volumes?.includes('caddy-data:/data'));
  });

  it('exposes only Caddy; the broker is reached over the compose network', () => {
    assert.equal(broker.ports, undefined);
    assert.ok(caddy.ports?.includes('443:443'));
    assert.equal(caddy.environment?.['BROKER_UPSTREAM'], 'broker:8080');
    assert.equal(broker.environment?.['BROKER_LISTEN'], '0.0.0.0:8080');
    assert.deepEqual(caddy.depends_on, { broker: { condition: 'service_healthy' } });
  });

  it('derives the public URL from the one domain Caddy serves, and the example env sets no public URL', () => {
    assert.match(broker.environment?.['BROKER_PUBLIC_URL'] ?? '', /^https:\/\/\$\{BROKER_DOMAIN:\?[^}]+\}$/);
    assert.match(caddy.environment?.['BROKER_DOMAIN'] ?? '', /^\$\{BROKER_DOMAIN:\?[^}]+\}$/);
    const example = readFileSync(join(COMPOSE_DIR, 'broker.env.example'), 'utf8');
    const keys = example
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => l.slice(0, l.indexOf('=')));
    assert.deepEqual(keys, [
      'FORGEJO_URL',
      'FORGEJO_CLIENT_ID',
      'FORGEJO_CLIENT_SECRET',
      'BROKER_SECRET_KEY',
      'LOG_LEVEL',
    ]);
    assert.ok(DOCS.includes('BROKER_DOMAIN='), 'docs/deploy.md tells how to set BROKER_DOMAIN');
  });

  it('sandboxes every child with bubblewrap, and lets the engine allow exactly what that needs', () => {
    assert.equal(broker.environment?.['BROKER_CHILD_ISOLATION'], 'bwrap');
    assert.deepEqual(broker.security_opt, [
      'no-new-privileges:true',
      'seccomp=unconfined',
      'apparmor=unconfined',
      'systempaths=unconfined',
    ]);
    // Everything else stays tight: no capability, no privileged mode, not root.
    assert.deepEqual(broker.cap_drop, ['ALL']);
    assert.equal((broker as Record<string, unknown>)['privileged'], undefined);
    assert.equal((broker as Record<string, unknown>)['user'], undefined, 'the image’s uid 1000');
    assert.match(DOCS, /seccomp=unconfined/);
  });

  it('runs the broker read-only and gives it longer to stop than its shutdown grace', () => {
    assert.equal(broker.read_only, true);
    assert.equal(broker.stop_grace_period, '30s');
  });
});
