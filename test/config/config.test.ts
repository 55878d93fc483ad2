import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { settings } from '../../src/config/settings.ts';

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
    BROKER_CHILD_COMMAND: `"${process.execPath}" child.js`,
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
    // No PATH in this environment, so forgejo-mcp is not found either: one line among the rest.
    assert.deepEqual(vars.sort(), [
      'BROKER_CHILD_COMMAND',
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

  it('refuses a database path under a regular file, saying so in words', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const errors = errorsOf(validEnv({ BROKER_DB: join(file, 'sub', 'broker.db') }));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.equal(
      errors[0],
      `BROKER_DB (--db): ${file} is a file, not a folder, so nothing can be created under it (got "${join(file, 'sub', 'broker.db')}"); example: BROKER_DB=/var/lib/forgejo-mcp-broker/broker.db`,
    );
  });

  it('refuses a database path that names a folder, suggesting a file in it', () => {
    const errors = errorsOf(validEnv({ BROKER_DB: tmp }));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(
      errors[0] as string,
      new RegExp(
        `^BROKER_DB \\(--db\\): ${tmp} is a folder; name a file in it, e.g. ${tmp}/broker\\.db \\(got`,
      ),
    );
  });

  it('refuses a database under procfs, naming the file system (even as root)', () => {
    // procfs refuses new files and folders for every user, so this holds for root too.
    const inFolder = errorsOf(validEnv({ BROKER_DB: '/proc/self/broker.db' }));
    assert.equal(inFolder.length, 1, inFolder.join('\n'));
    assert.match(
      inFolder[0] as string,
      /^BROKER_DB \(--db\): \/proc\/self is on procfs, a kernel file system where no database can be kept \(got/,
    );
    const deeper = errorsOf(validEnv({ BROKER_DB: '/proc/self/new/broker.db' }));
    assert.match(deeper[0] as string, /^BROKER_DB \(--db\): \/proc\/self\/new is on procfs/);
  });

  it('refuses a database path that is a device', () => {
    const errors = errorsOf(validEnv({ BROKER_DB: '/dev/null' }));
    assert.match(errors[0] as string, /^BROKER_DB \(--db\): \/dev\/null is not a regular file/);
  });
});

describe('config: durations', () => {
  it('refuses a zero access-token lifetime and call timeout, giving the range', () => {
    const errors = errorsOf(validEnv({ BROKER_ACCESS_TOKEN_TTL: '0', BROKER_CALL_TIMEOUT: '0s' }));
    assert.deepEqual(errors, [
      'BROKER_ACCESS_TOKEN_TTL (--access-token-ttl): must be between 1m and 30d (0 is too short) (got "0"); example: BROKER_ACCESS_TOKEN_TTL=1h',
      'BROKER_CALL_TIMEOUT (--call-timeout): must be between 1s and 1h (0 is too short) (got "0s"); example: BROKER_CALL_TIMEOUT=5m',
    ]);
  });

  it('refuses a duration above its maximum', () => {
    const errors = errorsOf(validEnv({ BROKER_SESSION_IDLE: '31d' }));
    assert.match(
      errors[0] as string,
      /^BROKER_SESSION_IDLE .*must be between 1m and 30d \(31d is too long\)/,
    );
  });

  it('reads a bare number as seconds', () => {
    const r = loadConfig(validEnv({ BROKER_CALL_TIMEOUT: '90', BROKER_ACCESS_TOKEN_TTL: '3600' }), []);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    assert.equal(r.config.callTimeout, 90_000);
    assert.equal(r.config.accessTokenTtl, 3_600_000);
  });

  it('every duration setting has a range, and its default lies inside it', () => {
    const durations = Object.values(settings).filter((s) => /\bFrom \S+ to \S+\.$/.test(s.help));
    assert.equal(durations.length, 15);
    for (const s of durations) assert.doesNotThrow(() => s.parse(s.default as string), s.env);
  });
});

describe('config: the child command', () => {
  it('a missing forgejo-mcp is one line among the other problems, reported once', () => {
    const errors = errorsOf(
      validEnv({ BROKER_CHILD_COMMAND: undefined, PATH: tmp, LOG_LEVEL: 'loud', FORGEJO_URL: undefined }),
    );
    assert.deepEqual(errors.map((e) => e.split(' ')[0]).sort(), [
      'BROKER_CHILD_COMMAND',
      'FORGEJO_URL',
      'LOG_LEVEL',
    ]);
    assert.ok(
      errors.includes(
        'BROKER_CHILD_COMMAND (--child-command): forgejo-mcp was not found on PATH; install forgejo-mcp or give its full path (got "forgejo-mcp --transport stdio"); example: BROKER_CHILD_COMMAND=/usr/local/bin/forgejo-mcp --transport stdio',
      ),
      errors.join('\n'),
    );
  });

  it('resolves the program to a full path for the pool', () => {
    const r = loadConfig(
      validEnv({ BROKER_CHILD_COMMAND: 'node --version', PATH: dirname(process.execPath) }),
      [],
    );
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    assert.equal(r.config.childCommandPath, join(dirname(process.execPath), 'node'));
  });

  it('a full path that is not executable says so', () => {
    const errors = errorsOf(validEnv({ BROKER_CHILD_COMMAND: join(tmp, 'nothing-here') }));
    assert.match(errors[0] as string, /nothing-here does not exist or is not executable/);
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
