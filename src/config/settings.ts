// The one table of every setting: the loader, the --help text and the README table all read it,
// so a setting cannot exist in one place and be missing from another.
import { isLoopbackHost } from './loopback.ts';

export type Parse<T> = (raw: string) => T;

export type Setting<T> = {
  env: string;
  /** Absent means required. A default is written as the raw string a user would set. */
  default?: string;
  example: string;
  help: string;
  /** Throws an Error whose message says what is wrong; the loader adds the name and example. */
  parse: Parse<T>;
  /** Never echoed back in an error message. */
  secret?: boolean;
};

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

export function parseHttpUrl(raw: string, { httpsUnlessLoopback }: { httpsUnlessLoopback: boolean }): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
  if (httpsUnlessLoopback && url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
    throw new Error('must use https unless the host is loopback (127.0.0.1, [::1], localhost)');
  }
  if (url.username || url.password) throw new Error('must not contain credentials');
  if (url.search || url.hash) throw new Error('must not have a query or fragment');
  return url.href.replace(/\/+$/, '');
}

export function parseListen(raw: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  if (!m) throw new Error('must be host:port');
  const port = Number(m[3]);
  if (port > 65535) throw new Error('port must be 0 to 65535');
  return { host: (m[1] ?? m[2]) as string, port };
}

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A number with a unit (ms, s, m, h, d); a bare number means seconds. */
export function parseDuration(raw: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m)
    throw new Error('must be a duration such as 500ms, 30s, 15m, 1h or 7d (a bare number means seconds)');
  return Number(m[1]) * DURATION_UNITS[(m[2] ?? 's') as keyof typeof DURATION_UNITS];
}

/** The shortest spelling of a duration, for messages: 90000 → 90s, 3600000 → 1h. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= DURATION_UNITS[unit] && ms % DURATION_UNITS[unit] === 0)
      return `${ms / DURATION_UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * A duration setting with the range where it can work: a token that lives 0 s, or a call that times
 * out at once, passes a bare format check and then fails every client. The range goes into the help.
 */
function durationSetting(s: Omit<Setting<number>, 'parse'> & { min: string; max: string }): Setting<number> {
  const min = parseDuration(s.min);
  const max = parseDuration(s.max);
  const { min: _min, max: _max, ...rest } = s;
  return {
    ...rest,
    help: `${s.help} From ${s.min} to ${s.max}.`,
    parse: (raw) => {
      const ms = parseDuration(raw);
      if (ms < min || ms > max) {
        throw new Error(
          `must be between ${s.min} and ${s.max} (${formatDuration(ms)} is ${ms < min ? 'too short' : 'too long'})`,
        );
      }
      return ms;
    },
  };
}

export function parsePositiveDuration(raw: string): number {
  const ms = parseDuration(raw);
  if (ms < 1) throw new Error('must be longer than 0');
  return ms;
}

/** A size in bytes: 65536, 512KiB, 8MiB (KB and MB are read as KiB and MiB). */
export function parseSize(raw: string): number {
  const m = /^(\d+)\s*(B|KiB|KB|MiB|MB|GiB|GB)?$/i.exec(raw.trim());
  if (!m) throw new Error('must be a size such as 65536, 512KiB or 8MiB');
  const unit = (m[2] ?? 'b').toLowerCase().replace('ib', 'b');
  const bytes = Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit] as number);
  if (bytes < 1) throw new Error('must be at least 1 byte');
  return bytes;
}

export function parsePositiveInt(raw: string): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) throw new Error('must be a whole number of at least 1');
  return Number(raw);
}

export function parseSecretKey(raw: string): Buffer {
  const trimmed = raw.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) throw new Error('is not base64');
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error(`must decode to 32 bytes (got ${key.length})`);
  return key;
}

/** Comma- or space-separated words; empty means an empty list. */
export function parseList(raw: string): string[] {
  return raw
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter((w) => w !== '');
}

const FORGEJO_SCOPE_WORD =
  /^(read|write):(activitypub|admin|misc|notification|organization|package|issue|repository|user)$/;

const CHILD_ISOLATION = ['auto', 'bwrap', 'none'] as const;
export type ChildIsolation = (typeof CHILD_ISOLATION)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new Error('must not be empty');
  return raw.trim();
}

/** Splits a command line on spaces, honouring "double" and 'single' quotes; no shell is involved. */
export function parseCommand(raw: string): string[] {
  const argv: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of raw.matchAll(re)) argv.push(m[1] ?? m[2] ?? m[3] ?? '');
  if (argv.length === 0) throw new Error('must name a command');
  return argv;
}

export const gatewaySettings = {
  childCommand: setting({
    env: 'BROKER_CHILD_COMMAND',
    default: 'forgejo-mcp --transport stdio',
    example: '/usr/local/bin/forgejo-mcp --transport stdio',
    help: 'The MCP server started for each Forgejo user (no shell; quotes group words). It gets only FORGEJO_URL, FORGEJO_ACCESS_TOKEN, PATH and HOME (and PWD under bubblewrap).',
    parse: parseCommand,
  }),
  childIsolation: setting<ChildIsolation>({
    env: 'BROKER_CHILD_ISOLATION',
    default: 'auto',
    example: 'bwrap',
    help: "How each user's MCP server is walled off from the others and from the broker. bwrap: bubblewrap, its own PID namespace, a read-only host, the database folder hidden (the broker refuses to start without it); auto: bwrap where the host allows it, else none; none: every child can read its siblings' tokens. The startup log says which is in force (docs/deploy.md).",
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (!(CHILD_ISOLATION as readonly string[]).includes(v))
        throw new Error(`must be one of ${CHILD_ISOLATION.join(', ')}`);
      return v as ChildIsolation;
    },
  }),
  childPrewarm: setting<boolean>({
    env: 'BROKER_CHILD_PREWARM',
    default: 'on',
    example: 'off',
    help: "Start a user's MCP server in the background as soon as they finish signing in, so the first tool call does not wait for its start (never evicts another user's server to do so; an unused one is stopped after BROKER_CHILD_IDLE).",
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (v === 'on' || v === 'true' || v === '1') return true;
      if (v === 'off' || v === 'false' || v === '0') return false;
      throw new Error('must be on or off');
    },
  }),
  childIdle: durationSetting({
    env: 'BROKER_CHILD_IDLE',
    default: '10m',
    example: '30m',
    help: "Stop a user's MCP server after this long without a call; the next call starts a new one (about 0.3 s).",
    min: '1s',
    max: '7d',
  }),
  maxChildren: setting({
    env: 'BROKER_MAX_CHILDREN',
    default: '100',
    example: '300',
    help: 'Most MCP server processes at once; at the cap the longest-idle one is stopped, and when all are busy new users get 503.',
    parse: parsePositiveInt,
  }),
  maxSessionsPerUser: setting({
    env: 'BROKER_MAX_SESSIONS_PER_USER',
    default: '100',
    example: '20',
    help: "Most MCP sessions per user; past it the user's least recently used session is closed.",
    parse: parsePositiveInt,
  }),
  sessionIdle: durationSetting({
    env: 'BROKER_SESSION_IDLE',
    default: '24h',
    example: '8h',
    help: 'An MCP session unused this long is forgotten (the client then initializes again).',
    min: '1m',
    max: '30d',
  }),
  callTimeout: durationSetting({
    env: 'BROKER_CALL_TIMEOUT',
    default: '120s',
    example: '5m',
    help: 'Longest wait for one answer from an MCP server; progress notifications restart the clock.',
    min: '1s',
    max: '1h',
  }),
  taskAfter: setting({
    env: 'BROKER_TASK_AFTER',
    default: '20s',
    example: '60s',
    help: 'A 2026-07-28 tool call still running after this long becomes a task (io.modelcontextprotocol/tasks) for clients that negotiate the extension; 0 turns tasks off.',
    parse: parseDuration,
  }),
  taskTtl: setting({
    env: 'BROKER_TASK_TTL',
    default: '1h',
    example: '6h',
    help: 'How long a task is kept from its creation: its call runs at most this long, and its result can be fetched until then.',
    parse: parseDuration,
  }),
  maxTasksPerUser: setting({
    env: 'BROKER_MAX_TASKS_PER_USER',
    default: '20',
    example: '50',
    help: 'Most tasks a user may hold at once; past it a slow call stays an ordinary call.',
    parse: parsePositiveInt,
  }),
  maxResultChars: setting({
    env: 'BROKER_MAX_RESULT_CHARS',
    default: '145000',
    example: '100000',
    help: 'Longest tool result, in characters of text, passed on whole; a longer one is cut to fit with a note saying so and how long it was (Claude.ai cuts results silently at about 150000). 0: no limit.',
    parse: (raw) => {
      if (!/^\d+$/.test(raw.trim())) throw new Error('must be a whole number (0 for no limit)');
      return Number(raw);
    },
  }),
  childStartTimeout: durationSetting({
    env: 'BROKER_CHILD_START_TIMEOUT',
    default: '20s',
    example: '60s',
    help: "Longest wait for a new MCP server's handshake.",
    min: '1s',
    max: '10m',
  }),
  allowedOrigins: setting({
    env: 'BROKER_ALLOWED_ORIGINS',
    default: '',
    example: 'https://inspector.example.com',
    help: 'Extra browser Origins allowed on /mcp, comma-separated (* for any). The public URL and loopback origins always are.',
    parse: parseList,
  }),
  allowedHosts: setting({
    env: 'BROKER_ALLOWED_HOSTS',
    default: '',
    example: 'broker.internal:8080',
    help: 'Extra Host header values accepted on /mcp, comma-separated. The public URL host and loopback hosts always are.',
    parse: parseList,
  }),
};

/** Tool policy words: a class (read, write, destructive), a tool name, a glob, or a resource URI glob. */
export function parsePolicyWords(raw: string): string[] {
  const words = parseList(raw);
  const bad = words.filter((w) => !/^[A-Za-z0-9_.:/{}*?-]+$/.test(w));
  if (bad.length) throw new Error(`has words that are neither a class nor a name or glob: ${bad.join(' ')}`);
  return words;
}

export const policySettings = {
  tools: setting({
    env: 'BROKER_TOOLS',
    default: 'read,write,destructive',
    example: 'read',
    help: 'Tools offered to clients: classes (read, write, destructive; see docs/policy.md) and tool names or globs, comma-separated. read makes a read-only installation. Prompts and resources follow read.',
    parse: parsePolicyWords,
  }),
  toolsDeny: setting({
    env: 'BROKER_TOOLS_DENY',
    default: '',
    example: 'delete_*,merge_pull_request',
    help: 'Classes, tool names or globs taken away from BROKER_TOOLS; a glob with :// matches resource URIs. A hidden tool answers like one that does not exist.',
    parse: parsePolicyWords,
  }),
};

export const settings = {
  publicUrl: setting({
    env: 'BROKER_PUBLIC_URL',
    example: 'https://mcp.example.com',
    help: 'External base URL of the broker: the OAuth issuer; the MCP endpoint is this URL + /mcp. https unless the host is loopback.',
    parse: (raw) => parseHttpUrl(raw, { httpsUnlessLoopback: true }),
  }),
  forgejoUrl: setting({
    env: 'FORGEJO_URL',
    example: 'https://forgejo.example.com',
    help: 'Root URL of the Forgejo instance.',
    parse: (raw) => parseHttpUrl(raw, { httpsUnlessLoopback: false }),
  }),
  forgejoClientId: setting({
    env: 'FORGEJO_CLIENT_ID',
    example: '3f1c0a4e-8b57-4d2a-9c1e-2b7d5e6f8a90',
    help: "Client ID of the broker's confidential OAuth2 application in Forgejo.",
    parse: nonEmpty,
  }),
  forgejoClientSecret: setting({
    env: 'FORGEJO_CLIENT_SECRET',
    example: 'gto_…(the secret Forgejo showed once)',
    help: 'Client secret of that application. Prefer the environment over the flag: argv is visible in ps.',
    parse: nonEmpty,
    secret: true,
  }),
  listen: setting({
    env: 'BROKER_LISTEN',
    default: '127.0.0.1:8080',
    example: '0.0.0.0:8080',
    help: 'Address and port the HTTP server listens on (port 0 picks a free one).',
    parse: parseListen,
  }),
  db: setting({
    env: 'BROKER_DB',
    default: './data/broker.db',
    example: '/var/lib/forgejo-mcp-broker/broker.db',
    help: 'SQLite database file (its folder is created if missing and must be writable), or a postgres:// URL for several replicas sharing one PostgreSQL database (then BROKER_SECRET_KEY is required).',
    parse: nonEmpty,
  }),
  secretKey: setting<Buffer | undefined>({
    env: 'BROKER_SECRET_KEY',
    default: '',
    example: '$(openssl rand -base64 32)',
    help: '32 random bytes, base64, that encrypt Forgejo tokens at rest. Unset: generated once into a 0600 file secret.key beside the database.',
    parse: (raw) => (raw === '' ? undefined : parseSecretKey(raw)),
    secret: true,
  }),
  previousSecretKeys: setting<Buffer[]>({
    env: 'BROKER_PREVIOUS_SECRET_KEYS',
    default: '',
    example: 'old-key-base64',
    help: 'Key rotation: earlier BROKER_SECRET_KEY values (comma-separated, base64) that still open what they sealed. The broker re-seals everything under the current key in the background; `admin keys` says when none is needed any more (docs/operations.md).',
    parse: (raw) => parseList(raw).map(parseSecretKey),
    secret: true,
  }),
  metricsListen: setting<{ host: string; port: number } | undefined>({
    env: 'BROKER_METRICS_LISTEN',
    default: '',
    example: '127.0.0.1:9464',
    help: 'Serve Prometheus metrics at /metrics on this separate address (keep it private). Unset: no metrics listener.',
    parse: (raw) => (raw.trim() === '' ? undefined : parseListen(raw.trim())),
  }),
  metricsToken: setting<string | undefined>({
    env: 'BROKER_METRICS_TOKEN',
    default: '',
    example: '$(openssl rand -hex 32)',
    help: 'Also serve /metrics on the main address, to requests with `Authorization: Bearer <this>` (at least 32 characters). Unset: /metrics is not on the main address.',
    parse: (raw) => {
      if (raw === '') return undefined;
      if (raw.length < 32) throw new Error('must be at least 32 characters');
      return raw;
    },
    secret: true,
  }),
  auditFile: setting<string | undefined>({
    env: 'BROKER_AUDIT_FILE',
    default: '',
    example: '/var/lib/forgejo-mcp-broker/audit.jsonl',
    help: 'Also append every audit event, one JSON line each, to this file (created 0600). Audit events always go to the log with "audit": true.',
    parse: (raw) => (raw.trim() === '' ? undefined : raw.trim()),
  }),
  auditArguments: setting<'off' | 'names' | 'hashes'>({
    env: 'BROKER_AUDIT_ARGUMENTS',
    default: 'off',
    example: 'names',
    help: 'What a tool call’s audit event says of its arguments: off, names (the argument names) or hashes (names with a SHA-256 of each value).',
    parse: (raw) => {
      const v = raw.trim();
      if (v !== 'off' && v !== 'names' && v !== 'hashes') throw new Error('must be off, names or hashes');
      return v;
    },
  }),
  logLevel: setting<LogLevel>({
    env: 'LOG_LEVEL',
    default: 'info',
    example: 'debug',
    help: `Log level: ${LOG_LEVELS.join(', ')}.`,
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (!(LOG_LEVELS as readonly string[]).includes(v))
        throw new Error(`must be one of ${LOG_LEVELS.join(', ')}`);
      return v as LogLevel;
    },
  }),
  forgejoScope: setting({
    env: 'FORGEJO_SCOPE',
    default: 'write:repository write:issue write:notification write:organization write:user read:misc',
    example: 'read:repository read:issue read:notification read:organization read:user read:misc',
    help: 'Forgejo OAuth scopes the broker asks for: what forgejo-mcp may do for a user, enforced by Forgejo. The default is what every tool needs; read: scopes only for a read-only installation. Keep it stable: Forgejo refuses a login whose scope differs from the existing grant’s until the user revokes the app.',
    parse: (raw) => {
      const words = parseList(raw);
      const bad = words.filter((w) => !FORGEJO_SCOPE_WORD.test(w));
      if (words.length === 0 || bad.length)
        throw new Error(`must be read:/write: Forgejo scopes (bad: ${bad.join(' ')})`);
      return words.join(' ');
    },
  }),
  forgejoRefreshMargin: durationSetting({
    env: 'FORGEJO_REFRESH_MARGIN',
    default: '5m',
    example: '10m',
    help: 'Refresh a user’s Forgejo access token when it expires within this time (Forgejo issues 1 h tokens).',
    min: '0s',
    max: '50m',
  }),
  accessTokenTtl: durationSetting({
    env: 'BROKER_ACCESS_TOKEN_TTL',
    default: '8h',
    example: '1h',
    help: 'Lifetime of the access tokens the broker issues to MCP clients. Long by default because some clients (Claude.ai) refresh unreliably; revocation still works at once.',
    min: '1m',
    max: '30d',
  }),
  refreshTokenTtl: durationSetting({
    env: 'BROKER_REFRESH_TOKEN_TTL',
    default: '30d',
    example: '7d',
    help: 'Idle lifetime of a refresh token: each refresh issues a new one valid this long.',
    min: '1h',
    max: '365d',
  }),
  refreshReuseGrace: durationSetting({
    env: 'BROKER_REFRESH_REUSE_GRACE',
    default: '30s',
    example: '10s',
    help: 'A rotated refresh token presented again within this window is answered once more, with the same successor pair (a client retrying after a lost response); later reuse revokes the grant.',
    min: '0s',
    max: '10m',
  }),
  unusedClientTtl: durationSetting({
    env: 'BROKER_UNUSED_CLIENT_TTL',
    default: '1h',
    example: '24h',
    help: 'Dynamically registered clients that never completed a login are deleted after this age (clients such as Claude.ai register anew for every connection).',
    min: '1m',
    max: '365d',
  }),
  maxUnusedClients: setting({
    env: 'BROKER_MAX_UNUSED_CLIENTS',
    default: '10000',
    example: '2000',
    help: 'Most registrations that have not completed a login yet, all clients together. When full, the oldest one older than a sign-in (10 minutes) makes room; if none is, registration answers 503 until one is.',
    parse: parsePositiveInt,
  }),
  allowedUsers: setting({
    env: 'BROKER_ALLOWED_USERS',
    default: '',
    example: 'alice,bob',
    help: 'Forgejo logins allowed to sign in (comma-separated). Empty with BROKER_ALLOWED_ORGS empty: every Forgejo user.',
    parse: (raw) => parseList(raw).map((w) => w.toLowerCase()),
  }),
  allowedOrgs: setting({
    env: 'BROKER_ALLOWED_ORGS',
    default: '',
    example: 'acme,acme:developers',
    help: 'Forgejo organisations (org) or teams (org:team) whose members may sign in, from the userinfo groups. Combined with BROKER_ALLOWED_USERS by OR.',
    parse: (raw) => parseList(raw).map((w) => w.toLowerCase()),
  }),
  cimdTimeout: durationSetting({
    env: 'BROKER_CIMD_TIMEOUT',
    default: '5s',
    example: '3s',
    help: 'Longest time for fetching one Client ID Metadata Document, from the connection to its last byte.',
    min: '1s',
    max: '1m',
  }),
  cimdAllowPrivateHosts: setting({
    env: 'BROKER_CIMD_ALLOW_PRIVATE_HOSTS',
    default: '',
    example: 'localhost',
    help: 'Development only: host names whose Client ID Metadata Documents may be fetched from private or loopback addresses.',
    parse: (raw) => parseList(raw).map((w) => w.toLowerCase()),
  }),
  rateLimit: setting({
    env: 'BROKER_RATE_LIMIT',
    default: '30',
    example: '60',
    help: 'Requests per minute (and burst) per key on register, authorize and token; keys are described in docs/oauth.md. Each client IP may make ten times this.',
    parse: parsePositiveInt,
  }),
  trustedProxies: setting({
    env: 'BROKER_TRUSTED_PROXIES',
    default: '',
    example: '127.0.0.1,10.0.0.0/8',
    help: 'Addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed (for rate-limit keys). Empty: none.',
    parse: parseList,
  }),
  bodyTimeout: durationSetting({
    env: 'BROKER_BODY_TIMEOUT',
    default: '10s',
    example: '30s',
    help: "Longest wait for a request's headers, and then for its whole body; past it the broker answers 408 and closes the connection.",
    min: '1s',
    max: '10m',
  }),
  requestTimeout: durationSetting({
    env: 'BROKER_REQUEST_TIMEOUT',
    default: '30s',
    example: '60s',
    help: 'Longest time from a request’s arrival to the end of its answer (503 past it), for every route but the MCP calls and streams of an authenticated client, which BROKER_CALL_TIMEOUT bounds.',
    min: '1s',
    max: '1h',
  }),
  keepAliveTimeout: durationSetting({
    env: 'BROKER_KEEPALIVE_TIMEOUT',
    default: '72s',
    example: '30s',
    help: 'An idle keep-alive connection is closed after this long. Behind a reverse proxy, keep it above the proxy’s own idle timeout for upstream connections (the shipped Caddyfile uses 60s).',
    min: '1s',
    max: '1h',
  }),
  unauthenticatedBuffer: setting({
    env: 'BROKER_UNAUTHENTICATED_BUFFER',
    default: '8MiB',
    example: '32MiB',
    help: 'Most bytes of request bodies held at once, all together, for requests no bearer token vouches for (the OAuth endpoints); past it such requests get 503. /mcp reads no body before the token is checked.',
    parse: parseSize,
  }),
  drain: durationSetting({
    env: 'BROKER_DRAIN',
    default: '0s',
    example: '5s',
    help: "On SIGTERM, first keep serving this long while /healthz answers 503, so a load balancer's health checks send new requests to another replica before this one stops listening (a rolling upgrade without a single 502; deploy/compose-ha sets 5s, a single broker needs none). BROKER_SHUTDOWN_GRACE starts after it; a second signal still exits at once.",
    min: '0s',
    max: '1m',
  }),
  shutdownGrace: durationSetting({
    env: 'BROKER_SHUTDOWN_GRACE',
    default: '1500ms',
    example: '10s',
    help: 'How long SIGTERM waits for in-flight requests before closing them.',
    min: '100ms',
    max: '10m',
  }),
  ...gatewaySettings,
  ...policySettings,
};

export type Settings = typeof settings;
export type SettingName = keyof Settings;
export type SettingValues = { [K in SettingName]: ReturnType<Settings[K]['parse']> };

/** --public-url for BROKER_PUBLIC_URL, --forgejo-url for FORGEJO_URL, --log-level for LOG_LEVEL. */
export function flagName(env: string): string {
  return env
    .replace(/^BROKER_/, '')
    .toLowerCase()
    .replace(/_/g, '-');
}
