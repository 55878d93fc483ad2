import { randomBytes } from 'node:crypto';
import type { SseStream } from './sse.ts';

/** A 2025-revision MCP session: a cheap record pointing at its user's child (design decision 1). */
export type Session = {
  id: string;
  userId: number;
  login: string;
  grantId: string;
  protocolVersion: string;
  clientInfo: unknown;
  clientCapabilities: Record<string, unknown>;
  /** Hash of the access token the session was last used with (its revocation closes it). */
  tokenHash?: string;
  /** The standalone GET stream, if the client opened one. */
  stream?: SseStream;
  /** Hash of the access token that opened `stream`: its revocation ends the stream. */
  streamTokenHash?: string;
  created: number;
  lastSeen: number;
};

export class SessionRegistry {
  readonly #byId = new Map<string, Session>();
  readonly #byUser = new Map<number, Set<Session>>();
  readonly #maxPerUser: number;
  readonly #idleMs: number;

  constructor(opts: { maxPerUser: number; idleMs: number }) {
    this.#maxPerUser = opts.maxPerUser;
    this.#idleMs = opts.idleMs;
  }

  get size(): number {
    return this.#byId.size;
  }

  /**
   * Creates a session; past the per-user cap the user's least recently seen session is closed
   * (Claude.ai re-initializes often, so refusing would lock its users out). Returns the evicted one.
   */
  create(init: Omit<Session, 'id' | 'created' | 'lastSeen'>): { session: Session; evicted?: Session } {
    // 128 random bits, base64url: visible ASCII as the spec requires, unguessable.
    const session: Session = {
      ...init,
      id: randomBytes(16).toString('base64url'),
      created: Date.now(),
      lastSeen: Date.now(),
    };
    let set = this.#byUser.get(init.userId);
    if (!set) {
      set = new Set();
      this.#byUser.set(init.userId, set);
    }
    let evicted: Session | undefined;
    if (set.size >= this.#maxPerUser) {
      for (const s of set) if (!evicted || s.lastSeen < evicted.lastSeen) evicted = s;
      if (evicted) this.delete(evicted);
    }
    set.add(session);
    this.#byId.set(session.id, session);
    return { session, ...(evicted ? { evicted } : {}) };
  }

  /** The live session with this id, if it belongs to `userId`; sessions idle too long are gone. */
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

  ofUser(userId: number): Session[] {
    return [...(this.#byUser.get(userId) ?? [])];
  }

  ofGrant(grantId: string): Session[] {
    return [...this.#byId.values()].filter((s) => s.grantId === grantId);
  }

  delete(s: Session): void {
    if (!this.#byId.delete(s.id)) return;
    const set = this.#byUser.get(s.userId);
    set?.delete(s);
    if (set?.size === 0) this.#byUser.delete(s.userId);
    s.stream?.end();
  }

  /** Drops sessions idle past their limit; returns how many. */
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

  all(): Session[] {
    return [...this.#byId.values()];
  }
}
