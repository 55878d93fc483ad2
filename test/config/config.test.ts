import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const KEY = Buffer.alloc(32, 7).toString('base64');

function validEnv(over: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    BROKER_PUBLIC_URL: 'https://mcp.example.com',
    FORGEJO_URL: 'https://forgejo.example.com',
    FORGEJO_CLIENT_ID: 'client-id',
    FORGEJO_CLIENT_SECRET: 'client-secret-value',
    BROKER_DB: join(tmp, 'ok', 'broker.db'),
    BROKER_SECRET_KEY: KEY,
    ...over,
  };
}

function errorsOf(env: NodeJS.ProcessEnv, argv: string[] = []): string[] {
  const r = loadConfig(env, argv);
  assert.equal(r.ok, false, 'expected the configuration to be refused');
  return r.ok ? [] : r.errors;
}

describe('config: valid settings', () => {
  it('parses a full environment with defaults filled in', () => {
    const r = loadConfig(validEnv(), []);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    const c = r.config;
    assert.equal(c.publicUrl, 'https://mcp.example.com');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
    assert.equal(c.logLevel, 'info');
    assert.equal(c.secretKey.length, 32);
    assert.equal(c.secretKeySource, 'env');
    assert.equal(c.shutdownGrace, 1500);
  });

  it('strips trailing slashes from the public URL and keeps a path', () => {
    const r = loadConfig(validEnv({ BROKER_PUBLIC_URL: 'https://example.com/broker//' }), []);
    assert.ok(r.ok);
    assert.equal(r.config.publicUrl, 'https://example.com/broker');
  });

  for (const url of [
    'http://localhost:8080',
    'http://127.0.0.1:9',
    'http://[::1]:8080',
    'http://app.localhost',
  ]) {
    it(`accepts plain http on loopback: ${url}`, () => {
      const r = loadConfig(validEnv({ BROKER_PUBLIC_URL: url }), []);
      assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    });
  }

  it('lets flags override the environment', () => {
    const r = loadConfig(validEnv({ BROKER_LISTEN: '127.0.0.1:1' }), [
      '--listen',
      '[::1]:9000',
      '--log-level=debug',
      '--public-url',
      'https://flag.example.com/',
    ]);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    assert.deepEqual(r.config.listen, { host: '::1', port: 9000 });
    assert.equal(r.config.logLevel, 'debug');
    assert.equal(r.config.publicUrl, 'https://flag.example.com');
  });

  it('generates a 0600 key file beside the database once, then reuses it', () => {
    const dir = join(tmp, 'keyfile');
    const env = validEnv({ BROKER_SECRET_KEY: undefined, BROKER_DB: join(dir, 'broker.db') });
    const first = loadConfig(env, []);
    assert.ok(first.ok);
    assert.equal(first.config.secretKeySource, 'generated');
    const file = join(dir, 'secret.key');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64').length, 32);
    const second = loadConfig(env, []);
    assert.ok(second.ok);
    assert.equal(second.config.secretKeySource, 'file');
    assert.deepEqual(second.config.secretKey, first.config.secretKey);
  });
});

describe('config: every rule reports its variable, the problem and an example', () => {
  const cases: {
    name: string;
    env: Record<string, string | undefined>;
    variable: string;
    problem: RegExp;
  }[] = [
    {
      name: 'missing public URL',
      env: { BROKER_PUBLIC_URL: undefined },
      variable: 'BROKER_PUBLIC_URL',
      problem: /required/,
    },
    {
      name: 'empty public URL',
      env: { BROKER_PUBLIC_URL: ' ' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /required/,
    },
    {
      name: 'malformed public URL',
      env: { BROKER_PUBLIC_URL: 'not a url' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /not a URL/,
    },
    {
      name: 'non-https public URL',
      env: { BROKER_PUBLIC_URL: 'http://mcp.example.com' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /https unless the host is loopback/,
    },
    {
      name: 'ftp public URL',
      env: { BROKER_PUBLIC_URL: 'ftp://mcp.example.com' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /http\(s\) URL/,
    },
    {
      name: 'public URL with a query',
      env: { BROKER_PUBLIC_URL: 'https://mcp.example.com/?x=1' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /query or fragment/,
    },
    {
      name: 'public URL with credentials',
      env: { BROKER_PUBLIC_URL: 'https://u:p@mcp.example.com' },
      variable: 'BROKER_PUBLIC_URL',
      problem: /credentials/,
    },
    {
      name: 'missing Forgejo URL',
      env: { FORGEJO_URL: undefined },
      variable: 'FORGEJO_URL',
      problem: /required/,
    },
    {
      name: 'malformed Forgejo URL',
      env: { FORGEJO_URL: '://x' },
      variable: 'FORGEJO_URL',
      problem: /not a URL/,
    },
    {
      name: 'missing client id',
      env: { FORGEJO_CLIENT_ID: undefined },
      variable: 'FORGEJO_CLIENT_ID',
      problem: /required/,
    },
    {
      name: 'missing client secret',
      env: { FORGEJO_CLIENT_SECRET: undefined },
      variable: 'FORGEJO_CLIENT_SECRET',
      problem: /required/,
    },
    {
      name: 'listen without port',
      env: { BROKER_LISTEN: '127.0.0.1' },
      variable: 'BROKER_LISTEN',
      problem: /host:port/,
    },
    {
      name: 'listen port too big',
      env: { BROKER_LISTEN: '127.0.0.1:70000' },
      variable: 'BROKER_LISTEN',
      problem: /0 to 65535/,
    },
    { name: 'bad log level', env: { LOG_LEVEL: 'loud' }, variable: 'LOG_LEVEL', problem: /one of fatal/ },
    {
      name: 'key not base64',
      env: { BROKER_SECRET_KEY: 'not base64!!' },
      variable: 'BROKER_SECRET_KEY',
      problem: /not base64/,
    },
    {
      name: 'key of the wrong length',
      env: { BROKER_SECRET_KEY: Buffer.alloc(16).toString('base64') },
      variable: 'BROKER_SECRET_KEY',
      problem: /32 bytes \(got 16\)/,
    },
    {
      name: 'bad grace',
      env: { BROKER_SHUTDOWN_GRACE: 'soon' },
      variable: 'BROKER_SHUTDOWN_GRACE',
      problem: /duration/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const errors = errorsOf(validEnv(c.env));
      assert.equal(errors.length, 1, errors.join('\n'));
      const line = errors[0] as string;
      assert.ok(line.startsWith(`${c.variable} (--`), line);
      assert.match(line, c.problem);
      assert.match(line, new RegExp(`example: ${c.variable}=\\S`));
    });
  }

  it('reports every problem at once, one line each', () => {
    const errors = errorsOf({
      BROKER_PUBLIC_URL: 'http://example.com',
      LOG_LEVEL: 'x',
      BROKER_DB: join(tmp, 'all', 'b.db'),
    });
    const vars = errors.map((e) => e.split(' ')[0]);
    assert.deepEqual(vars.sort(), [
      'BROKER_PUBLIC_URL',
      'FORGEJO_CLIENT_ID',
      'FORGEJO_CLIENT_SECRET',
      'FORGEJO_URL',
      'LOG_LEVEL',
    ]);
    for (const e of errors) assert.ok(!e.includes('\n'));
  });

  it('never echoes a secret value back', () => {
    const errors = errorsOf(validEnv({ BROKER_SECRET_KEY: 'c2VjcmV0LXZhbHVlLXRvby1zaG9ydA==' }));
    assert.equal(errors.length, 1);
    assert.ok(!(errors[0] as string).includes('c2VjcmV0LXZhbHVlLXRvby1zaG9ydA'));
  });

  it('refuses an unknown flag and a flag without a value', () => {
    assert.match(errorsOf(validEnv(), ['--no-such-flag', 'x']).join('\n'), /command line: .*no-such-flag/);
    assert.match(errorsOf(validEnv(), ['--listen']).join('\n'), /command line: .*listen/);
  });

  it('refuses a database folder that cannot be created', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const errors = errorsOf(validEnv({ BROKER_DB: join(file, 'sub', 'broker.db') }));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0] as string, /^BROKER_DB .*cannot create the database folder .*ENOTDIR/);
  });

  it('refuses a database folder that exists but cannot be written (even as root)', () => {
    // procfs refuses new files for every user, so this holds for root too.
    const errors = errorsOf(validEnv({ BROKER_DB: '/proc/self/broker.db' }));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0] as string, /^BROKER_DB .*is not writable/);
  });
});

describe('config: a PostgreSQL database', () => {
  const url = 'postgres://broker:s3cret-pw@db.internal:5432/broker?sslmode=require';

  it('keeps a postgres:// URL as given and names the backend', () => {
    const r = loadConfig(validEnv({ BROKER_DB: url }), []);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    assert.equal(r.config.db, url);
    assert.equal(r.config.dbKind, 'postgres');
    const sqlite = loadConfig(validEnv(), []);
    assert.ok(sqlite.ok && sqlite.config.dbKind === 'sqlite');
  });

  it('requires BROKER_SECRET_KEY (replicas share it; no key file is made) and never echoes the URL', () => {
    const errors = errorsOf(validEnv({ BROKER_DB: url, BROKER_SECRET_KEY: undefined }));
    assert.ok(
      errors.some((e) => /BROKER_SECRET_KEY.*required with a PostgreSQL BROKER_DB/.test(e)),
      errors.join('\n'),
    );
    const bad = errorsOf(validEnv({ BROKER_DB: 'postgres://broker:s3cret-pw@[bad' }));
    assert.ok(
      bad.some((e) => /BROKER_DB.*not a valid postgres:\/\/ URL/.test(e)),
      bad.join('\n'),
    );
    assert.ok(![...errors, ...bad].some((e) => e.includes('s3cret-pw')));
  });
});
