// A real Gitea (built by scripts/real-deps.sh; Forgejo cannot be had from the Go module proxy here,
// see emulator/README.md) started for a test file on a free loopback port, with a generated app.ini
// in a temp folder, users made with its own CLI, and the broker's OAuth2 application, repositories,
// an organisation with a team, issues and a pull request seeded through its API. `close()` stops its
// whole process group; a watchdog stops it too if the test process dies without closing it.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './oauth-harness.ts';
import { eventually, groupAlive } from './wait.ts';

const REAL_DEPS = join(import.meta.dirname, '..', '..', 'scripts', 'real-deps.sh');

export type GiteaBuild =
  | { ready: true; bin: string; root: string; version: string }
  | { ready: false; reason: string };

/** Where scripts/real-deps.sh put (or would put) Gitea; nothing is built here. */
export function giteaBuild(): GiteaBuild {
  const out = execFileSync('bash', [REAL_DEPS, '--env'], { encoding: 'utf8' });
  const env = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  if (env['GITEA_READY'] !== '1')
    return { ready: false, reason: `Gitea ${env['GITEA_VERSION']} is not built (run scripts/real-deps.sh)` };
  return {
    ready: true,
    bin: env['GITEA_BIN'] as string,
    root: env['GITEA_ROOT'] as string,
    version: (env['GITEA_VERSION'] as string).replace(/^v/, ''),
  };
}

export type GiteaUser = { id: number; login: string; password: string; email: string };

export type RealGitea = {
  url: string;
  version: string;
  admin: GiteaUser;
  alice: GiteaUser;
  bob: GiteaUser;
  /** The broker's confidential OAuth2 application, owned by the admin. */
  app: { id: number; clientId: string; clientSecret: string; name: string };
  /** An API call as a user (Basic with their password) or with a token. */
  api(
    method: string,
    path: string,
    o?: { as?: GiteaUser; token?: string; body?: unknown },
  ): Promise<ApiResult>;
  setRedirectUris(uris: string[]): Promise<void>;
  /** Gitea's own log lines so far. */
  log(): string;
  pgid: number;
  close(): Promise<void>;
};

export type ApiResult = { status: number; body: unknown; headers: Headers };

export type RealGiteaOptions = {
  redirectUris: string[];
  /** [oauth2] ACCESS_TOKEN_EXPIRATION_TIME in seconds (Gitea's default is 3600). */
  accessTokenTtlSeconds?: number;
};

const PASSWORD = (login: string) => `${login}-Pw-2026!`;

function appIni(o: { dir: string; root: string; port: number; accessTtl: number }): string {
  const secret = () => randomBytes(32).toString('base64url');
  const asRoot = process.getuid?.() === 0;
  return `APP_NAME = Gitea (forgejo-mcp-broker tests)
RUN_MODE = prod
RUN_USER = ${userInfo().username}
WORK_PATH = ${o.dir}
${asRoot ? 'I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n' : ''}
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = ${o.port}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:${o.port}/
STATIC_ROOT_PATH = ${o.root}
APP_DATA_PATH = ${o.dir}/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
LFS_JWT_SECRET = ${secret()}

[database]
DB_TYPE = sqlite3
PATH = ${o.dir}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[security]
INSTALL_LOCK = true
SECRET_KEY = ${secret()}
INTERNAL_TOKEN = ${secret()}
PASSWORD_HASH_ALGO = pbkdf2_v2

[oauth2]
ENABLED = true
JWT_SIGNING_ALGORITHM = RS256
JWT_SECRET = ${secret()}
ACCESS_TOKEN_EXPIRATION_TIME = ${o.accessTtl}
; Forgejo's default; Gitea's is false (emulator/README.md)
INVALIDATE_REFRESH_TOKENS = true
DEFAULT_APPLICATIONS =

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
ENABLE_NOTIFY_MAIL = false
DEFAULT_KEEP_EMAIL_PRIVATE = false

[mailer]
ENABLED = false

[repository]
ROOT = ${o.dir}/repos
DEFAULT_BRANCH = main

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[packages]
ENABLED = false

[log]
MODE = console
LEVEL = warn
ROOT_PATH = ${o.dir}/log
`;
}

/** Starts Gitea, creates admin, alice and bob with its CLI and seeds everything through its API. */
export async function startRealGitea(opts: RealGiteaOptions): Promise<RealGitea> {
  const build = giteaBuild();
  if (!build.ready) throw new Error(build.reason);
  const dir = mkdtempSync(join(tmpdir(), 'real-gitea-'));
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const conf = join(dir, 'app.ini');
  writeFileSync(
    conf,
    appIni({ dir, root: build.root, port, accessTtl: opts.accessTokenTtlSeconds ?? 3600 }),
    {
      mode: 0o600,
    },
  );
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: dir,
    GITEA_WORK_DIR: dir,
    USER: userInfo().username,
  };
  const cli = (args: string[]) =>
    execFileSync(build.bin, [...args, '--config', conf, '--work-path', dir], {
      env,
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  cli(['migrate']);

  // A watchdog shell owns the group: when the test process goes away its stdin closes and it
  // stops Gitea, so even a killed test run leaves no Gitea behind.
  const proc = spawn(
    'sh',
    [
      '-c',
      '"$0" web --config "$1" --work-path "$2" </dev/null & g=$!; cat >/dev/null; kill -TERM $g 2>/dev/null; wait $g',
      build.bin,
      conf,
      dir,
    ],
    { env, cwd: dir, detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString('utf8')).slice(-200_000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const pgid = proc.pid as number;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));

  const close = async () => {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGTERM');
    const gone = await eventually(() => !groupAlive(pgid), { timeoutMs: 10_000, intervalMs: 50 });
    if (!gone) process.kill(-pgid, 'SIGKILL');
    await exited;
    await eventually(() => !groupAlive(pgid), { timeoutMs: 5000, intervalMs: 50 });
    proc.stdin.destroy();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const up = await waitHttp(`${url}/api/v1/version`, 60_000);
    if (!up) throw new Error(`Gitea did not answer on ${url}:\n${log.slice(-3000)}`);

    const users: Record<string, GiteaUser> = {};
    for (const [login, admin] of [
      ['gitea-admin', true],
      ['alice', false],
      ['bob', false],
    ] as const) {
      cli([
        'admin',
        'user',
        'create',
        '--username',
        login,
        '--password',
        PASSWORD(login),
        '--email',
        `${login}@example.com`,
        '--must-change-password=false',
        ...(admin ? ['--admin'] : []),
      ]);
      users[login] = { id: 0, login, password: PASSWORD(login), email: `${login}@example.com` };
    }
    const api = apiFor(url);
    for (const u of Object.values(users)) {
      const me = await api('GET', '/user', { as: u });
      u.id = (me.body as { id: number }).id;
    }
    const admin = users['gitea-admin'] as GiteaUser;
    const alice = users['alice'] as GiteaUser;
    const bob = users['bob'] as GiteaUser;

    const created = await api('POST', '/user/applications/oauth2', {
      as: admin,
      body: { name: 'forgejo-mcp-broker', confidential_client: true, redirect_uris: opts.redirectUris },
    });
    if (created.status !== 201)
      throw new Error(`OAuth2 app: ${created.status} ${JSON.stringify(created.body)}`);
    const a = created.body as { id: number; client_id: string; client_secret: string; name: string };
    await seed(api, alice, bob);

    return {
      url,
      version: build.version,
      admin,
      alice,
      bob,
      app: { id: a.id, clientId: a.client_id, clientSecret: a.client_secret, name: a.name },
      api,
      setRedirectUris: async (uris) => {
        const r = await api('PATCH', `/user/applications/oauth2/${a.id}`, {
          as: admin,
          body: { name: a.name, confidential_client: true, redirect_uris: uris },
        });
        if (r.status !== 200) throw new Error(`redirect URIs: ${r.status} ${JSON.stringify(r.body)}`);
      },
      log: () => log,
      pgid,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function waitHttp(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.status === 200) return true;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function apiFor(url: string) {
  return async (
    method: string,
    path: string,
    o: { as?: GiteaUser; token?: string; body?: unknown } = {},
  ): Promise<ApiResult> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.as)
      headers['authorization'] = `Basic ${Buffer.from(`${o.as.login}:${o.as.password}`).toString('base64')}`;
    if (o.token) headers['authorization'] = `token ${o.token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body, headers: res.headers };
  };
}

/** What the seed creates, for tests to compare against. */
export const SEED = {
  aliceRepos: ['alice/alice-notes', 'alice/alice-site', 'wonderland/tea-recipes'],
  bobRepos: ['bob/bob-secrets', 'bob/bob-tools'],
  bobPrivate: 'bob/bob-secrets',
  org: 'wonderland',
  team: 'tea-party',
} as const;

async function seed(api: ReturnType<typeof apiFor>, alice: GiteaUser, bob: GiteaUser): Promise<void> {
  const must = async (what: string, p: Promise<ApiResult>, ok = [200, 201, 204]) => {
    const r = await p;
    if (!ok.includes(r.status)) throw new Error(`seed ${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Record<string, unknown>;
  };
  const repo = (as: GiteaUser, name: string, priv: boolean, path = '/user/repos') =>
    must(
      `repo ${name}`,
      api('POST', path, { as, body: { name, private: priv, auto_init: true, default_branch: 'main' } }),
    );
  await repo(alice, 'alice-notes', false);
  await repo(alice, 'alice-site', true);
  await repo(bob, 'bob-tools', false);
  await repo(bob, 'bob-secrets', true);
  await must('org', api('POST', '/orgs', { as: alice, body: { username: SEED.org, visibility: 'public' } }));
  await repo(alice, 'tea-recipes', false, `/orgs/${SEED.org}/repos`);
  const team = await must(
    'team',
    api('POST', `/orgs/${SEED.org}/teams`, {
      as: alice,
      body: {
        name: SEED.team,
        permission: 'write',
        includes_all_repositories: true,
        units: ['repo.code', 'repo.issues', 'repo.pulls'],
      },
    }),
  );
  await must('team member', api('PUT', `/teams/${team['id']}/members/${alice.login}`, { as: alice }));
  for (const [as, r, title] of [
    [alice, 'alice/alice-notes', 'First note'],
    [alice, 'alice/alice-notes', 'Second note'],
    [bob, 'bob/bob-secrets', 'Only bob sees this'],
  ] as const) {
    await must(
      `issue ${title}`,
      api('POST', `/repos/${r}/issues`, { as, body: { title, body: `${title}.` } }),
    );
  }
  await must(
    'branch file',
    api('POST', '/repos/alice/alice-notes/contents/notes/idea.md', {
      as: alice,
      body: {
        content: Buffer.from('# An idea\n').toString('base64'),
        message: 'An idea',
        new_branch: 'idea',
      },
    }),
  );
  await must(
    'pull request',
    api('POST', '/repos/alice/alice-notes/pulls', {
      as: alice,
      body: { head: 'idea', base: 'main', title: 'Add an idea', body: 'Please merge.' },
    }),
  );
}
