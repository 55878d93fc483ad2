// What an operator asks of the database (the admin command): who uses the broker, through which
// clients, which children run, and a consistent copy of it all. Revocations go through the store's
// own methods, so they reach the running broker through the change log.
import { existsSync } from 'node:fs';
import type { SQLInputValue } from 'node:sqlite';
import { processAlive } from '../processes.ts';
import type { SqliteStore } from './sqlite-store.ts';

export type UserRow = {
  userId: number;
  login: string;
  grants: number;
  /** When the user's Forgejo credential was last refreshed or replaced; null: signed out. */
  credentialUpdatedAt: number | null;
  lastUsedAt: number | null;
};

export type GrantRow = {
  grantId: string;
  userId: number;
  login: string;
  clientId: string;
  clientName: string;
  createdAt: number;
  lastUsedAt: number | null;
};

export type ClientRow = {
  clientId: string;
  name: string;
  authMethod: string;
  redirectUris: string[];
  createdAt: number;
  /** First completed sign-in; null: never used. */
  usedAt: number | null;
  grants: number;
  lastUsedAt: number | null;
};

export type ChildRow = { pid: number; brokerPid: number; login: string; startedAt: number };

type Row = Record<string, SQLInputValue>;

export class Operations {
  readonly #store: SqliteStore;

  constructor(store: SqliteStore) {
    this.#store = store;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#store.db.prepare(sql).all(...params) as Row[];
  }

  users(): UserRow[] {
    return this.#all(
      `SELECT u.user_id, COALESCE(c.login, (SELECT login FROM oauth_grant WHERE user_id = u.user_id LIMIT 1)) AS login,
         (SELECT COUNT(*) FROM oauth_grant WHERE user_id = u.user_id) AS grants,
         c.updated_at, (SELECT MAX(last_used_at) FROM oauth_grant WHERE user_id = u.user_id) AS last_used_at
       FROM (SELECT user_id FROM forgejo_credential UNION SELECT user_id FROM oauth_grant) u
       LEFT JOIN forgejo_credential c ON c.user_id = u.user_id ORDER BY login`,
    ).map((r) => ({
      userId: r['user_id'] as number,
      login: r['login'] as string,
      grants: Number(r['grants']),
      credentialUpdatedAt: (r['updated_at'] as number | null) ?? null,
      lastUsedAt: (r['last_used_at'] as number | null) ?? null,
    }));
  }

  grants(filter: { userId?: number; clientId?: string } = {}): GrantRow[] {
    return this.#all(
      `SELECT g.grant_id, g.user_id, g.login, g.client_id, COALESCE(c.name, '') AS client_name, g.created_at, g.last_used_at
       FROM oauth_grant g LEFT JOIN oauth_client c ON c.client_id = g.client_id
       WHERE (? IS NULL OR g.user_id = ?) AND (? IS NULL OR g.client_id = ?) ORDER BY g.login, g.created_at`,
      filter.userId ?? null,
      filter.userId ?? null,
      filter.clientId ?? null,
      filter.clientId ?? null,
    ).map((r) => ({
      grantId: r['grant_id'] as string,
      userId: r['user_id'] as number,
      login: r['login'] as string,
      clientId: r['client_id'] as string,
      clientName: r['client_name'] as string,
      createdAt: r['created_at'] as number,
      lastUsedAt: (r['last_used_at'] as number | null) ?? null,
    }));
  }

  clients(): ClientRow[] {
    return this.#all(
      `SELECT c.client_id, c.name, c.auth_method, c.redirect_uris, c.created_at, c.used_at,
         (SELECT COUNT(*) FROM oauth_grant g WHERE g.client_id = c.client_id) AS grants,
         (SELECT MAX(last_used_at) FROM oauth_grant g WHERE g.client_id = c.client_id) AS last_used_at
       FROM oauth_client c ORDER BY c.created_at`,
    ).map((r) => ({
      clientId: r['client_id'] as string,
      name: r['name'] as string,
      authMethod: r['auth_method'] as string,
      redirectUris: JSON.parse(r['redirect_uris'] as string) as string[],
      createdAt: r['created_at'] as number,
      usedAt: (r['used_at'] as number | null) ?? null,
      grants: Number(r['grants']),
      lastUsedAt: (r['last_used_at'] as number | null) ?? null,
    }));
  }

  /** Finds a user by login (case-insensitive, as Forgejo compares them) or by numeric id. */
  findUser(loginOrId: string): UserRow | undefined {
    const users = this.users();
    return /^\d+$/.test(loginOrId)
      ? users.find((u) => u.userId === Number(loginOrId))
      : users.find((u) => u.login.toLowerCase() === loginOrId.toLowerCase());
  }

  /** Deletes registrations that never completed a sign-in and are older than `before`. */
  pruneUnusedClients(before: number): number {
    return Number(
      this.#store.db
        .prepare(
          `DELETE FROM oauth_client WHERE used_at IS NULL AND created_at <= ?
           AND NOT EXISTS (SELECT 1 FROM oauth_grant g WHERE g.client_id = oauth_client.client_id)`,
        )
        .run(before).changes,
    );
  }

  recordChild(c: ChildRow): void {
    this.#store.db
      .prepare('INSERT OR REPLACE INTO live_child (pid, broker_pid, login, started_at) VALUES (?, ?, ?, ?)')
      .run(c.pid, c.brokerPid, c.login, c.startedAt);
  }

  forgetChild(pid: number): void {
    if (this.#store.db.isOpen) this.#store.db.prepare('DELETE FROM live_child WHERE pid = ?').run(pid);
  }

  /** Rows left by an earlier run of this broker process id (a crash): never a live child of ours. */
  forgetChildrenOf(brokerPid: number): void {
    this.#store.db.prepare('DELETE FROM live_child WHERE broker_pid = ?').run(brokerPid);
  }

  childBrokerPids(): number[] {
    return this.#all('SELECT DISTINCT broker_pid FROM live_child ORDER BY broker_pid').map((r) =>
      Number(r['broker_pid']),
    );
  }

  /** Children of broker processes that are still alive. */
  children(): ChildRow[] {
    return this.#all('SELECT * FROM live_child ORDER BY login, started_at')
      .map((r) => ({
        pid: r['pid'] as number,
        brokerPid: r['broker_pid'] as number,
        login: r['login'] as string,
        startedAt: r['started_at'] as number,
      }))
      .filter((c) => processAlive(c.brokerPid));
  }

  /**
   * An online, consistent copy (VACUUM INTO reads one snapshot while the broker keeps writing).
   * The copy holds hashes and sealed values only; it opens with the same secret key.
   */
  backup(path: string): void {
    if (existsSync(path)) throw new Error(`${path} exists already; choose a new file name`);
    // Runs at once (the SQLite write is synchronous), so the copy has the newest last-use times.
    void this.#store.flushUsage();
    this.#store.db.prepare('VACUUM INTO ?').run(path);
  }
}
