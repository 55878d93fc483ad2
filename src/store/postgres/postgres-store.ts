// The store on PostgreSQL, for several broker replicas sharing one database. Same tables, same
// guarantees as SqliteStore: hashes and sealed values only, whole transactions, and row locks
// where two replicas could race (a code redeemed twice, a refresh token rotated twice, the cap on
// pending authorizations). Revocations reach the other replicas through the change log: a NOTIFY
// at commit wakes them at once, a periodic read catches what a lost connection missed.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import pg from 'pg';
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
import type { Migration } from '../sqlite/migrate.ts';
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
import { migratePostgres, readPostgresMigrations } from './migrate.ts';

export type PostgresStoreOptions = {
  /** postgres://user:password@host:port/database (libpq URL; `?sslmode=…` as libpq). */
  url: string;
  secretKey: Buffer;
  previousKeys?: Buffer[];
  migrations?: Migration[];
  /** Connections this replica keeps; a bearer check or a token exchange holds one briefly. */
  maxConnections?: number;
};

type Row = Record<string, unknown>;
type Query = (sql: string, params?: unknown[]) => Promise<Row[]>;
type Emit = (fn: () => void) => void;

const CHANNEL = 'forgejo_mcp_broker_change';
/** Held for the rest of a transaction that writes the change log: seq order is commit order. */
const CHANGE_LOG_LOCK = 0x666d62_02;
/** Held while counting and inserting a pending authorization: the bounds hold across replicas. */
const PENDING_LOCK = 0x666d62_03;
/** Held while counting and inserting a budgeted registration: the budget holds across replicas. */
const REGISTRATION_LOCK = 0x666d62_04;
const CHANGE_LOG_KEEP_MS = 60 * 60_000;
/** serialization_failure, deadlock_detected: the transaction is safe to run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 5;

// Times are ms epochs in BIGINT columns: well inside a double's exact range.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The URL without its password, for logs and error messages. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    u.search = '';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export class PostgresStore implements BrokerStore {
  readonly kind = 'postgres' as const;
  readonly events = new EventEmitter<StoreEventMap>();
  /** Names this store's rows in the change log, so it does not replay its own changes. */
  readonly origin = randomBytes(9).toString('base64url');
  appliedMigrations: number[] = [];
  keyRotationPending = false;
  readonly #keys: Keyring;
  readonly #pool: pg.Pool;
  /**
   * Connections that only hold credential locks while a refresh talks to Forgejo: apart from the
   * query pool, so replicas waiting on a lock can never take the connections the holder needs.
   */
  readonly #lockPool: pg.Pool;
  readonly #url: string;
  readonly #label: string;
  readonly #ready: Promise<void>;
  #closed = false;
  readonly #host = hostname();

  constructor(options: PostgresStoreOptions) {
    this.#keys = new Keyring(options.secretKey, options.previousKeys);
    this.#url = options.url;
    this.#label = describePostgresUrl(options.url);
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      types,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    this.#lockPool = new pg.Pool({ connectionString: options.url, max: 8, types, idleTimeoutMillis: 30_000 });
    // An idle connection the server drops must not crash the process: the pool replaces it.
    this.#pool.on('error', () => {});
    this.#lockPool.on('error', () => {});
    this.#ready = this.#init(options.migrations ?? readPostgresMigrations());
    this.#ready.catch(() => {});
  }

  async #init(migrations: Migration[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (e) {
      throw new StoreError(`cannot connect to ${this.#label}: ${(e as Error).message}`);
    }
    try {
      this.appliedMigrations = await migratePostgres(client, migrations, this.#label);
      await this.#checkKey(client);
    } catch (e) {
      throw e instanceof StoreError ? e : new StoreError(`database ${this.#label}: ${(e as Error).message}`);
    } finally {
      client.release();
    }
  }

  async #checkKey(client: pg.PoolClient): Promise<void> {
    const has = await client.query("SELECT to_regclass('instance') IS NOT NULL AS ok");
    if (!has.rows[0]?.['ok']) return;
    const check = keyCheck(this.#keys.current);
    // Two replicas starting on a fresh database: the first row wins, both then compare with it.
    await client.query(
      'INSERT INTO instance (id, created_at, key_check) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING',
      [Date.now(), check],
    );
    const row = (await client.query('SELECT key_check FROM instance WHERE id = 1')).rows[0] as {
      key_check: string;
    };
    if (row.key_check === check) return;
    if (!this.#keys.hasCheck(row.key_check)) {
      throw new StoreError(
        `database ${this.#label} was created with another BROKER_SECRET_KEY; set the original key back, ` +
          'or, to rotate keys, keep it in BROKER_PREVIOUS_SECRET_KEYS beside the new one',
      );
    }
    this.keyRotationPending = true;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  async health(): Promise<void> {
    if (this.#closed) throw new StoreError('database is closed');
    await this.#ready;
    try {
      await this.#pool.query('SELECT COUNT(*) FROM schema_version');
    } catch (e) {
      throw new StoreError(`database does not answer: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopWatching?.();
    await this.#ready.then(
      () => this.flushUsage().catch(() => 0),
      () => 0,
    );
    this.#closed = true;
    await Promise.all([this.#pool.end(), this.#lockPool.end()]);
  }

  async #q(sql: string, params: unknown[] = []): Promise<Row[]> {
    await this.#ready;
    return (await this.#pool.query(sql, params)).rows as Row[];
  }

  async #count(sql: string, params: unknown[] = []): Promise<number> {
    await this.#ready;
    return (await this.#pool.query(sql, params)).rowCount ?? 0;
  }

  /**
   * One transaction on one connection; events are emitted only after COMMIT. A serialization
   * failure or deadlock (two replicas on the same rows) runs the work again from the start.
   */
  async #tx<T>(work: (q: Query, emit: Emit) => Promise<T>): Promise<T> {
    await this.#ready;
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      const after: (() => void)[] = [];
      const q: Query = async (sql, params = []) => (await client.query(sql, params)).rows as Row[];
      try {
        await client.query('BEGIN');
        const result = await work(q, (fn) => after.push(fn));
        await client.query('COMMIT');
        client.release();
        for (const fn of after) fn();
        return result;
      } catch (e) {
        const rolledBack = await client.query('ROLLBACK').then(
          () => true,
          () => false,
        );
        client.release(rolledBack ? undefined : (e as Error));
        const code = (e as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) continue;
        throw e;
      }
    }
  }

  async insertClient(c: ClientRecord, budget?: RegistrationBudget): Promise<boolean> {
    return this.#tx(async (q) => {
      if (budget && !(await this.#roomForClient(q, budget))) return false;
      await q(
        `INSERT INTO oauth_client (client_id, secret_hash, auth_method, name, redirect_uris, metadata, created_at,
           used_at, registration_token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          c.clientId,
          c.secretHash,
          c.authMethod,
          c.name,
          JSON.stringify(c.redirectUris),
          packMetadata(c.metadata),
          c.createdAt,
          c.usedAt,
          c.registrationTokenHash ?? null,
        ],
      );
      return true;
    });
  }

  /** Inside a transaction: true when the budget has room, after deleting what may make it. */
  async #roomForClient(q: Query, b: RegistrationBudget): Promise<boolean> {
    // Until commit: replicas registering at once would each count one free place and all take it.
    await q('SELECT pg_advisory_xact_lock($1)', [REGISTRATION_LOCK]);
    const unused = async () =>
      Number((await q('SELECT COUNT(*)::int AS n FROM oauth_client WHERE used_at IS NULL'))[0]?.['n'] ?? 0);
    const over = (await unused()) - b.maxUnused + 1;
    if (over <= 0) return true;
    // FOR UPDATE: a registration whose first grant another replica is committing is read again
    // once that commits, and then spared.
    const victims = (
      await q(
        `SELECT client_id FROM oauth_client WHERE used_at IS NULL AND created_at < $1
         ORDER BY created_at LIMIT $2 FOR UPDATE`,
        [b.evictCreatedBefore, over],
      )
    ).map((v) => v['client_id'] as string);
    if (victims.length > 0) {
      await q('DELETE FROM auth_request WHERE client_id = ANY($1)', [victims]);
      await q('DELETE FROM oauth_client WHERE client_id = ANY($1)', [victims]);
    }
    return (await unused()) < b.maxUnused;
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const [r] = await this.#q('SELECT * FROM oauth_client WHERE client_id = $1', [clientId]);
    return r ? clientFromRow(r) : undefined;
  }

  async updateClient(clientId: string, u: ClientUpdate): Promise<boolean> {
    const n = await this.#count(
      'UPDATE oauth_client SET name = $1, redirect_uris = $2, metadata = $3 WHERE client_id = $4',
      [u.name, JSON.stringify(u.redirectUris), packMetadata(u.metadata), clientId],
    );
    return n === 1;
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return this.#tx(async (q, emit) => {
      const gone = await q('DELETE FROM oauth_client WHERE client_id = $1 RETURNING client_id', [clientId]);
      for (const g of await q('SELECT grant_id FROM oauth_grant WHERE client_id = $1', [clientId]))
        await this.#deleteGrant(q, g['grant_id'] as string, emit);
      await q('DELETE FROM auth_request WHERE client_id = $1', [clientId]);
      return gone.length === 1;
    });
  }

  async pendingAuthRequests(now: number): Promise<number> {
    const [r] = await this.#q('SELECT COUNT(*)::int AS n FROM auth_request WHERE expires_at > $1', [now]);
    return Number(r?.['n'] ?? 0);
  }

  async insertAuthRequest(r: AuthRequestRecord, now: number, limits: PendingLimits): Promise<boolean> {
    return this.#tx(async (q) => {
      // One lock for the three bounds, until commit: replicas counting at once would overshoot them.
      await q('SELECT pg_advisory_xact_lock($1)', [PENDING_LOCK]);
      // Narrowest first: a source that floods sheds its own oldest requests before anyone else's.
      const bounds: [string, unknown[], number][] = [
        ['source = $2', [r.source], limits.perSource],
        ['client_id = $2', [r.clientId], limits.perClient],
        ['TRUE', [], limits.total],
      ];
      for (const [where, args, max] of bounds) {
        const params = [now, ...args];
        const live = async () =>
          Number(
            (
              await q(
                `SELECT COUNT(*)::int AS n FROM auth_request WHERE ${where} AND expires_at > $1`,
                params,
              )
            )[0]?.['n'] ?? 0,
          );
        const over = (await live()) - max + 1;
        if (over <= 0) continue;
        // FOR UPDATE: a request another replica approves meanwhile is read again, and kept.
        await q(
          `DELETE FROM auth_request WHERE id_hash IN (SELECT id_hash FROM auth_request
             WHERE ${where} AND expires_at > $1 AND upstream_state_hash IS NULL
             ORDER BY expires_at LIMIT $${params.length + 1} FOR UPDATE)`,
          [...params, over],
        );
        if ((await live()) >= max) return false;
      }
      await q(
        `INSERT INTO auth_request (id_hash, browser_hash, csrf_hash, client_id, client_name, source,
           redirect_uri, client_state, code_challenge, resource, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          r.idHash,
          r.browserHash,
          r.csrfHash,
          r.clientId,
          r.clientName,
          r.source,
          r.redirectUri,
          r.clientState,
          r.codeChallenge,
          r.resource,
          r.scopes.join(' '),
          r.expiresAt,
        ],
      );
      return true;
    });
  }

  async getAuthRequest(idHash: string): Promise<AuthRequestRecord | undefined> {
    const [r] = await this.#q('SELECT * FROM auth_request WHERE id_hash = $1', [idHash]);
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
    // One conditional UPDATE: a second approval waits for the first's row lock, then sees it set.
    const n = await this.#count(
      `UPDATE auth_request SET upstream_state_hash = $1, upstream_verifier = $2, expires_at = $3, mode = $6
       WHERE id_hash = $4 AND upstream_state_hash IS NULL AND expires_at > $5`,
      [upstreamStateHash, sealed, expiresAt, idHash, now, mode],
    );
    return n === 1;
  }

  async deleteAuthRequest(idHash: string): Promise<void> {
    await this.#q('DELETE FROM auth_request WHERE id_hash = $1', [idHash]);
  }

  async takeAuthRequestByState(stateHash: string, now: number): Promise<AuthRequestRecord | undefined> {
    // DELETE … RETURNING is the single-use step: of two callbacks with one state, one gets the row.
    const [r] = await this.#q('DELETE FROM auth_request WHERE upstream_state_hash = $1 RETURNING *', [
      stateHash,
    ]);
    if (!r) return undefined;
    return (r['expires_at'] as number) > now ? authRequestFromRow(r, this.#keys) : undefined;
  }

  async putCredential(c: ForgejoCredential): Promise<void> {
    const ctx = `forgejo_credential:${c.userId}`;
    await this.#q(
      `INSERT INTO forgejo_credential (user_id, login, access_token, refresh_token, expires_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (user_id) DO UPDATE SET login = excluded.login, access_token = excluded.access_token,
         refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
      [
        c.userId,
        c.login,
        this.#keys.seal(c.accessToken, ctx),
        this.#keys.seal(c.refreshToken, ctx),
        c.expiresAt,
        c.updatedAt,
      ],
    );
    this.events.emit('tokenChanged', c.userId);
  }

  async getCredential(userId: number): Promise<ForgejoCredential | undefined> {
    const [r] = await this.#q('SELECT * FROM forgejo_credential WHERE user_id = $1', [userId]);
    return r ? credentialFromRow(userId, r, this.#keys) : undefined;
  }

  async withCredentialLock<T>(userId: number, work: () => Promise<T>): Promise<T> {
    await this.#ready;
    const client = await this.#lockPool.connect();
    let broken: Error | undefined;
    try {
      // A transaction-scoped lock: released at COMMIT, or by the server when this process dies.
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `forgejo_credential:${userId}`,
      ]);
      return await work();
    } finally {
      await client.query('COMMIT').catch((e: Error) => {
        broken = e;
      });
      client.release(broken);
    }
  }

  async createGrant(g: GrantRecord, c: CodeRecord): Promise<void> {
    await this.#tx(async (q) => {
      await q(
        `INSERT INTO oauth_grant (grant_id, user_id, login, client_id, scopes, resource, created_at,
           mode, client_name, redirect_uri) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
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
        ],
      );
      await q(
        `INSERT INTO auth_code (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [c.codeHash, c.grantId, c.clientId, c.redirectUri, c.codeChallenge, c.resource, c.expiresAt],
      );
      await q('UPDATE oauth_client SET used_at = $1 WHERE client_id = $2 AND used_at IS NULL', [
        g.createdAt,
        g.clientId,
      ]);
    });
  }

  async getCode(codeHash: string): Promise<CodeRecord | undefined> {
    const [r] = await this.#q('SELECT * FROM auth_code WHERE code_hash = $1', [codeHash]);
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

  async #insertPair(q: Query, grantId: string, t: TokenPair): Promise<void> {
    await q(
      `INSERT INTO oauth_token (token_hash, kind, grant_id, expires_at)
       VALUES ($1, 'access', $3, $2), ($4, 'refresh', $3, $5)`,
      [t.accessHash, t.accessExpiresAt, grantId, t.refreshHash, t.refreshExpiresAt],
    );
  }

  /** Deletes a grant (its codes and tokens cascade) inside a transaction, announcing it after commit. */
  async #deleteGrant(q: Query, grantId: string, emit: Emit): Promise<void> {
    const [r] = await q('DELETE FROM oauth_grant WHERE grant_id = $1 RETURNING user_id', [grantId]);
    if (!r) return;
    const revoked: RevokedGrant = { grantId, userId: r['user_id'] as number };
    await this.#logChange(q, 'grant', grantId, revoked.userId, null);
    emit(() => this.events.emit('grantRevoked', revoked));
  }

  async redeemCode(codeHash: string, now: number, tokens: TokenPair): Promise<'ok' | 'reused'> {
    return this.#tx(async (q, emit) => {
      // FOR UPDATE: a second redemption on another replica waits here, then reads used_at set.
      const [r] = await q('SELECT grant_id, used_at FROM auth_code WHERE code_hash = $1 FOR UPDATE', [
        codeHash,
      ]);
      if (!r) return 'reused';
      const grantId = r['grant_id'] as string;
      if (r['used_at'] !== null) {
        await this.#deleteGrant(q, grantId, emit);
        return 'reused';
      }
      await q('UPDATE auth_code SET used_at = $1 WHERE code_hash = $2', [now, codeHash]);
      await this.#insertPair(q, grantId, tokens);
      return 'ok';
    });
  }

  async listGrants(userId: number): Promise<GrantRecord[]> {
    const rows = await this.#q(
      'SELECT * FROM oauth_grant WHERE user_id = $1 ORDER BY created_at DESC, grant_id',
      [userId],
    );
    return rows.map((r) => withPendingUse(grantFromRow(r), this.#used));
  }

  async insertAccountLogin(
    stateHash: string,
    browserHash: string,
    verifier: string,
    expiresAt: number,
  ): Promise<void> {
    await this.#q(
      'INSERT INTO account_login (state_hash, browser_hash, verifier, expires_at) VALUES ($1, $2, $3, $4)',
      [stateHash, browserHash, this.#keys.seal(verifier, `account_login:${stateHash}`), expiresAt],
    );
  }

  async takeAccountLogin(
    stateHash: string,
    now: number,
  ): Promise<{ browserHash: string; verifier: string } | undefined> {
    // DELETE … RETURNING: single use across replicas.
    const [r] = await this.#q('DELETE FROM account_login WHERE state_hash = $1 RETURNING *', [stateHash]);
    if (!r || (r['expires_at'] as number) <= now) return undefined;
    return {
      browserHash: r['browser_hash'] as string,
      verifier: this.#keys.open(r['verifier'] as string, `account_login:${stateHash}`),
    };
  }

  async insertAccountSession(a: AccountSession): Promise<void> {
    await this.#q(
      'INSERT INTO account_session (id_hash, user_id, login, csrf_hash, expires_at) VALUES ($1, $2, $3, $4, $5)',
      [a.idHash, a.userId, a.login, a.csrfHash, a.expiresAt],
    );
  }

  async getAccountSession(idHash: string, now: number): Promise<AccountSession | undefined> {
    const [r] = await this.#q('SELECT * FROM account_session WHERE id_hash = $1 AND expires_at > $2', [
      idHash,
      now,
    ]);
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
    await this.#q('DELETE FROM account_session WHERE id_hash = $1', [idHash]);
  }

  async rotateRefreshToken(
    refreshHash: string,
    clientId: string,
    now: number,
    graceMs: number,
    next: TokenPair,
  ): Promise<RefreshOutcome> {
    return this.#tx(async (q, emit): Promise<RefreshOutcome> => {
      // FOR UPDATE OF t: two rotations of one refresh token (two replicas) run one after the other.
      const [r] = await q(
        `SELECT t.expires_at AS token_expires_at, t.rotated_at, t.grace_used, g.* FROM oauth_token t
         JOIN oauth_grant g ON g.grant_id = t.grant_id WHERE t.token_hash = $1 AND t.kind = 'refresh'
         FOR UPDATE OF t`,
        [refreshHash],
      );
      if (!r) return { ok: false, reason: 'unknown' };
      const grant = grantFromRow(r);
      if (grant.clientId !== clientId) return { ok: false, reason: 'wrong_client' };
      if ((r['token_expires_at'] as number) <= now) return { ok: false, reason: 'expired' };
      const rotatedAt = r['rotated_at'] as number | null;
      if (rotatedAt === null) {
        await q('UPDATE oauth_token SET rotated_at = $1 WHERE token_hash = $2', [now, refreshHash]);
        await this.#insertPair(q, grant.grantId, next);
        return { ok: true, grant, graceReuse: false, accessExpiresAt: next.accessExpiresAt };
      }
      if (now - rotatedAt > graceMs || r['grace_used'] !== 0) {
        await this.#deleteGrant(q, grant.grantId, emit);
        return { ok: false, reason: 'reused' };
      }
      await q('UPDATE oauth_token SET grace_used = 1 WHERE token_hash = $1', [refreshHash]);
      const successor = 'SELECT expires_at FROM oauth_token WHERE token_hash = $1 AND grant_id = $2';
      // The successor is never re-created: an access token revoked alone stays revoked.
      if ((await q(successor, [next.refreshHash, grant.grantId])).length === 0)
        await this.#insertPair(q, grant.grantId, next);
      const [access] = await q(successor, [next.accessHash, grant.grantId]);
      return {
        ok: true,
        grant,
        graceReuse: true,
        accessExpiresAt: (access?.['expires_at'] as number) ?? now,
      };
    });
  }

  async findAccessToken(accessHash: string): Promise<{ grant: GrantRecord; expiresAt: number } | undefined> {
    const [r] = await this.#q(
      `SELECT t.expires_at AS token_expires_at, g.* FROM oauth_token t
       JOIN oauth_grant g ON g.grant_id = t.grant_id WHERE t.token_hash = $1 AND t.kind = 'access'`,
      [accessHash],
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

  async flushUsage(): Promise<number> {
    if (this.#used.size === 0 || this.#closed) return 0;
    const used = [...this.#used];
    this.#used.clear();
    // One statement for the lot; GREATEST keeps the newest when replicas flush out of order.
    await this.#q(
      `UPDATE oauth_grant g SET last_used_at = GREATEST(COALESCE(g.last_used_at, 0), u.at)
       FROM unnest($1::text[], $2::bigint[]) AS u(grant_id, at) WHERE g.grant_id = u.grant_id`,
      [used.map(([id]) => id), used.map(([, at]) => at)],
    );
    return used.length;
  }

  async revokeToken(tokenHash: string, clientId: string): Promise<'access' | 'refresh' | undefined> {
    return this.#tx(async (q, emit) => {
      const [r] = await q(
        `SELECT t.kind, t.grant_id, g.user_id FROM oauth_token t JOIN oauth_grant g ON g.grant_id = t.grant_id
         WHERE t.token_hash = $1 AND g.client_id = $2`,
        [tokenHash, clientId],
      );
      if (!r) return undefined;
      const kind = r['kind'] as 'access' | 'refresh';
      if (kind === 'refresh') await this.#deleteGrant(q, r['grant_id'] as string, emit);
      else {
        await q('DELETE FROM oauth_token WHERE token_hash = $1', [tokenHash]);
        await q('DELETE FROM mcp_session WHERE token_hash = $1', [tokenHash]);
        const revoked = { tokenHash, grantId: r['grant_id'] as string, userId: r['user_id'] as number };
        await this.#logChange(q, 'access_token', revoked.grantId, revoked.userId, tokenHash);
        emit(() => this.events.emit('accessTokenRevoked', revoked));
      }
      return kind;
    });
  }

  async revokeGrant(grantId: string): Promise<void> {
    await this.#tx((q, emit) => this.#deleteGrant(q, grantId, emit));
  }

  async revokeUser(userId: number): Promise<void> {
    await this.#tx(async (q, emit) => {
      for (const g of await q('SELECT grant_id FROM oauth_grant WHERE user_id = $1', [userId]))
        await this.#deleteGrant(q, g['grant_id'] as string, emit);
      await q('DELETE FROM forgejo_credential WHERE user_id = $1', [userId]);
      await this.#logChange(q, 'user', null, userId, null);
      emit(() => this.events.emit('userRevoked', userId));
    });
  }

  /**
   * Revocations are written to the change log in the same transaction, and a NOTIFY (delivered at
   * commit, not before) wakes the other replicas.
   */
  async #logChange(q: Query, kind: string, grantId: string | null, userId: number, tokenHash: string | null) {
    await q('SELECT pg_advisory_xact_lock($1)', [CHANGE_LOG_LOCK]);
    await q(
      'INSERT INTO change_log (origin, kind, grant_id, user_id, token_hash, at) VALUES ($1, $2, $3, $4, $5, $6)',
      [this.origin, kind, grantId, userId, tokenHash, Date.now()],
    );
    await q('SELECT pg_notify($1, $2)', [CHANNEL, this.origin]);
  }

  async purgeExpired(now: number, unusedClientsBefore: number): Promise<number> {
    return this.#tx(async (q) => {
      let n = 0;
      const run = async (sql: string, params: unknown[]) => {
        n += (await q(`WITH d AS (${sql} RETURNING 1) SELECT COUNT(*)::int AS n FROM d`, params))[0]?.[
          'n'
        ] as number;
      };
      await run('DELETE FROM auth_request WHERE expires_at <= $1', [now]);
      await run('DELETE FROM account_login WHERE expires_at <= $1', [now]);
      await run('DELETE FROM account_session WHERE expires_at <= $1', [now]);
      await run('DELETE FROM change_log WHERE at <= $1', [now - CHANGE_LOG_KEEP_MS]);
      await run('DELETE FROM auth_code WHERE expires_at <= $1 AND used_at IS NULL', [now]);
      await run('DELETE FROM oauth_token WHERE expires_at <= $1', [now]);
      await run(
        `DELETE FROM oauth_grant WHERE
           NOT EXISTS (SELECT 1 FROM oauth_token t WHERE t.grant_id = oauth_grant.grant_id)
           AND NOT EXISTS (SELECT 1 FROM auth_code c WHERE c.grant_id = oauth_grant.grant_id AND c.used_at IS NULL)`,
        [],
      );
      await run('DELETE FROM oauth_client WHERE used_at IS NULL AND created_at <= $1', [unusedClientsBefore]);
      return n;
    });
  }

  async resealBatch(limit: number): Promise<number> {
    const prefix = `v2.${this.#keys.currentId}.%`;
    return this.#tx(async (q) => {
      let n = 0;
      const creds = await q(
        `SELECT user_id, access_token, refresh_token FROM forgejo_credential
         WHERE access_token NOT LIKE $1 OR refresh_token NOT LIKE $1 LIMIT $2 FOR UPDATE`,
        [prefix, limit],
      );
      for (const r of creds) {
        const ctx = `forgejo_credential:${r['user_id']}`;
        await q('UPDATE forgejo_credential SET access_token = $1, refresh_token = $2 WHERE user_id = $3', [
          this.#keys.seal(this.#keys.open(r['access_token'] as string, ctx), ctx),
          this.#keys.seal(this.#keys.open(r['refresh_token'] as string, ctx), ctx),
          r['user_id'],
        ]);
        n++;
      }
      const requests = await q(
        `SELECT id_hash, upstream_verifier FROM auth_request
         WHERE upstream_verifier IS NOT NULL AND upstream_verifier NOT LIKE $1 LIMIT $2 FOR UPDATE`,
        [prefix, Math.max(0, limit - n)],
      );
      for (const r of requests) {
        const ctx = `auth_request:${r['id_hash']}`;
        await q('UPDATE auth_request SET upstream_verifier = $1 WHERE id_hash = $2', [
          this.#keys.seal(this.#keys.open(r['upstream_verifier'] as string, ctx), ctx),
          r['id_hash'],
        ]);
        n++;
      }
      if (n === 0 && this.keyRotationPending) {
        await q('UPDATE instance SET key_check = $1 WHERE id = 1', [keyCheck(this.#keys.current)]);
        this.keyRotationPending = false;
      }
      return n;
    });
  }

  async sealedKeyCounts(): Promise<{ current: string; counts: Record<string, number> }> {
    const rows = await this.#q(
      `SELECT access_token AS v FROM forgejo_credential UNION ALL SELECT refresh_token FROM forgejo_credential
       UNION ALL SELECT upstream_verifier FROM auth_request WHERE upstream_verifier IS NOT NULL`,
    );
    const counts: Record<string, number> = {};
    for (const r of rows) {
      const kid = sealedKeyId(r['v'] as string);
      counts[kid] = (counts[kid] ?? 0) + 1;
    }
    return { current: this.#keys.currentId, counts };
  }

  async insertMcpSession(m: McpSessionRecord, maxPerUser: number): Promise<boolean> {
    return this.#tx(async (q, emit) => {
      // KEY SHARE: a revocation deleting the grant waits for this commit, or this sees it gone.
      if ((await q('SELECT 1 FROM oauth_grant WHERE grant_id = $1 FOR KEY SHARE', [m.grantId])).length === 0)
        return false;
      // Until commit: two replicas opening sessions of one user at once would both see room.
      await q('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`mcp_session:${m.userId}`]);
      const [c] = await q('SELECT COUNT(*)::int AS n FROM mcp_session WHERE user_id = $1', [m.userId]);
      const over = Number(c?.['n'] ?? 0) - maxPerUser + 1;
      if (over > 0) {
        const gone = await q(
          `DELETE FROM mcp_session WHERE id_hash IN (SELECT id_hash FROM mcp_session WHERE user_id = $1
             ORDER BY last_seen_at, created_at LIMIT $2) RETURNING id_hash, grant_id`,
          [m.userId, over],
        );
        for (const g of gone)
          await this.#sessionEnded(q, emit, g['id_hash'] as string, g['grant_id'] as string, m.userId);
      }
      await q(
        `INSERT INTO mcp_session (${MCP_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        mcpSessionValues(m),
      );
      return true;
    });
  }

  async #sessionEnded(q: Query, emit: Emit, idHash: string, grantId: string, userId: number): Promise<void> {
    await this.#logChange(q, 'session', grantId, userId, idHash);
    emit(() => this.events.emit('sessionEnded', { idHash, grantId, userId }));
  }

  async getMcpSession(idHash: string): Promise<McpSessionRecord | undefined> {
    const [r] = await this.#q('SELECT * FROM mcp_session WHERE id_hash = $1', [idHash]);
    return r ? mcpSessionFromRow(r) : undefined;
  }

  async touchMcpSessions(
    seen: { idHash: string; at: number; tokenHash: string | null }[],
  ): Promise<string[]> {
    if (seen.length === 0) return [];
    // One statement for the lot; the newest sighting wins when replicas report out of order.
    const rows = await this.#q(
      `UPDATE mcp_session m SET
         token_hash = CASE WHEN u.at >= m.last_seen_at THEN COALESCE(u.token_hash, m.token_hash) ELSE m.token_hash END,
         last_seen_at = GREATEST(m.last_seen_at, u.at)
       FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id_hash, at, token_hash)
       WHERE m.id_hash = u.id_hash RETURNING m.id_hash`,
      [seen.map((x) => x.idHash), seen.map((x) => x.at), seen.map((x) => x.tokenHash)],
    );
    const found = new Set(rows.map((r) => r['id_hash'] as string));
    return seen.map((x) => x.idHash).filter((h) => !found.has(h));
  }

  async deleteMcpSession(idHash: string): Promise<boolean> {
    return this.#tx(async (q, emit) => {
      const [r] = await q('DELETE FROM mcp_session WHERE id_hash = $1 RETURNING grant_id, user_id', [idHash]);
      if (!r) return false;
      await this.#sessionEnded(q, emit, idHash, r['grant_id'] as string, r['user_id'] as number);
      return true;
    });
  }

  async pruneMcpSessions(seenBefore: number): Promise<number> {
    return this.#count('DELETE FROM mcp_session WHERE last_seen_at < $1', [seenBefore]);
  }

  async recordChild(c: LiveChildRecord): Promise<void> {
    await this.#q(
      `INSERT INTO live_child (host, pid, broker_pid, login, started_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (host, pid) DO UPDATE SET broker_pid = excluded.broker_pid, login = excluded.login,
         started_at = excluded.started_at`,
      [this.#host, c.pid, c.brokerPid, c.login, c.startedAt],
    );
  }

  async forgetChild(pid: number): Promise<void> {
    if (this.#closed) return;
    await this.#q('DELETE FROM live_child WHERE host = $1 AND pid = $2', [this.#host, pid]);
  }

  async forgetChildrenOf(brokerPid: number): Promise<void> {
    await this.#q('DELETE FROM live_child WHERE host = $1 AND broker_pid = $2', [this.#host, brokerPid]);
  }

  async childBrokerPids(): Promise<number[]> {
    const rows = await this.#q(
      'SELECT DISTINCT broker_pid FROM live_child WHERE host = $1 ORDER BY broker_pid',
      [this.#host],
    );
    return rows.map((r) => Number(r['broker_pid']));
  }

  #stopWatching: (() => void) | undefined;

  /**
   * LISTEN on a connection of its own (outside the pool, so it stays), and a read of the change
   * log past the last seen seq on every notification and every `intervalMs`: a notification lost
   * while the connection was down is caught by the next periodic read. The listening connection
   * is made again after an error.
   */
  watchChanges(intervalMs: number): () => void {
    let seq: number | undefined;
    let stopped = false;
    let reading = false;
    let again = false;
    let listener: pg.Client | undefined;
    let reconnect: NodeJS.Timeout | undefined;
    const catchUp = async (): Promise<void> => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          if (stopped || this.#closed) return;
          if (seq === undefined) {
            const [r] = await this.#q('SELECT COALESCE(MAX(seq), 0) AS s FROM change_log');
            seq = Number(r?.['s'] ?? 0);
            continue;
          }
          const rows = await this.#q('SELECT * FROM change_log WHERE seq > $1 ORDER BY seq', [seq]);
          for (const r of rows) {
            seq = r['seq'] as number;
            if (r['origin'] === this.origin || stopped) continue;
            const userId = r['user_id'] as number;
            const grantId = r['grant_id'] as string;
            if (r['kind'] === 'grant') this.events.emit('grantRevoked', { grantId, userId });
            else if (r['kind'] === 'user') this.events.emit('userRevoked', userId);
            else if (r['kind'] === 'session')
              this.events.emit('sessionEnded', { idHash: r['token_hash'] as string, grantId, userId });
            else
              this.events.emit('accessTokenRevoked', {
                tokenHash: r['token_hash'] as string,
                grantId,
                userId,
              });
          }
        } while (again);
      } catch {
        // The database is away for a moment: the next tick reads again from the same seq.
      } finally {
        reading = false;
      }
    };
    const listen = async (): Promise<void> => {
      if (stopped) return;
      const client = new pg.Client({ connectionString: this.#url, types });
      listener = client;
      const retry = () => {
        client.removeAllListeners();
        client.on('error', () => {});
        void client.end().catch(() => {});
        if (!stopped) reconnect = setTimeout(() => void listen(), Math.max(intervalMs, 1000));
      };
      client.on('error', retry);
      client.on('notification', (m) => {
        if (m.payload !== this.origin) void catchUp();
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        if (stopped) await client.end();
        else void catchUp();
      } catch {
        retry();
      }
    };
    void this.#ready.then(
      () => {
        void catchUp();
        void listen();
      },
      () => {},
    );
    const timer = setInterval(() => void catchUp(), intervalMs);
    timer.unref();
    const stop = () => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(reconnect);
      if (listener) {
        listener.removeAllListeners();
        listener.on('error', () => {});
        void listener.end().catch(() => {});
      }
    };
    this.#stopWatching = stop;
    return stop;
  }
}
