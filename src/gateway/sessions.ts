import { randomBytes } from 'node:crypto';
import { hashSecret } from '../store/secrets.ts';
import type { McpSessionRecord, McpSessionStore } from '../store/store.ts';
import type { SseStream } from './sse.ts';

/** A 2025-revision MCP session: a cheap record pointing at its user's child (design decision 1). */
export type Session = {
  id: string;
  /** SHA-256 of the id: the store's key, and what the change log names. */
  idHash: string;
  userId: number;
  login: string;
  grantId: string;
  protocolVersion: string;
  clientInfo: unknown;
  clientCapabilities: Record<string, unknown>;
  /** Hash of the access token the session was last used with (its revocation closes it). */
  tokenHash?: string;
  /** The standalone GET stream, if the client opened one (on this replica). */
  stream?: SseStream;
  /** Hash of the access token that opened `stream`: its revocation ends the stream. */
  streamTokenHash?: string;
  created: number;
  lastSeen: number;
  /** What the store holds: the last sighting and token written there. */
  storedSeen: number;
  storedTokenHash?: string;
};

export type NewSession = Omit<
  Session,
  'id' | 'idHash' | 'created' | 'lastSeen' | 'storedSeen' | 'storedTokenHash'
>;

/** Most characters of JSON a session keeps of the client's clientInfo and of its capabilities. */
export const MAX_CLIENT_INFO_CHARS = 2048;
export const MAX_CLIENT_CAPABILITIES_CHARS = 8192;

/** What is too long in an initialize's clientInfo or capabilities to be kept with the session (stored). */
export function oversized(clientInfo: unknown, capabilities: unknown): string | undefined {
  if (JSON.stringify(clientInfo ?? null).length > MAX_CLIENT_INFO_CHARS)
    return `clientInfo is longer than ${MAX_CLIENT_INFO_CHARS} characters of JSON`;
  if (JSON.stringify(capabilities ?? null).length > MAX_CLIENT_CAPABILITIES_CHARS)
    return `capabilities are longer than ${MAX_CLIENT_CAPABILITIES_CHARS} characters of JSON`;
  return undefined;
}

/**
 * A session's sighting is written to the store once it is this much newer than the stored one (at
 * the registry's next flush), so a call never waits for a write.
 */
export const SIGHTING_EVERY_MS = 60_000;
/** How far the stored sighting may lag the real one (the interval plus a flush period, doubled). */
export const SIGHTING_LAG_MS = 3 * SIGHTING_EVERY_MS;

/**
 * The sessions this process serves. With a store (every replica's, and the next start's), this
 * map is a cache in front of it: a session another replica opened is read on first sight here,
 * checked against the presenting grant, and served; sightings are written in batches.
 */
export class SessionRegistry {
  readonly #byId = new Map<string, Session>();
  readonly #byHash = new Map<string, Session>();
  readonly #byUser = new Map<number, Set<Session>>();
  readonly #maxPerUser: number;
  readonly #idleMs: number;
  readonly #store: McpSessionStore | undefined;
  /** Store reads in flight, by id hash: concurrent first requests read once. */
  readonly #loading = new Map<string, Read>();

  constructor(opts: { maxPerUser: number; idleMs: number; store?: McpSessionStore }) {
    this.#maxPerUser = opts.maxPerUser;
    this.#idleMs = opts.idleMs;
    this.#store = opts.store;
  }

  get size(): number {
    return this.#byId.size;
  }

  /**
   * Creates a session; past the per-user cap the user's least recently seen session is closed
   * (Claude.ai re-initializes often, so refusing would lock its users out). In the store the cap
   * holds across replicas, and the sessions it closes are announced (`sessionEnded`) rather than
   * returned. Undefined when the store no longer has the grant (revoked meanwhile).
   */
  async create(init: NewSession): Promise<{ session: Session; evicted?: Session } | undefined> {
    // 128 random bits, base64url: visible ASCII as the spec requires, unguessable.
    const id = randomBytes(16).toString('base64url');
    const now = Date.now();
    const session: Session = {
      ...init,
      id,
      idHash: hashSecret(id),
      created: now,
      lastSeen: now,
      storedSeen: now,
      ...(init.tokenHash ? { storedTokenHash: init.tokenHash } : {}),
    };
    if (this.#store) {
      if (!(await this.#store.insertMcpSession(toRecord(session), this.#maxPerUser))) return undefined;
      this.#add(session);
      return { session };
    }
    const set = this.#byUser.get(init.userId);
    let evicted: Session | undefined;
    if (set && set.size >= this.#maxPerUser) {
      for (const s of set) if (!evicted || s.lastSeen < evicted.lastSeen) evicted = s;
      if (evicted) this.delete(evicted);
    }
    this.#add(session);
    return { session, ...(evicted ? { evicted } : {}) };
  }

  #add(s: Session): void {
    let set = this.#byUser.get(s.userId);
    if (!set) {
      set = new Set();
      this.#byUser.set(s.userId, set);
    }
    set.add(s);
    this.#byId.set(s.id, s);
    this.#byHash.set(s.idHash, s);
  }

  /**
   * The session with this id held here, if it belongs to `userId`; one idle too long is dropped.
   * No store access: this is every call's path.
   */
  get(id: string, userId: number): Session | undefined {
    const s = this.#byId.get(id);
    if (!s || s.userId !== userId) return undefined;
    if (Date.now() - s.lastSeen > this.#idleMs) {
      this.delete(s);
      return undefined;
    }
    s.lastSeen = Date.now();
    return s;
  }

  /** Whether this process holds the id (for whichever user). */
  holds(id: string): boolean {
    return this.#byId.has(id);
  }

  /**
   * A session not held here, read from the store (another replica opened it, or this process
   * before a restart) and held from now on, if it belongs to this user and grant and is not idle.
   */
  async load(id: string, userId: number, grantId: string): Promise<Session | undefined> {
    const store = this.#store;
    if (!store) return undefined;
    const idHash = hashSecret(id);
    let read = this.#loading.get(idHash);
    if (!read) {
      const flight: Read = { record: store.getMcpSession(idHash), ended: false };
      read = flight;
      void flight.record.finally(() => this.#loading.delete(idHash)).catch(() => {});
      this.#loading.set(idHash, flight);
    }
    const r = await read.record;
    const now = Date.now();
    // Another user's session id is as unknown as a made-up one, and so is another app's.
    if (!r || r.userId !== userId || r.grantId !== grantId || read.ended) return undefined;
    if (now - r.lastSeenAt > this.#idleMs + SIGHTING_LAG_MS) return undefined;
    const held = this.#byId.get(id);
    if (held) return held;
    const caps = parseJson(r.clientCapabilities);
    const s: Session = {
      id,
      idHash,
      userId: r.userId,
      login: r.login,
      grantId: r.grantId,
      protocolVersion: r.protocolVersion,
      clientInfo: parseJson(r.clientInfo),
      clientCapabilities:
        typeof caps === 'object' && caps !== null && !Array.isArray(caps)
          ? (caps as Record<string, unknown>)
          : {},
      ...(r.tokenHash ? { tokenHash: r.tokenHash, storedTokenHash: r.tokenHash } : {}),
      created: r.createdAt,
      lastSeen: now,
      storedSeen: r.lastSeenAt,
    };
    this.#add(s);
    return s;
  }

  /**
   * A session ended elsewhere (the store's announcement): the one held here, if any, for the
   * caller to let go; a read of it in flight will not be held.
   */
  endedElsewhere(idHash: string): Session | undefined {
    const read = this.#loading.get(idHash);
    if (read) read.ended = true;
    return this.#byHash.get(idHash);
  }

  ofUser(userId: number): Session[] {
    return [...(this.#byUser.get(userId) ?? [])];
  }

  ofGrant(grantId: string): Session[] {
    return [...this.#byId.values()].filter((s) => s.grantId === grantId);
  }

  /** Drops the session here (its stream ends); the store's record is left as it is. */
  delete(s: Session): void {
    if (!this.#byId.delete(s.id)) return;
    this.#byHash.delete(s.idHash);
    const set = this.#byUser.get(s.userId);
    set?.delete(s);
    if (set?.size === 0) this.#byUser.delete(s.userId);
    s.stream?.end();
  }

  /** Ends the session everywhere: here, in the store, and (announced) on every other replica. */
  async end(s: Session): Promise<void> {
    this.delete(s);
    await this.#store?.deleteMcpSession(s.idHash);
  }

  /** Drops sessions idle past their limit here (another replica may still serve them); returns how many. */
  sweep(now = Date.now()): number {
    let n = 0;
    for (const s of this.#byId.values()) {
      if (now - s.lastSeen > this.#idleMs && !s.stream?.open) {
        this.delete(s);
        n++;
      }
    }
    return n;
  }

  /**
   * The store's side of upkeep: writes the sightings that are due (an open stream counts as a
   * sighting) in one batch, and deletes records idle past the limit on every replica. Returns the
   * sessions held here whose record is gone (ended elsewhere): the caller lets them go.
   */
  async share(now = Date.now()): Promise<Session[]> {
    const store = this.#store;
    // A store slower than the sweep: one upkeep at a time.
    if (!store || this.#sharing) return [];
    this.#sharing = true;
    try {
      return await this.#share(store, now);
    } finally {
      this.#sharing = false;
    }
  }

  #sharing = false;

  async #share(store: McpSessionStore, now: number): Promise<Session[]> {
    const due: { s: Session; at: number; tokenHash: string | null }[] = [];
    for (const s of this.#byId.values()) {
      if (s.stream?.open) s.lastSeen = now;
      if (s.lastSeen - s.storedSeen >= SIGHTING_EVERY_MS || s.tokenHash !== s.storedTokenHash)
        due.push({ s, at: s.lastSeen, tokenHash: s.tokenHash ?? null });
    }
    let gone: Session[] = [];
    if (due.length > 0) {
      const missing = new Set(
        await store.touchMcpSessions(
          due.map((d) => ({ idHash: d.s.idHash, at: d.at, tokenHash: d.tokenHash })),
        ),
      );
      for (const d of due) {
        d.s.storedSeen = d.at;
        if (d.tokenHash) d.s.storedTokenHash = d.tokenHash;
      }
      gone = due.filter((d) => missing.has(d.s.idHash) && this.#byId.get(d.s.id) === d.s).map((d) => d.s);
    }
    await store.pruneMcpSessions(now - this.#idleMs - SIGHTING_LAG_MS);
    return gone;
  }

  all(): Session[] {
    return [...this.#byId.values()];
  }
}

/** One read of a record; `ended` when the session ended while it was in flight (not to be held). */
type Read = { record: Promise<McpSessionRecord | undefined>; ended: boolean };

function toRecord(s: Session): McpSessionRecord {
  return {
    idHash: s.idHash,
    grantId: s.grantId,
    userId: s.userId,
    login: s.login,
    tokenHash: s.tokenHash ?? null,
    protocolVersion: s.protocolVersion,
    clientInfo: JSON.stringify(s.clientInfo ?? null),
    clientCapabilities: JSON.stringify(s.clientCapabilities),
    createdAt: s.created,
    lastSeenAt: s.lastSeen,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
