// `forgejo-mcp-broker admin …`: the operator's command. It opens the configured database beside a
// running broker (SQLite allows one writer at a time and waits for it); what it revokes reaches the
// broker through the change log within a second.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readlinkSync, renameSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Audit } from '../audit/audit.ts';
import type { Config } from '../config/config.ts';
import { parseDuration } from '../config/settings.ts';
import { checkForgejo } from '../forgejo/check.ts';
import { createLogger } from '../log/log.ts';
import { Operations } from '../store/sqlite/operations.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';

/** Exit codes, documented in docs/operations.md. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export type Output = { out(text: string): void; err(text: string): void };

export const USAGE = `Usage: forgejo-mcp-broker admin <command> [--json]

  users                         every user with grants or a stored Forgejo credential
  grants [--user L] [--client C] every grant (one per signed-in app), with its last use
  clients                       every registered client, with its grants and last use
  children                      the forgejo-mcp processes running brokers have now
  revoke-user <login|id>        sign a user out everywhere (all grants, the Forgejo credential)
  revoke-grant <grant-id>       end one app's access
  revoke-client <client-id>     end every grant of a client and delete its registration
  prune-clients [--older-than 7d]  delete registrations that never completed a sign-in
  backup <file>                 an online, consistent copy of the database
  restore <file>                put a backup in place (the broker must be stopped)
  check                         the configuration and Forgejo: discovery document, client
                                credentials, the redirect URI to register
  keys                          which key sealed the stored Forgejo tokens (key rotation)
  new-key                       print a new random BROKER_SECRET_KEY

Settings come from the environment, as for the broker (BROKER_DB, BROKER_SECRET_KEY, …).
Exit status: 0 done, 1 not found or failed, 2 usage or configuration error.`;

class UsageError extends Error {}
class Failure extends Error {}

type Parsed = {
  command: string;
  args: string[];
  json: boolean;
  user?: string;
  client?: string;
  olderThan?: string;
};

function parse(argv: string[]): Parsed {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      user: { type: 'string' },
      client: { type: 'string' },
      'older-than': { type: 'string' },
    },
  });
  const [command, ...args] = positionals;
  if (!command) throw new UsageError('no command given');
  return {
    command,
    args,
    json: values.json === true,
    user: values.user,
    client: values.client,
    olderThan: values['older-than'],
  };
}

const when = (ms: number | null): string =>
  ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** Left-aligned columns; the first row is the header. */
function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function arg(p: Parsed, what: string): string {
  const v = p.args[0];
  if (!v) throw new UsageError(`${p.command} needs ${what}`);
  return v;
}

/** Runs one admin command; returns the exit status. `config` is the broker's validated config. */
export async function runAdmin(argv: string[], config: Config, io: Output): Promise<number> {
  let p: Parsed;
  try {
    p = parse(argv);
  } catch (e) {
    io.err(`forgejo-mcp-broker admin: ${(e as Error).message}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  const print = (data: unknown, text: string) => io.out(`${p.json ? JSON.stringify(data, null, 2) : text}\n`);
  if (p.command === 'new-key') {
    const key = randomBytes(32).toString('base64');
    print({ key }, key);
    return EXIT.ok;
  }
  if (p.command === 'check') {
    const redirectUri = `${config.publicUrl}/oauth/callback`;
    const result = await checkForgejo({
      forgejoUrl: config.forgejoUrl,
      clientId: config.forgejoClientId,
      clientSecret: config.forgejoClientSecret,
      redirectUri,
    });
    const errors = result.problems.filter((x) => x.severity === 'error').length;
    print(
      { configuration: 'valid', redirectUri, ...result, ok: errors === 0 },
      [
        'configuration: valid',
        `redirect URI to register in Forgejo's OAuth2 application: ${redirectUri}`,
        ...result.passed.map((x) => `ok    ${x}`),
        ...result.problems.flatMap((x) => [
          `${x.severity === 'error' ? 'FAIL' : 'WARN'}  ${x.problem}`,
          `      fix: ${x.fix}`,
        ]),
        errors ? `${errors} problem(s): users cannot sign in until fixed` : 'all checks passed',
      ].join('\n'),
    );
    return errors ? EXIT.failed : EXIT.ok;
  }
  if (config.dbKind === 'postgres') {
    io.err(
      'forgejo-mcp-broker admin: this command reads SQLite databases only for now; on PostgreSQL, see docs/operations.md\n',
    );
    return EXIT.usage;
  }
  if (p.command === 'restore') {
    try {
      const file = arg(p, 'the backup file');
      restore(file, config);
      print({ restored: file, db: config.db }, `restored ${file} to ${config.db}; start the broker`);
      return EXIT.ok;
    } catch (e) {
      return report(e, io);
    }
  }
  let store: SqliteStore;
  try {
    store = new SqliteStore({
      path: config.db,
      secretKey: config.secretKey,
      previousKeys: config.previousSecretKeys,
    });
  } catch (e) {
    io.err(`forgejo-mcp-broker admin: ${(e as Error).message}\n`);
    return EXIT.usage;
  }
  const ops = new Operations(store);
  const audit = new Audit({ log: createLogger(config.logLevel), file: config.auditFile });
  try {
    return await dispatch(p, ops, store, config, print, audit);
  } catch (e) {
    return report(e, io);
  } finally {
    await audit.close();
    await store.close();
  }
}

function report(e: unknown, io: Output): number {
  io.err(`forgejo-mcp-broker admin: ${(e as Error).message}\n`);
  if (e instanceof UsageError) {
    io.err(`\n${USAGE}\n`);
    return EXIT.usage;
  }
  return EXIT.failed;
}

async function dispatch(
  p: Parsed,
  ops: Operations,
  store: SqliteStore,
  config: Config,
  print: (data: unknown, text: string) => void,
  audit: Audit,
): Promise<number> {
  switch (p.command) {
    case 'users': {
      const users = ops.users();
      print(
        users,
        table([
          ['USER', 'ID', 'GRANTS', 'SIGNED IN', 'LAST USED'],
          ...users.map((u) => [
            u.login,
            String(u.userId),
            String(u.grants),
            u.credentialUpdatedAt === null ? 'no' : 'yes',
            when(u.lastUsedAt),
          ]),
        ]),
      );
      return EXIT.ok;
    }
    case 'grants': {
      const userId = p.user === undefined ? undefined : requireUser(ops, p.user).userId;
      const grants = ops.grants({ userId, clientId: p.client });
      print(
        grants,
        table([
          ['GRANT', 'USER', 'CLIENT', 'CLIENT ID', 'CREATED', 'LAST USED'],
          ...grants.map((g) => [
            g.grantId,
            g.login,
            g.clientName,
            g.clientId,
            when(g.createdAt),
            when(g.lastUsedAt),
          ]),
        ]),
      );
      return EXIT.ok;
    }
    case 'clients': {
      const clients = ops.clients();
      print(
        clients,
        table([
          ['CLIENT ID', 'NAME', 'AUTH', 'GRANTS', 'REGISTERED', 'FIRST SIGN-IN', 'LAST USED'],
          ...clients.map((c) => [
            c.clientId,
            c.name,
            c.authMethod,
            String(c.grants),
            when(c.createdAt),
            when(c.usedAt),
            when(c.lastUsedAt),
          ]),
        ]),
      );
      return EXIT.ok;
    }
    case 'children': {
      const children = ops.children();
      print(
        children,
        table([
          ['PID', 'USER', 'BROKER PID', 'STARTED'],
          ...children.map((c) => [String(c.pid), c.login, String(c.brokerPid), when(c.startedAt)]),
        ]),
      );
      return EXIT.ok;
    }
    case 'revoke-user': {
      const user = requireUser(ops, arg(p, 'a login or user id'));
      await store.revokeUser(user.userId);
      audit.record({ event: 'grant_revoked', by: 'operator', userId: user.userId, login: user.login });
      print(
        { revoked: 'user', userId: user.userId, login: user.login, grants: user.grants },
        `revoked ${user.login}: ${user.grants} grant(s) and the Forgejo credential; their clients must sign in again`,
      );
      return EXIT.ok;
    }
    case 'revoke-grant': {
      const id = arg(p, 'a grant id (see `admin grants`)');
      const grant = ops.grants().find((g) => g.grantId === id);
      if (!grant) throw new Failure(`no grant ${id}`);
      await store.revokeGrant(id);
      audit.record({
        event: 'grant_revoked',
        by: 'operator',
        grantId: id,
        login: grant.login,
        clientId: grant.clientId,
      });
      print({ revoked: 'grant', ...grant }, `revoked grant ${id} (${grant.clientName} for ${grant.login})`);
      return EXIT.ok;
    }
    case 'revoke-client': {
      const id = arg(p, 'a client id (see `admin clients`)');
      const grants = ops.grants({ clientId: id }).length;
      if (!(await store.deleteClient(id))) throw new Failure(`no client ${id}`);
      audit.record({ event: 'grant_revoked', by: 'operator', clientId: id });
      print(
        { revoked: 'client', clientId: id, grants },
        `deleted client ${id} and revoked its ${grants} grant(s)`,
      );
      return EXIT.ok;
    }
    case 'prune-clients': {
      const age = p.olderThan === undefined ? config.unusedClientTtl : duration(p.olderThan);
      const n = ops.pruneUnusedClients(Date.now() - age);
      print({ pruned: n }, `deleted ${n} registration(s) never used in ${Math.round(age / 3_600_000)} h`);
      return EXIT.ok;
    }
    case 'backup': {
      const file = arg(p, 'the file to write');
      ops.backup(file);
      print({ backup: file }, `wrote a consistent copy of ${config.db} to ${file}`);
      return EXIT.ok;
    }
    case 'keys': {
      const { current, counts } = await store.sealedKeyCounts();
      const others = Object.entries(counts).filter(([k]) => k !== current);
      const done = others.length === 0 && !store.keyRotationPending;
      print(
        { current, counts, previousKeysNeeded: !done },
        `current key ${current}\n${
          Object.entries(counts)
            .map(
              ([k, n]) =>
                `  ${k === 'legacy' ? 'legacy (before key ids)' : k}: ${n} value(s)${k === current ? ' (current)' : ''}`,
            )
            .join('\n') || '  no sealed values'
        }\n${done ? 'every value is sealed under the current key: BROKER_PREVIOUS_SECRET_KEYS may be removed' : 'values still sealed under a previous key: keep BROKER_PREVIOUS_SECRET_KEYS until a running broker has re-sealed them'}`,
      );
      return EXIT.ok;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(p.command)}`);
  }
}

function requireUser(ops: Operations, who: string) {
  const user = ops.findUser(who);
  if (!user) throw new Failure(`no user ${who}`);
  return user;
}

function duration(raw: string): number {
  try {
    return parseDuration(raw);
  } catch (e) {
    throw new UsageError(`--older-than ${(e as Error).message}`);
  }
}

/**
 * Puts a backup in place of the database. The backup is opened first (schema and key must fit),
 * and a database some process still has open is refused: a broker would keep writing to the old
 * file's pages, and its WAL would be replayed onto the restored one.
 */
function restore(file: string, config: Config): void {
  if (!existsSync(file)) throw new Failure(`${file} does not exist`);
  const holders = processesHolding(config.db);
  if (holders.length > 0)
    throw new Failure(`${config.db} is open in process ${holders.join(', ')}; stop the broker first`);
  const check = new SqliteStore({
    path: file,
    secretKey: config.secretKey,
    previousKeys: config.previousSecretKeys,
  });
  void check.close();
  const staging = `${config.db}.restoring`;
  copyFileSync(file, staging);
  for (const suffix of ['-wal', '-shm']) rmSync(`${config.db}${suffix}`, { force: true });
  renameSync(staging, config.db);
}

/** Process ids (other than ours) with the file open, from /proc (Linux). */
function processesHolding(path: string): number[] {
  const pids: number[] = [];
  let procs: string[] = [];
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid);
  } catch {
    return pids;
  }
  for (const pid of procs) {
    try {
      const fds = readdirSync(`/proc/${pid}/fd`);
      if (fds.some((fd) => safeReadlink(`/proc/${pid}/fd/${fd}`) === path)) pids.push(Number(pid));
    } catch {
      // Another user's process, or gone meanwhile.
    }
  }
  return pids;
}

function safeReadlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
