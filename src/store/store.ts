// The narrow interface every part uses; SQLite (one process) and PostgreSQL (several replicas)
// implement it.
// Methods are async although SQLite answers synchronously, so a networked backend needs no
// change in any caller.
import type { EventEmitter } from 'node:events';

/** What a connection may do, chosen on the consent page: read tools only, or all the operator allows. */
export type GrantMode = 'read' | 'write';

export type AuthMethod = 'client_secret_post' | 'client_secret_basic' | 'none';

export type ClientRecord = {
  clientId: string;
  /** SHA-256 of the secret; null for public clients. */
  secretHash: string | null;
  authMethod: AuthMethod;
  name: string;
  redirectUris: string[];
  /** The registration response (without the secret), returned again as-is. */
  metadata: Record<string, unknown>;
  createdAt: number;
  usedAt: number | null;
  /** SHA-256 of the RFC 7592 registration access token; absent for metadata-document clients. */
  registrationTokenHash?: string | null;
};

/** What an RFC 7592 update replaces; the client id, secret and auth method stay. */
export type ClientUpdate = Pick<ClientRecord, 'name' | 'redirectUris' | 'metadata'>;

/** A browser's authorization in progress; `upstream*` are set once the user approved. */
export type AuthRequestRecord = {
  idHash: string;
  browserHash: string;
  csrfHash: string;
  clientId: string;
  clientName: string;
  /** Who asked (an IPv4 address or an IPv6 /64): the bound per source counts these. */
  source: string;
  redirectUri: string;
  clientState: string | null;
  codeChallenge: string;
  resource: string;
  scopes: string[];
  upstreamStateHash: string | null;
  /** Plaintext here; sealed at rest. */
  upstreamVerifier: string | null;
  /** Set by the consent POST. */
  mode?: GrantMode | null;
  expiresAt: number;
};

/** Bounds on pending authorizations: all together, per source and per client. */
export type PendingLimits = { total: number; perSource: number; perClient: number };

/** The bound on registrations that have not completed a sign-in yet. */
export type RegistrationBudget = {
  maxUnused: number;
  /** Unused registrations created before this may be deleted to make room (older than a sign-in). */
  evictCreatedBefore: number;
};

/** The one Forgejo credential of a Forgejo user (plaintext here; sealed at rest). */
export type ForgejoCredential = {
  userId: number;
  login: string;
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  updatedAt: number;
};

export type GrantRecord = {
  grantId: string;
  userId: number;
  login: string;
  clientId: string;
  scopes: string[];
  resource: string;
  createdAt: number;
  /** Absent on creation means write (what grants were before modes existed). */
  mode?: GrantMode;
  /** As the consent page named it, and where it sent the user back: shown on the connected-apps page. */
  clientName?: string;
  redirectUri?: string;
  lastUsedAt?: number | null;
};

/** The connected-apps page's short session, after a Forgejo sign-in of its own. */
export type AccountSession = {
  idHash: string;
  userId: number;
  login: string;
  csrfHash: string;
  expiresAt: number;
};

export type CodeRecord = {
  codeHash: string;
  grantId: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  resource: string;
  expiresAt: number;
  usedAt: number | null;
};

/** Hashes and expiry times of a new access + refresh token pair. */
export type TokenPair = {
  accessHash: string;
  accessExpiresAt: number;
  refreshHash: string;
  refreshExpiresAt: number;
};

export type RevokedGrant = { grantId: string; userId: number };

/**
 * A 2025 MCP session (`Mcp-Session-Id`) as every replica sees it: the id only as its SHA-256 hash
 * (it is as good as a bearer for its grant), what the client's initialize said, and when it was
 * last seen (written at most about once a minute, so a call does not wait for a write).
 */
export type McpSessionRecord = {
  idHash: string;
  grantId: string;
  userId: number;
  login: string;
  /** Hash of the access token the session was last used with: its revocation ends the session. */
  tokenHash: string | null;
  protocolVersion: string;
  /** JSON text of the client's clientInfo and capabilities, as bounded by the gateway. */
  clientInfo: string;
  clientCapabilities: string;
  createdAt: number;
  lastSeenAt: number;
};

/** A session ended on purpose (DELETE, the per-user cap): the other replicas drop their copy. */
export type EndedSession = { idHash: string; grantId: string; userId: number };

/** The 2025 sessions every replica shares (the gateway's registry keeps a cache in front of it). */
export interface McpSessionStore {
  /**
   * Stores a new session. With `maxPerUser` sessions of the user already stored, the least
   * recently seen ones are deleted to make room (each announced as `sessionEnded`, on every
   * replica). False (nothing stored) when the grant is gone (revoked meanwhile).
   */
  insertMcpSession(session: McpSessionRecord, maxPerUser: number): Promise<boolean>;
  getMcpSession(idHash: string): Promise<McpSessionRecord | undefined>;
  /**
   * Records that sessions were seen (and with which access token); the newest time wins.
   * Returns the hashes of those that are gone from the store (ended elsewhere).
   */
  touchMcpSessions(seen: { idHash: string; at: number; tokenHash: string | null }[]): Promise<string[]>;
  /** Deletes a session and announces it as `sessionEnded` on every replica; false if already gone. */
  deleteMcpSession(idHash: string): Promise<boolean>;
  /** Deletes sessions last seen before `seenBefore` (idle expiry); returns how many. */
  pruneMcpSessions(seenBefore: number): Promise<number>;
}

/** Announcements other parts act on (the gateway closes sessions, the pool replaces children). */
export type StoreEventMap = {
  grantRevoked: [RevokedGrant];
  /** One access token revoked (RFC 7009): sessions it authenticated must close. */
  accessTokenRevoked: [{ tokenHash: string; grantId: string; userId: number }];
  userRevoked: [number];
  tokenChanged: [number];
  sessionEnded: [EndedSession];
};

export type RefreshOutcome =
  /** `accessExpiresAt`: of the successor's access token (a grace retry gets the existing one). */
  | { ok: true; grant: GrantRecord; graceReuse: boolean; accessExpiresAt: number }
  | { ok: false; reason: 'unknown' | 'expired' | 'wrong_client' | 'reused' };

export interface Store {
  /** Resolves when the store can answer a query; rejects with the reason otherwise. */
  health(): Promise<void>;
  close(): Promise<void>;
}

/** What the authorization server, the credential manager and the bearer check need. */
export interface OAuthStore extends Store {
  /** Emitted after the change is committed. */
  readonly events: EventEmitter<StoreEventMap>;

  /**
   * Stores a client. With a budget, a full budget first deletes the oldest unused registrations old
   * enough to go; false (nothing stored) when none is.
   */
  insertClient(client: ClientRecord, budget?: RegistrationBudget): Promise<boolean>;
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Replaces a registered client's metadata; false if it is gone. */
  updateClient(clientId: string, update: ClientUpdate): Promise<boolean>;
  /**
   * Deletes a registered client with its grants (each announced as `grantRevoked`, so sessions
   * close) and its sign-ins in progress; false if it was already gone.
   */
  deleteClient(clientId: string): Promise<boolean>;

  /**
   * Stores a pending authorization. Where its source, its client or all of them together are at
   * their bound, the oldest ones there that nobody consented to yet are dropped to make room; false
   * (nothing stored) only when every one there is already consented to (mid-login at Forgejo).
   */
  insertAuthRequest(request: AuthRequestRecord, now: number, limits: PendingLimits): Promise<boolean>;
  getAuthRequest(idHash: string): Promise<AuthRequestRecord | undefined>;
  /** Sets the upstream state once; false if the request is gone, expired or already approved. */
  approveAuthRequest(
    idHash: string,
    upstreamStateHash: string,
    upstreamVerifier: string,
    expiresAt: number,
    now: number,
    mode?: GrantMode,
  ): Promise<boolean>;
  deleteAuthRequest(idHash: string): Promise<void>;
  /** Finds the approved request by its upstream state and deletes it: the state is single-use. */
  takeAuthRequestByState(upstreamStateHash: string, now: number): Promise<AuthRequestRecord | undefined>;

  /** Replaces the user's credential (the newest one is the only live one at Forgejo). */
  putCredential(credential: ForgejoCredential): Promise<void>;
  getCredential(userId: number): Promise<ForgejoCredential | undefined>;
  /**
   * Runs `work` holding the user's credential lock in every process on the database, so two
   * replicas never spend the same single-use Forgejo refresh token (PostgreSQL: an advisory lock;
   * SQLite: one broker process, whose own single flight suffices). Re-read the credential inside.
   */
  withCredentialLock<T>(userId: number, work: () => Promise<T>): Promise<T>;

  /** Records a grant and its authorization code together, and marks the client as used. */
  createGrant(grant: GrantRecord, code: CodeRecord): Promise<void>;
  getCode(codeHash: string): Promise<CodeRecord | undefined>;
  /** Marks the code used and stores the tokens; a code used before revokes its grant instead. */
  redeemCode(codeHash: string, now: number, tokens: TokenPair): Promise<'ok' | 'reused'>;
  /**
   * Rotates a refresh token to `next`. Presented once more within `graceMs`, it answers the same
   * successor (`next` must be derived from the token, so it is the same pair) without storing
   * anything; any later reuse revokes the grant.
   */
  rotateRefreshToken(
    refreshHash: string,
    clientId: string,
    now: number,
    graceMs: number,
    next: TokenPair,
  ): Promise<RefreshOutcome>;
  /** The bearer check: one lookup by primary key. */
  findAccessToken(accessHash: string): Promise<{ grant: GrantRecord; expiresAt: number } | undefined>;
  /** A bearer check answered from memory used this grant (kept with the lookups' own, flushed later). */
  noteGrantUsed(grantId: string, at: number): void;
  /** RFC 7009: an access token dies alone, a refresh token takes its grant along. */
  revokeToken(tokenHash: string, clientId: string): Promise<'access' | 'refresh' | undefined>;
  revokeGrant(grantId: string): Promise<void>;
  /** Deletes all of a user's grants and the Forgejo credential. */
  revokeUser(userId: number): Promise<void>;
  /** Every grant of a user, newest first. */
  listGrants(userId: number): Promise<GrantRecord[]>;

  /** A connected-apps sign-in sent to Forgejo; taken (single use) when Forgejo sends the browser back. */
  insertAccountLogin(
    stateHash: string,
    browserHash: string,
    verifier: string,
    expiresAt: number,
  ): Promise<void>;
  takeAccountLogin(
    stateHash: string,
    now: number,
  ): Promise<{ browserHash: string; verifier: string } | undefined>;
  insertAccountSession(session: AccountSession): Promise<void>;
  getAccountSession(idHash: string, now: number): Promise<AccountSession | undefined>;
  deleteAccountSession(idHash: string): Promise<void>;

  /** Deletes expired rows and registrations never used since `unusedClientsBefore`. */
  purgeExpired(now: number, unusedClientsBefore: number): Promise<number>;
}

/** A child process a broker runs, as recorded for `admin children`. */
export type LiveChildRecord = { pid: number; brokerPid: number; login: string; startedAt: number };

/**
 * What the running broker needs of its store beyond the OAuth queries: readiness, the change feed
 * from other processes, usage and key upkeep, and the live-children table. Both backends offer it;
 * the broker knows no more of either.
 */
export interface BrokerStore extends OAuthStore, McpSessionStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Resolves once migrated and the key checked; rejects with why the store cannot be used. */
  ready(): Promise<void>;
  /** The migrations this start applied (known once ready). */
  readonly appliedMigrations: number[];
  /** True when values sealed under a previous key wait to be re-sealed (known once ready). */
  readonly keyRotationPending: boolean;
  pendingAuthRequests(now: number): Promise<number>;
  /**
   * Replays revocations other processes committed as this store's events, at the latest within
   * `intervalMs` (PostgreSQL: at once on a notification, the interval catches a missed one).
   * Returns the stop function.
   */
  watchChanges(intervalMs: number): () => void;
  /** Writes the remembered last-use times of grants; returns how many. */
  flushUsage(): Promise<number>;
  /** Re-seals up to `limit` values under the current key; returns how many. */
  resealBatch(limit: number): Promise<number>;
  /** How many sealed values each key sealed ('legacy': sealed before values named their key). */
  sealedKeyCounts(): Promise<{ current: string; counts: Record<string, number> }>;
  recordChild(child: LiveChildRecord): Promise<void>;
  forgetChild(pid: number): Promise<void>;
  /** Rows left by an earlier run of this broker process id on this host (a crash). */
  forgetChildrenOf(brokerPid: number): Promise<void>;
  /** The broker process ids on this host that have rows, so a broker can clear those of dead ones. */
  childBrokerPids(): Promise<number[]>;
}

export class StoreError extends Error {
  override name = 'StoreError';
}
