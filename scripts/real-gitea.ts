// A real Gitea (built by scripts/real-deps.sh; Forgejo cannot be had from the Go module proxy here,
// see emulator/README.md) for the real-server tests and `DEMO_FORGEJO=real make demo`: started on
// a loopback port with a generated app.ini in a temp folder, users made with its own CLI, the
// broker's confidential OAuth2 application created through its API, then the caller's seed.
// `close()` stops its whole process group; a watchdog stops it too if its parent dies first.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const REAL_DEPS = join(import.meta.dirname, 'real-deps.sh');

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
  /** Every user made with the CLI, by login (the admin included). */
  users: Record<string, GiteaUser>;
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

export type GiteaUserSpec = { login: string; password: string; fullName?: string };
export type GiteaApi = (
  method: string,
  path: string,
  o?: { as?: GiteaUser; token?: string; body?: unknown },
) => Promise<ApiResult>;

export type RealGiteaOptions = {
  redirectUris: string[];
  /** Users besides the admin, made with Gitea's CLI. */
  users: GiteaUserSpec[];
  /** Seeds repositories and the rest through the API once the users exist. */
  seed?: (api: GiteaApi, users: Record<string, GiteaUser>) => Promise<void>;
  /** [oauth2] ACCESS_TOKEN_EXPIRATION_TIME in seconds (Gitea's default is 3600). */
  accessTokenTtlSeconds?: number;
  /** Default: a free port. */
  port?: number;
  /** Where its temp folder is made (default the system's): the demo keeps it in its data folder. */
  parentDir?: string;
};

export const ADMIN: GiteaUserSpec = { login: 'gitea-admin', password: 'gitea-admin-Pw-2026!' };

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
  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'real-gitea-'));
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = opts.port ?? (await freePort());
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
    for (const spec of [ADMIN, ...opts.users]) {
      cli([
        'admin',
        'user',
        'create',
        '--username',
        spec.login,
        '--password',
        spec.password,
        '--email',
        `${spec.login}@example.com`,
        '--must-change-password=false',
        ...(spec.fullName ? ['--fullname', spec.fullName] : []),
        ...(spec === ADMIN ? ['--admin'] : []),
      ]);
      users[spec.login] = {
        id: 0,
        login: spec.login,
        password: spec.password,
        email: `${spec.login}@example.com`,
      };
    }
    const api = apiFor(url);
    for (const u of Object.values(users)) {
      const me = await api('GET', '/user', { as: u });
      u.id = (me.body as { id: number }).id;
    }
    const admin = users[ADMIN.login] as GiteaUser;

    const created = await api('POST', '/user/applications/oauth2', {
      as: admin,
      body: { name: 'forgejo-mcp-broker', confidential_client: true, redirect_uris: opts.redirectUris },
    });
    if (created.status !== 201)
      throw new Error(`OAuth2 app: ${created.status} ${JSON.stringify(created.body)}`);
    const a = created.body as { id: number; client_id: string; client_secret: string; name: string };
    await opts.seed?.(api, users);

    return {
      url,
      version: build.version,
      admin,
      users,
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

function apiFor(url: string): GiteaApi {
  return async (method, path, o = {}) => {
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

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(
  cond: () => boolean,
  o: { timeoutMs: number; intervalMs: number },
): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
  return true;
}

/** What to create through the API: repositories with issues, organisations with teams, pull requests. */
export type GiteaWorld = {
  repos: {
    owner: string;
    name: string;
    private?: boolean;
    description?: string;
    issues?: { title: string; body?: string; closed?: boolean }[];
  }[];
  orgs: { name: string; by: string; teams: { name: string; members: string[] }[] }[];
  /** A branch with one new file, and a pull request of it into main. */
  pulls: { owner: string; repo: string; by: string; branch: string; file: string; title: string }[];
};

/** Creates `world` in that order: organisations first (their repositories may belong to them). */
export async function seedWorld(
  api: GiteaApi,
  users: Record<string, GiteaUser>,
  world: GiteaWorld,
): Promise<void> {
  const must = async (what: string, p: Promise<ApiResult>) => {
    const r = await p;
    if (r.status >= 300) throw new Error(`seed ${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Record<string, unknown>;
  };
  const as = (login: string) => {
    const u = users[login];
    if (!u) throw new Error(`seed: no user ${login}`);
    return u;
  };
  const orgOwner = new Map<string, string>();
  for (const org of world.orgs) {
    orgOwner.set(org.name, org.by);
    await must(
      `org ${org.name}`,
      api('POST', '/orgs', { as: as(org.by), body: { username: org.name, visibility: 'public' } }),
    );
    for (const team of org.teams) {
      const t = await must(
        `team ${team.name}`,
        api('POST', `/orgs/${org.name}/teams`, {
          as: as(org.by),
          body: {
            name: team.name,
            permission: 'write',
            includes_all_repositories: true,
            units: ['repo.code', 'repo.issues', 'repo.pulls'],
          },
        }),
      );
      for (const m of team.members)
        await must(`member ${m}`, api('PUT', `/teams/${t['id']}/members/${m}`, { as: as(org.by) }));
    }
  }
  for (const r of world.repos) {
    const byOrg = orgOwner.get(r.owner);
    const by = as(byOrg ?? r.owner);
    await must(
      `repo ${r.owner}/${r.name}`,
      api('POST', byOrg ? `/orgs/${r.owner}/repos` : '/user/repos', {
        as: by,
        body: {
          name: r.name,
          private: r.private ?? false,
          description: r.description ?? '',
          auto_init: true,
          default_branch: 'main',
        },
      }),
    );
    for (const i of r.issues ?? []) {
      const issue = await must(
        `issue ${i.title}`,
        api('POST', `/repos/${r.owner}/${r.name}/issues`, {
          as: by,
          body: { title: i.title, body: i.body ?? '' },
        }),
      );
      if (i.closed)
        await must(
          `close ${i.title}`,
          api('PATCH', `/repos/${r.owner}/${r.name}/issues/${issue['number']}`, {
            as: by,
            body: { state: 'closed' },
          }),
        );
    }
  }
  for (const p of world.pulls) {
    const by = as(p.by);
    await must(
      `branch ${p.branch}`,
      api('POST', `/repos/${p.owner}/${p.repo}/contents/${p.file}`, {
        as: by,
        body: {
          content: Buffer.from(`# ${p.title}\n`).toString('base64'),
          message: p.title,
          new_branch: p.branch,
        },
      }),
    );
    await must(
      `pull ${p.title}`,
      api('POST', `/repos/${p.owner}/${p.repo}/pulls`, {
        as: by,
        body: { head: p.branch, base: 'main', title: p.title, body: '' },
      }),
    );
  }
}
