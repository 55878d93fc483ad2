import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { packMetadata } from '../client-metadata.ts';
import { MCP_SESSION_COLUMNS, mcpSessionFromRow, mcpSessionValues } from '../mcp-session-row.ts';
import {
  authRequestFromRow,
  clientFromRow,
  credentialFromRow,
  grantFromRow,
  withPendingUse,
} from '../rows.ts';
import { Keyring, keyCheck, sealedKeyId } from '../secrets.ts';
import {
  type AccountSession,
  type AuthRequestRecord,
  type BrokerStore,
  type ClientRecord,
  type ClientUpdate,
  type CodeRecord,
  type ForgejoCredential,
  type GrantMode,
  type GrantRecord,
  type LiveChildRecord,
  type McpSessionRecord,
  type PendingLimits,
  type RefreshOutcome,
  type RegistrationBudget,
  type RevokedGrant,
  StoreError,
  type StoreEventMap,
  type TokenPair,
} from '../store.ts';
import { type Migration, migrate, readMigrations } from './migrate.ts';
import { Operations } from './operations.ts';

export type SqliteStoreOptions = {
  path: string;
  secretKey: Buffer;
  /** Keys that sealed values before the current one (a rotation in progress): they still open. */
  previousKeys?: Buffer[];
  /** For tests of the migration runner; the shipped migrations otherwise. */
  migrations?: Migration[];
  busyTimeoutMs?: number;
};

export type ChangeKind = 'grant' | 'user' | 'access_token' | 'session';

/** Long past any poll interval: a process that missed this much has restarted anyway. */
const CHANGE_LOG_KEEP_MS = 60 * 60_000;

export class SqliteStore implements BrokerStore {
  readonly kind = 'sqlite' as const;
  readonly db: DatabaseSync;
  readonly appliedMigrations: number[];
  readonly #keys: Keyring;
  readonly events = new EventEmitter<StoreEventMap>();
  /** Names this connection's rows in the change log, so it does not replay its own changes. */
  readonly origin = randomBytes(9).toString('base64url');
  /** True when the database's key fingerprint is a previous key's: values wait to be re-sealed. */
  keyRotationPending = false;

  constructor(options: SqliteStoreOptions) {
    this.#keys = new Keyring(options.secretKey, options.previousKeys);
    createOwnerOnly(options.path);
    try {
      this.db = new DatabaseSync(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    } catch (e) {
      throw new StoreError(`cannot open database ${options.path}: ${(e as Error).message}`);
    }
    try {
      // WAL lets readers run beside the one writer; NORMAL sync is durable at each checkpoint
      // and safe against corruption in WAL mode.
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      // SQLite gives the -wal and -shm files the database file's mode; older ones are tightened.
      for (const suffix of ['-wal', '-shm']) tightenToOwner(`${options.path}${suffix}`);
      this.appliedMigrations = migrate(this.db, options.migrations ?? readMigrations(), options.path);
      this.#checkKey(options.path);
    } catch (e) {
      this.db.close();
      throw e instanceof StoreError ? e : new StoreError(`database ${options.path}: ${(e as Error).message}`);
    }
  }

  #checkKey(label: string): void {
    const hasInstance = this.db
      .prepare("SELECT 1 AS ok FROM sqlite_master WHERE type = 'table' AND name = 'instance'")
      .get();
    if (!hasInstance) return;
    const check = keyCheck(this.#keys.current);
    const row = this.db.prepare('SELECT key_check FROM instance WHERE id = 1').get() as
      | { key_check: string }
      | undefined;
    if (!row) {
      this.db
        .prepare('INSERT INTO instance (id, created_at, key_check) VALUES (1, ?, ?)')
        .run(Date.now(), check);
    } else if (row.key_check !== check) {
      if (!this.#keys.hasCheck(row.key_check)) {
        throw new StoreError(
          `database ${label} was created with another BROKER_SECRET_KEY; set the original key (or its secret.key file) back, ` +
            'or, to rotate keys, keep it in BROKER_PREVIOUS_SECRET_KEYS beside the new one',
        );
      }
      this.keyRotationPending = true;
    }
  }

  /** Opening is synchronous here: a store that could not be used threw in the constructor. */
  async ready(): Promise<void> {}

  async health(): Promise<void> {
    if (!this.db.isOpen) throw new StoreError('database is closed');
    try {
      this.#stmt('SELECT COUNT(*) FROM schema_version').get();
    } catch (e) {
      throw new StoreError(`database does not answer: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.#flushUsage();
    if (this.db.isOpen) this.db.close();
  }

  // Compiling a statement costs more than running it (a bearer lookup is one indexed join), and
  // every query text here is a constant, so each is prepared once and kept for the store's life.
  readonly #statements = new Map<string, StatementSync>();

  #stmt(sql: string): StatementSync {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #row(sql: string, ...params: SQLInputValue[]): Record<string, SQLInputValue> | undefined {
    return this.#stmt(sql).get(...params) as Record<string, SQLInputValue> | undefined;
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#stmt(sql).run(...params).changes);
  }

  /** One transaction; events are emitted only after COMMIT. */
  #tx<T>(work: (emit: (fn: () => void) => void) => T): T {
    const after: (() => void)[] = [];
    this.db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = work((fn) => after.push(fn));
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
    for (const fn of after) fn();
    return result;
  }

  async insertClient(c: ClientRecord, budget?: RegistrationBudget): Promise<boolean> {
    return this.#tx(() => {
      if (budget && !this.#roomForClient(budget)) return false;
      this.#run(
        `INSERT INTO oauth_client (client_id, secret_hash, auth_method, name, redirect_uris, metadata, created_at,
           used_at, registration_token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        c.clientId,
        c.secretHash,
        c.authMethod,
        c.name,
        JSON.stringify(c.redirectUris),
        packMetadata(c.metadata),
        c.createdAt,
        c.usedAt,
        c.registrationTokenHash ?? null,
      );
      return true;
    });
  }

  /** Inside a transaction: true when the budget has room, after deleting what may make it. */
  #roomForClient(b: RegistrationBudget): boolean {
    const unused = () =>
      Number(this.#row('SELECT COUNT(*) AS n FROM oauth_client WHERE used_at IS NULL')?.['n'] ?? 0);
    const over = unused() - b.maxUnused + 1;
    if (over <= 0) return true;
    const victims = this.#stmt(
      `SELECT client_id FROM oauth_client WHERE used_at IS NULL AND created_at < ?
       ORDER BY created_at LIMIT ?`,
    ).all(b.evictCreatedBefore, over);
    for (const v of victims) {
      this.#run('DELETE FROM auth_request WHERE client_id = ?', v['client_id'] as string);
      this.#run('DELETE FROM oauth_client WHERE client_id = ?', v['client_id'] as string);
    }
    return unused() < b.maxUnused;
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const r = this.#row('SELECT * FROM oauth_client WHERE client_id = ?', clientId);
    return r ? clientFromRow(r) : undefined;
  }

  async updateClient(clientId: string, u: ClientUpdate): Promise<boolean> {
    return (
      this.#run(
        'UPDATE oauth_client SET name = ?, redirect_uris = ?, metadata = ? WHERE client_id = ?',
        u.name,
        JSON.stringify(u.redirectUris),
        packMetadata(u.metadata),
        clientId,
      ) === 1
    );
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return this.#tx((emit) => {
      const grants = this.#stmt('SELECT grant_id FROM oauth_grant WHERE client_id = ?').all(clientId);
      for (const g of grants) this.#deleteGrant(g['grant_id'] as string, emit);
      this.#run('DELETE FROM auth_request WHERE client_id = ?', clientId);
      return this.#run('DELETE FROM oauth_client WHERE client_id = ?', clientId) === 1;
    });
  }

  async pendingAuthRequests(now: number): Promise<number> {
    return Number(this.#row('SELECT COUNT(*) AS n FROM auth_request WHERE expires_at > ?', now)?.['n'] ?? 0);
  }

  async insertAuthRequest(q: AuthRequestRecord, now: number, limits: PendingLimits): Promise<boolean> {
    return this.#tx(() => {
      // Narrowest first: a source that floods sheds its own oldest requests before anyone else's.
      const bounds: [string, SQLInputValue[], number][] = [
        ['source = ?', [q.source], limits.perSource],
        ['client_id = ?', [q.clientId], limits.perClient],
        ['1 = 1', [], limits.total],
      ];
      for (const [where, args, max] of bounds) {
        const live = () =>
          Number(
            this.#row(
              `SELECT COUNT(*) AS n FROM auth_request WHERE ${where} AND expires_at > ?`,
              ...args,
              now,
            )?.['n'] ?? 0,
          );
        const over = live() - max + 1;
        if (over <= 0) continue;
        this.#run(
          `DELETE FROM auth_request WHERE id_hash IN (SELECT id_hash FROM auth_request
             WHERE ${where} AND expires_at > ? AND upstream_state_hash IS NULL ORDER BY expires_at LIMIT ?)`,
          ...args,
          now,
          over,
        );
        if (live() >= max) return false;
      }
      this.#run(
        `INSERT INTO auth_request (id_hash, browser_hash, csrf_hash, client_id, client_name, source,
           redirect_uri, client_state, code_challenge, resource, scopes, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        q.idHash,
        q.browserHash,
        q.csrfHash,
        q.clientId,
        q.clientName,
        q.source,
        q.redirectUri,
        q.clientState,
        q.codeChallenge,
        q.resource,
        q.scopes.join(' '),
        q.expiresAt,
      );
      return true;
    });
  }

  async getAuthRequest(idHash: string): Promise<AuthRequestRecord | undefined> {
    const r = this.#row('SELECT * FROM auth_request WHERE id_hash = ?', idHash);
    return r ? authRequestFromRow(r, this.#keys) : undefined;
  }

  async approveAuthRequest(
    idHash: string,
    upstreamStateHash: string,
    upstreamVerifier: string,
    expiresAt: number,
    now: number,
    mode: GrantMode = 'write',
  ): Promise<boolean> {
    const sealed = this.#keys.seal(upstreamVerifier, `auth_request:${idHash}`);
    return (
      this.#run(
        `UPDATE auth_request SET upstream_state_hash = ?, upstream_verifier = ?, expires_at = ?, mode = ?
         WHERE id_hash = ? AND upstream_state_hash IS NULL AND expires_at > ?`,
        upstreamStateHash,
        sealed,
        expiresAt,
        mode,
        idHash,
        now,
      ) === 1
    );
  }

  async deleteAuthRequest(idHash: string): Promise<void> {
    this.#run('DELETE FROM auth_request WHERE id_hash = ?', idHash);
  }

  async takeAuthRequestByState(stateHash: string, now: number): Promise<AuthRequestRecord | undefined> {
    return this.#tx(() => {
      const r = this.#row('SELECT * FROM auth_request WHERE upstream_state_hash = ?', stateHash);
      if (!r) return undefined;
      this.#run('DELETE FROM auth_request WHERE id_hash = ?', r['id_hash'] as string);
      return (r['expires_at'] as number) > now ? authRequestFromRow(r, this.#keys) : undefined;
    });
  }

  async putCredential(c: ForgejoCredential): Promise<void> {
    const ctx = `forgejo_credential:${c.userId}`;
    this.#run(
      `INSERT INTO forgejo_credential (user_id, login, access_token, refresh_token, expires_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET login = excluded.login, access_token = excluded.access_token,
         refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
      c.userId,
      c.login,
      this.#keys.seal(c.accessToken, ctx),
      this.#keys.seal(c.refreshToken, ctx),
      c.expiresAt,
      c.updatedAt,
    );
    this.events.emit('tokenChanged', c.userId);
  }

  async getCredential(userId: number): Promise<ForgejoCredential | undefined> {
    const r = this.#row('SELECT * FROM forgejo_credential WHERE user_id = ?', userId);
    return r ? credentialFromRow(userId, r, this.#keys) : undefined;
  }

  /** One broker process per SQLite file: the credential manager's in-process single flight is enough. */
  withCredentialLock<T>(_userId: number, work: () => Promise<T>): Promise<T> {
    return work();
  }

  async createGrant(g: GrantRecord, c: CodeRecord): Promise<void> {
    this.#tx(() => {
      this.#run(
        `INSERT INTO oauth_grant (grant_id, user_id, login, client_id, scopes, resource, created_at,
           mode, client_name, redirect_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        g.grantId,
        g.userId,
        g.login,
        g.clientId,
        g.scopes.join(' '),
        g.resource,
        g.createdAt,
        g.mode ?? 'write',
        g.clientName ?? '',
        g.redirectUri ?? '',
      );
      this.#run(
        `INSERT INTO auth_code (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        c.codeHash,
        c.grantId,
        c.clientId,
        c.redirectUri,
        c.codeChallenge,
        c.resource,
        c.expiresAt,
      );
      this.#run(
        'UPDATE oauth_client SET used_at = ? WHERE client_id = ? AND used_at IS NULL',
        g.createdAt,
        g.clientId,
      );
    });
  }

  async getCode(codeHash: string): Promise<CodeRecord | undefined> {
    const r = this.#row('SELECT * FROM auth_code WHERE code_hash = ?', codeHash);
    if (!r) return undefined;
    return {
      codeHash,
      grantId: r['grant_id'] as string,
      clientId: r['client_id'] as string,
      redirectUri: r['redirect_uri'] as string,
      codeChallenge: r['code_challenge'] as string,
      resource: r['resource'] as string,
      expiresAt: r['expires_at'] as number,
      usedAt: r['used_at'] as number | null,
    };
  }

  #insertPair(grantId: string, t: TokenPair): void {
    const insert = 'INSERT INTO oauth_token (token_hash, kind, grant_id, expires_at) VALUES (?, ?, ?, ?)';
    this.#run(insert, t.accessHash, 'access', grantId, t.accessExpiresAt);
    this.#run(insert, t.refreshHash, 'refresh', grantId, t.refreshExpiresAt);
  }

  /** Deletes a grant (its codes and tokens cascade) inside a transaction, announcing it after commit. */
  #deleteGrant(grantId: string, emit: (fn: () => void) => void): void {
    const r = this.#row('SELECT user_id FROM oauth_grant WHERE grant_id = ?', grantId);
    if (!r) return;
    this.#run('DELETE FROM oauth_grant WHERE grant_id = ?', grantId);
    const revoked: RevokedGrant = { grantId, userId: r['user_id'] as number };
    this.#logChange('grant', revoked.grantId, revoked.userId, null);
    emit(() => this.events.emit('grantRevoked', revoked));
  }

  async redeemCode(codeHash: string, now: number, tokens: TokenPair): Promise<'ok' | 'reused'> {
    return this.#tx((emit) => {
      const r = this.#row('SELECT grant_id, used_at FROM auth_code WHERE code_hash = ?', codeHash);
      if (!r) return 'reused';
      const grantId = r['grant_id'] as string;
      if (r['used_at'] !== null) {
        this.#deleteGrant(grantId, emit);
        return 'reused';
      }
      this.#run('UPDATE auth_code SET used_at = ? WHERE code_hash = ?', now, codeHash);
      this.#insertPair(grantId, tokens);
      return 'ok';
    });
  }

  async listGrants(userId: number): Promise<GrantRecord[]> {
    return this.#stmt('SELECT * FROM oauth_grant WHERE user_id = ? ORDER BY created_at DESC, grant_id')
      .all(userId)
      .map((r) => withPendingUse(grantFromRow(r), this.#used));
  }

  async insertAccountLogin(
    stateHash: string,
    browserHash: string,
    verifier: string,
    expiresAt: number,
  ): Promise<void> {
    this.#run(
      'INSERT INTO account_login (state_hash, browser_hash, verifier, expires_at) VALUES (?, ?, ?, ?)',
      stateHash,
      browserHash,
      this.#keys.seal(verifier, `account_login:${stateHash}`),
      expiresAt,
    );
  }

  async takeAccountLogin(
    stateHash: string,
    now: number,
  ): Promise<{ browserHash: string; verifier: string } | undefined> {
    return this.#tx(() => {
      const r = this.#row('SELECT * FROM account_login WHERE state_hash = ?', stateHash);
      if (!r) return undefined;
      this.#run('DELETE FROM account_login WHERE state_hash = ?', stateHash);
      if ((r['expires_at'] as number) <= now) return undefined;
      return {
        browserHash: r['browser_hash'] as string,
        verifier: this.#keys.open(r['verifier'] as string, `account_login:${stateHash}`),
      };
    });
  }

  async insertAccountSession(a: AccountSession): Promise<void> {
    this.#run(
      'INSERT INTO account_session (id_hash, user_id, login, csrf_hash, expires_at) VALUES (?, ?, ?, ?, ?)',
      a.idHash,
      a.userId,
      a.login,
      a.csrfHash,
      a.expiresAt,
    );
  }

  async getAccountSession(idHash: string, now: number): Promise<AccountSession | undefined> {
    const r = this.#row('SELECT * FROM account_session WHERE id_hash = ? AND expires_at > ?', idHash, now);
    if (!r) return undefined;
    return {
      idHash,
      userId: r['user_id'] as number,
      login: r['login'] as string,
      csrfHash: r['csrf_hash'] as string,
      expiresAt: r['expires_at'] as number,
    };
  }

  async deleteAccountSession(idHash: string): Promise<void> {
    this.#run('DELETE FROM account_session WHERE id_hash = ?', idHash);
  }

  async rotateRefreshToken(
    refreshHash: string,
    clientId: string,
    now: number,
    graceMs: number,
    next: TokenPair,
  ): Promise<RefreshOutcome> {
    return this.#tx((emit): RefreshOutcome => {
      const r = this.#row(
        `SELECT t.expires_at AS token_expires_at, t.rotated_at, t.grace_used, g.* FROM oauth_token t
         JOIN oauth_grant g ON g.grant_id = t.grant_id WHERE t.token_hash = ? AND t.kind = 'refresh'`,
        refreshHash,
      );
      if (!r) return { ok: false, reason: 'unknown' };
      const grant = grantFromRow(r);
      if (grant.clientId !== clientId) return { ok: false, reason: 'wrong_client' };
      if ((r['token_expires_at'] as number) <= now) return { ok: false, reason: 'expired' };
      const rotatedAt = r['rotated_at'] as number | null;
      if (rotatedAt === null) {
        this.#run('UPDATE oauth_token SET rotated_at = ? WHERE token_hash = ?', now, refreshHash);
        this.#insertPair(grant.grantId, next);
        return { ok: true, grant, graceReuse: false, accessExpiresAt: next.accessExpiresAt };
      }
      if (now - rotatedAt > graceMs || r['grace_used'] !== 0) {
        this.#deleteGrant(grant.grantId, emit);
        return { ok: false, reason: 'reused' };
      }
      this.#run('UPDATE oauth_token SET grace_used = 1 WHERE token_hash = ?', refreshHash);
      const successor = 'SELECT expires_at FROM oauth_token WHERE token_hash = ? AND grant_id = ?';
      // The successor is never re-created: an access token revoked alone stays revoked. It is absent
      // altogether only for a token rotated before successors were derived.
      if (!this.#row(successor, next.refreshHash, grant.grantId)) this.#insertPair(grant.grantId, next);
      const access = this.#row(successor, next.accessHash, grant.grantId);
      return {
        ok: true,
        grant,
        graceReuse: true,
        accessExpiresAt: (access?.['expires_at'] as number) ?? now,
      };
    });
  }

  /**
   * Re-seals up to `limit` values not yet under the current key; once none is left, the database
   * records the current key as its own and the previous keys are no longer needed. Returns how
   * many it re-sealed.
   */
  async resealBatch(limit: number): Promise<number> {
    const prefix = `v2.${this.#keys.currentId}.%`;
    return this.#tx(() => {
      let n = 0;
      const creds = this.#stmt(
        `SELECT user_id, access_token, refresh_token FROM forgejo_credential
         WHERE access_token NOT LIKE ? OR refresh_token NOT LIKE ? LIMIT ?`,
      ).all(prefix, prefix, limit);
      for (const r of creds) {
        const ctx = `forgejo_credential:${r['user_id']}`;
        this.#run(
          'UPDATE forgejo_credential SET access_token = ?, refresh_token = ? WHERE user_id = ?',
          this.#keys.seal(this.#keys.open(r['access_token'] as string, ctx), ctx),
          this.#keys.seal(this.#keys.open(r['refresh_token'] as string, ctx), ctx),
          r['user_id'] as number,
        );
        n++;
      }
      const requests = this.#stmt(
        `SELECT id_hash, upstream_verifier FROM auth_request
         WHERE upstream_verifier IS NOT NULL AND upstream_verifier NOT LIKE ? LIMIT ?`,
      ).all(prefix, Math.max(0, limit - n));
      for (const r of requests) {
        const ctx = `auth_request:${r['id_hash']}`;
        this.#run(
          'UPDATE auth_request SET upstream_verifier = ? WHERE id_hash = ?',
          this.#keys.seal(this.#keys.open(r['upstream_verifier'] as string, ctx), ctx),
          r['id_hash'] as string,
        );
        n++;
      }
      if (n === 0 && this.keyRotationPending) {
        this.#run('UPDATE instance SET key_check = ? WHERE id = 1', keyCheck(this.#keys.current));
        this.keyRotationPending = false;
      }
      return n;
    });
  }

  /** How many sealed values each key sealed ('legacy': sealed before values named their key). */
  async sealedKeyCounts(): Promise<{ current: string; counts: Record<string, number> }> {
    const counts: Record<string, number> = {};
    const rows = [
      ...this.#stmt('SELECT access_token AS v FROM forgejo_credential').all(),
      ...this.#stmt('SELECT refresh_token AS v FROM forgejo_credential').all(),
      ...this.#stmt(
        'SELECT upstream_verifier AS v FROM auth_request WHERE upstream_verifier IS NOT NULL',
      ).all(),
    ];
    for (const r of rows) {
      const kid = sealedKeyId(r['v'] as string);
      counts[kid] = (counts[kid] ?? 0) + 1;
    }
    return { current: this.#keys.currentId, counts };
  }

  /**
   * Replays revocations that another process wrote to the change log (the admin command, another
   * broker on the same file) as this store's events, polling SQLite's cheap data_version, which
   * changes only when another connection committed. Returns the stop function.
   */
  watchChanges(intervalMs: number): () => void {
    let version = this.#dataVersion();
    let seq = Number(this.#row('SELECT COALESCE(MAX(seq), 0) AS s FROM change_log')?.['s'] ?? 0);
    const timer = setInterval(() => {
      if (!this.db.isOpen) return;
      const v = this.#dataVersion();
      if (v === version) return;
      version = v;
      const rows = this.#stmt('SELECT * FROM change_log WHERE seq > ? ORDER BY seq').all(seq);
      for (const r of rows) {
        seq = r['seq'] as number;
        if (r['origin'] === this.origin) continue;
        const userId = r['user_id'] as number;
        const grantId = r['grant_id'] as string;
        if (r['kind'] === 'grant') this.events.emit('grantRevoked', { grantId, userId });
        else if (r['kind'] === 'user') this.events.emit('userRevoked', userId);
        else if (r['kind'] === 'session')
          this.events.emit('sessionEnded', { idHash: r['token_hash'] as string, grantId, userId });
        else
          this.events.emit('accessTokenRevoked', { tokenHash: r['token_hash'] as string, grantId, userId });
      }
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  #dataVersion(): number {
    return Number(this.#row('PRAGMA data_version')?.['data_version'] ?? 0);
  }

  async findAccessToken(accessHash: string): Promise<{ grant: GrantRecord; expiresAt: number } | undefined> {
    const r = this.#row(
      `SELECT t.expires_at AS token_expires_at, g.* FROM oauth_token t
       JOIN oauth_grant g ON g.grant_id = t.grant_id WHERE t.token_hash = ? AND t.kind = 'access'`,
      accessHash,
    );
    if (!r) return undefined;
    this.#used.set(r['grant_id'] as string, Date.now());
    return { grant: grantFromRow(r), expiresAt: r['token_expires_at'] as number };
  }

  /** Grants seen by the bearer check since the last flush, with the time. */
  readonly #used = new Map<string, number>();

  noteGrantUsed(grantId: string, at: number): void {
    this.#used.set(grantId, at);
  }

  /** Writes the remembered last-use times of grants (called periodically and at close). */
  async flushUsage(): Promise<number> {
    return this.#flushUsage();
  }

  #flushUsage(): number {
    if (this.#used.size === 0 || !this.db.isOpen) return 0;
    const used = [...this.#used];
    this.#used.clear();
    this.#tx(() => {
      for (const [grantId, at] of used)
        this.#run('UPDATE oauth_grant SET last_used_at = ? WHERE grant_id = ?', at, grantId);
    });
    return used.length;
  }

  async insertMcpSession(m: McpSessionRecord, maxPerUser: number): Promise<boolean> {
    return this.#tx((emit) => {
      if (!this.#row('SELECT 1 AS ok FROM oauth_grant WHERE grant_id = ?', m.grantId)) return false;
      const n = Number(
        this.#row('SELECT COUNT(*) AS n FROM mcp_session WHERE user_id = ?', m.userId)?.['n'] ?? 0,
      );
      const over = n - maxPerUser + 1;
      if (over > 0) {
        const gone = this.#stmt(
          'SELECT id_hash, grant_id FROM mcp_session WHERE user_id = ? ORDER BY last_seen_at, created_at LIMIT ?',
        ).all(m.userId, over);
        for (const g of gone)
          this.#endSession(g['id_hash'] as string, g['grant_id'] as string, m.userId, emit);
      }
      this.#run(
        `INSERT INTO mcp_session (${MCP_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ...mcpSessionValues(m),
      );
      return true;
    });
  }

  /** Inside a transaction: deletes a session and announces it here and to other processes. */
  #endSession(idHash: string, grantId: string, userId: number, emit: (fn: () => void) => void): void {
    this.#run('DELETE FROM mcp_session WHERE id_hash = ?', idHash);
    this.#logChange('session', grantId, userId, idHash);
    emit(() => this.events.emit('sessionEnded', { idHash, grantId, userId }));
  }

  async getMcpSession(idHash: string): Promise<McpSessionRecord | undefined> {
    const r = this.#row('SELECT * FROM mcp_session WHERE id_hash = ?', idHash);
    return r ? mcpSessionFromRow(r) : undefined;
  }

  async touchMcpSessions(
    seen: { idHash: string; at: number; tokenHash: string | null }[],
  ): Promise<string[]> {
    if (seen.length === 0) return [];
    return this.#tx(() =>
      seen
        .filter(
          (x) =>
            this.#run(
              `UPDATE mcp_session SET
                 token_hash = CASE WHEN ?2 >= last_seen_at THEN COALESCE(?3, token_hash) ELSE token_hash END,
                 last_seen_at = MAX(last_seen_at, ?2)
               WHERE id_hash = ?1`,
              x.idHash,
              x.at,
              x.tokenHash,
            ) === 0,
        )
        .map((x) => x.idHash),
    );
  }

  async deleteMcpSession(idHash: string): Promise<boolean> {
    return this.#tx((emit) => {
      const r = this.#row('SELECT grant_id, user_id FROM mcp_session WHERE id_hash = ?', idHash);
      if (!r) return false;
      this.#endSession(idHash, r['grant_id'] as string, r['user_id'] as number, emit);
      return true;
    });
  }

  async pruneMcpSessions(seenBefore: number): Promise<number> {
    return this.#run('DELETE FROM mcp_session WHERE last_seen_at < ?', seenBefore);
  }

  readonly #children = new Operations(this);

  async recordChild(c: LiveChildRecord): Promise<void> {
    this.#children.recordChild(c);
  }

  async forgetChild(pid: number): Promise<void> {
    this.#children.forgetChild(pid);
  }

  async forgetChildrenOf(brokerPid: number): Promise<void> {
    this.#children.forgetChildrenOf(brokerPid);
  }

  async childBrokerPids(): Promise<number[]> {
    return this.#children.childBrokerPids();
  }

  async revokeToken(tokenHash: string, clientId: string): Promise<'access' | 'refresh' | undefined> {
    return this.#tx((emit) => {
      const r = this.#row(
        `SELECT t.kind, t.grant_id, g.user_id FROM oauth_token t JOIN oauth_grant g ON g.grant_id = t.grant_id
         WHERE t.token_hash = ? AND g.client_id = ?`,
        tokenHash,
        clientId,
      );
      if (!r) return undefined;
      const kind = r['kind'] as 'access' | 'refresh';
      if (kind === 'refresh') this.#deleteGrant(r['grant_id'] as string, emit);
      else {
        this.#run('DELETE FROM oauth_token WHERE token_hash = ?', tokenHash);
        this.#run('DELETE FROM mcp_session WHERE token_hash = ?', tokenHash);
        const revoked = { tokenHash, grantId: r['grant_id'] as string, userId: r['user_id'] as number };
        this.#logChange('access_token', revoked.grantId, revoked.userId, tokenHash);
        emit(() => this.events.emit('accessTokenRevoked', revoked));
      }
      return kind;
    });
  }

  async revokeGrant(grantId: string): Promise<void> {
    this.#tx((emit) => this.#deleteGrant(grantId, emit));
  }

  async revokeUser(userId: number): Promise<void> {
    this.#tx((emit) => {
      const grants = this.#stmt('SELECT grant_id FROM oauth_grant WHERE user_id = ?').all(userId);
      for (const g of grants) this.#deleteGrant(g['grant_id'] as string, emit);
      this.#run('DELETE FROM forgejo_credential WHERE user_id = ?', userId);
      this.#logChange('user', null, userId, null);
      emit(() => this.events.emit('userRevoked', userId));
    });
  }

  /**
   * Revocations are also written to the change log, in the same transaction, so another process
   * on the same database (the admin command, another replica) can replay them: see change-feed.ts.
   */
  #logChange(kind: ChangeKind, grantId: string | null, userId: number, tokenHash: string | null): void {
    this.#run(
      'INSERT INTO change_log (origin, kind, grant_id, user_id, token_hash, at) VALUES (?, ?, ?, ?, ?, ?)',
      this.origin,
      kind,
      grantId,
      userId,
      tokenHash,
      Date.now(),
    );
  }

  async purgeExpired(now: number, unusedClientsBefore: number): Promise<number> {
    return this.#tx(() => {
      let n = this.#run('DELETE FROM auth_request WHERE expires_at <= ?', now);
      n += this.#run('DELETE FROM change_log WHERE at <= ?', now - CHANGE_LOG_KEEP_MS);
      // A used code stays as long as its grant (it cascades away with it), so a replay is
      // recognised for as long as the tokens it issued live.
      n += this.#run('DELETE FROM auth_code WHERE expires_at <= ? AND used_at IS NULL', now);
      n += this.#run('DELETE FROM oauth_token WHERE expires_at <= ?', now);
      n += this.#run('DELETE FROM account_login WHERE expires_at <= ?', now);
      n += this.#run('DELETE FROM account_session WHERE expires_at <= ?', now);
      // A grant with no token and no unused code left can never be used again.
      n += this.#run(
        `DELETE FROM oauth_grant WHERE
           NOT EXISTS (SELECT 1 FROM oauth_token t WHERE t.grant_id = oauth_grant.grant_id)
           AND NOT EXISTS (SELECT 1 FROM auth_code c WHERE c.grant_id = oauth_grant.grant_id AND c.used_at IS NULL)`,
      );
      n += this.#run(
        'DELETE FROM oauth_client WHERE used_at IS NULL AND created_at <= ?',
        unusedClientsBefore,
      );
      return n;
    });
  }
}

/**
 * The database holds hashes, sealed tokens and client metadata: it is created owner-only (0600)
 * whatever the umask (SQLite would make it 0644), and an existing one readable by others is tightened.
 */
function createOwnerOnly(path: string): void {
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  try {
    closeSync(openSync(path, 'a', 0o600));
  } catch {
    return; // DatabaseSync says why, in its own words
  }
  tightenToOwner(path);
}

function tightenToOwner(path: string): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) chmodSync(path, mode & 0o700);
  } catch {
    // Missing, or not ours to change (an operator's deliberate setup): left as it is.
  }
}
