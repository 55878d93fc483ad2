// One child per Forgejo user (design decision 1), started on first use, shared by every session of
// that user, replaced when the user's Forgejo token rotates (decision 5), reaped when idle.
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Bridge, type BridgeOptions, type Sink } from '../bridge/bridge.ts';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../bridge/jsonrpc.ts';
import type { Logger } from '../log/log.ts';
import type { Child, ChildSpec } from '../supervisor/supervisor.ts';
import { channelOf } from './channel.ts';

/** The user's current Forgejo access token, valid for at least `minValidityMs` more. */
export interface TokenSource {
  accessToken(userId: number, opts: { minValidityMs: number }): Promise<{ token: string; expiresAt: number }>;
  /**
   * A child given `token` failed to start: 'refreshed' when the source found the token refused and
   * replaced it (worth one more start). Either method rejects with an error whose `signInRequired`
   * is true when the user's credential is gone for good.
   */
  recheck?(userId: number, token: string): Promise<'valid' | 'refreshed'>;
}

/** The user's Forgejo credential is gone (revoked in Forgejo): they must sign in again. */
export function signInRequired(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { signInRequired?: unknown }).signInRequired === true;
}

export interface Spawner {
  start(spec: ChildSpec): Promise<Child>;
}

export type PoolUser = { id: number; login: string };

export type PoolOptions = {
  /** Absolute path of the child command (resolved at startup) and its arguments. */
  command: string;
  args: readonly string[];
  forgejoUrl: string;
  idleMs: number;
  maxChildren: number;
  /** Replace a child this long before its token expires (capped at a third of the token's life). */
  rotateMarginMs: number;
  stopGraceMs: number;
  bridge: Omit<BridgeOptions, 'events'>;
  spawner: Spawner;
  tokens: TokenSource;
  log: Logger;
  events: {
    notification(userId: number, msg: JsonRpcNotification): void;
    orphanRequest(userId: number, msg: JsonRpcRequest): { sink: Sink; origin: string } | undefined;
  };
};

export class PoolFullError extends Error {
  override name = 'PoolFullError';
  readonly retryAfterSeconds: number;
  constructor(max: number, retryAfterSeconds: number) {
    super(`all ${max} MCP server processes are busy; try again shortly`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A child with the token it was started with. */
type Generation = {
  child: Child;
  bridge: Bridge;
  tokenHash: string;
  issuedAt: number;
  expiresAt: number;
};

type Entry = {
  user: PoolUser;
  current?: Generation;
  starting?: Promise<Generation>;
  rotating?: Promise<void>;
  draining: Set<Generation>;
  lastUsed: number;
  rotateTimer?: NodeJS.Timeout;
};

const CHILD_PATH = '/usr/local/bin:/usr/bin:/bin';
const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

export class Pool {
  readonly #o: PoolOptions;
  readonly #entries = new Map<number, Entry>();
  readonly #sweeper: NodeJS.Timeout;
  #starts = 0;
  #rotations = 0;
  #stopping = false;

  constructor(options: PoolOptions) {
    this.#o = options;
    this.#sweeper = setInterval(() => this.#reapIdle(), Math.max(250, Math.min(options.idleMs / 4, 30_000)));
    this.#sweeper.unref();
  }

  /** Children alive now, including ones still finishing work after a rotation. */
  get liveChildren(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += (e.current ? 1 : 0) + e.draining.size;
    return n;
  }

  stats(): { users: number; children: number; starts: number; rotations: number } {
    return {
      users: this.#entries.size,
      children: this.liveChildren,
      starts: this.#starts,
      rotations: this.#rotations,
    };
  }

  /**
   * Starts the user's child ahead of their first call (they just signed in), when there is room
   * without evicting anyone: a guess must not cost another user their warm child. An unused one is
   * reaped like any idle child.
   */
  prewarm(user: PoolUser): boolean {
    if (this.#stopping) return false;
    const e = this.#entries.get(user.id);
    if (e?.current && !e.current.bridge.closed) return false;
    if (e?.starting) return false;
    const starting = [...this.#entries.values()].filter((x) => x.starting).length;
    if (this.liveChildren + starting >= this.#o.maxChildren) return false;
    this.acquire(user).then(
      () => this.#o.log.debug({ child: user.login }, 'MCP server started ahead of the first call'),
      (err: Error) =>
        this.#o.log.info(
          { child: user.login, err: err.message },
          'could not start the MCP server ahead of need',
        ),
    );
    return true;
  }

  /** The user's ready bridge: the running child, or a new one after spawn and handshake. */
  async acquire(user: PoolUser): Promise<Bridge> {
    if (this.#stopping) throw new Error('the broker is shutting down');
    let e = this.#entries.get(user.id);
    if (!e) {
      e = { user, draining: new Set(), lastUsed: Date.now() };
      this.#entries.set(user.id, e);
    }
    e.lastUsed = Date.now();
    const gen = e.current;
    if (gen && !gen.bridge.closed) {
      if (Date.now() < gen.expiresAt - this.#margin(gen)) return gen.bridge;
      // Near expiry: the old token still works, so keep serving while the new child starts, but
      // only while a call sent now still has time to reach Forgejo before the token dies.
      const rotation = this.#rotate(e);
      if (Date.now() < gen.expiresAt - this.#margin(gen) / 2) return gen.bridge;
      await rotation;
      if (e.current && !e.current.bridge.closed) return e.current.bridge;
    }
    if (gen?.bridge.closed) this.#retire(e, gen, 'exited');
    return (await this.#ensureStarted(e)).bridge;
  }

  /** Routes a client's answer to a server-to-client request to the child that asked it. */
  respond(userId: number, msg: JsonRpcResponse, origin: string): boolean {
    const e = this.#entries.get(userId);
    if (!e) return false;
    for (const g of [e.current, ...e.draining])
      if (g?.bridge.owns(msg.id as string)) return g.bridge.respond(msg, origin);
    return false;
  }

  /** Every bridge of a user that may hold calls of `origin` (after a rotation, the old one too). */
  bridgesOf(userId: number): Bridge[] {
    const e = this.#entries.get(userId);
    if (!e) return [];
    return [e.current, ...e.draining].filter((g): g is Generation => g !== undefined).map((g) => g.bridge);
  }

  #margin(g: Generation): number {
    return Math.min(this.#o.rotateMarginMs, (g.expiresAt - g.issuedAt) / 3);
  }

  #ensureStarted(e: Entry): Promise<Generation> {
    if (e.starting) return e.starting;
    const p = this.#spawn(e, 0).then(
      (gen) => {
        e.current = gen;
        this.#scheduleRotation(e, gen);
        return gen;
      },
      (err: unknown) => {
        if (!e.current && e.draining.size === 0) this.#forget(e);
        throw err;
      },
    );
    e.starting = p;
    void p
      .finally(() => {
        if (e.starting === p) e.starting = undefined;
      })
      .catch(() => {});
    return p;
  }

  async #spawn(e: Entry, minValidityMs: number, retry = true): Promise<Generation> {
    this.#makeRoom(e);
    const { token, expiresAt } = await this.#o.tokens.accessToken(e.user.id, { minValidityMs });
    const child = await this.#o.spawner.start({
      name: e.user.login,
      command: this.#o.command,
      args: this.#o.args,
      // Exactly what forgejo-mcp needs: never the broker's own secrets (decision 3).
      env: { FORGEJO_URL: this.#o.forgejoUrl, FORGEJO_ACCESS_TOKEN: token, PATH: CHILD_PATH, HOME: tmpdir() },
      cwd: tmpdir(),
      secrets: [token],
    });
    this.#starts++;
    const userId = e.user.id;
    const bridge = new Bridge(channelOf(child), {
      ...this.#o.bridge,
      events: {
        notification: (msg) => this.#o.events.notification(userId, msg),
        orphanRequest: (msg) => this.#o.events.orphanRequest(userId, msg),
        garbage: (info) =>
          this.#o.log.warn({ child: e.user.login, ...info }, 'skipped a stdout line that is not JSON-RPC'),
        dropped: (info) =>
          this.#o.log.info(
            { child: e.user.login, ...info },
            'dropped a message no single client app may see',
          ),
      },
    });
    try {
      await bridge.initialize();
    } catch (err) {
      await child.stop(this.#o.stopGraceMs).catch(() => {});
      // forgejo-mcp exits at start when Forgejo refuses its token: find out whether that was
      // the cause, rather than starting a doomed child on every call of this user.
      if ((await this.#recheck(e, token)) === 'refreshed' && retry)
        return this.#spawn(e, minValidityMs, false);
      throw err;
    }
    return { child, bridge, tokenHash: hashToken(token), issuedAt: Date.now(), expiresAt };
  }

  async #recheck(e: Entry, token: string): Promise<'valid' | 'refreshed'> {
    if (!this.#o.tokens.recheck) return 'valid';
    try {
      return await this.#o.tokens.recheck(e.user.id, token);
    } catch (err) {
      if (signInRequired(err)) throw err;
      this.#o.log.warn(
        { child: e.user.login, err: (err as Error).message },
        'could not ask Forgejo about the token',
      );
      return 'valid';
    }
  }

  /** Evicts the longest-idle user without calls in flight when the cap is reached. */
  #makeRoom(requester: Entry): void {
    const starting = [...this.#entries.values()].filter((x) => x.starting && x !== requester).length;
    if (this.liveChildren + starting < this.#o.maxChildren) return;
    let victim: Entry | undefined;
    for (const x of this.#entries.values()) {
      if (x === requester || !x.current || x.current.bridge.inFlight > 0 || x.starting) continue;
      if (!victim || x.lastUsed < victim.lastUsed) victim = x;
    }
    if (!victim?.current) throw new PoolFullError(this.#o.maxChildren, 5);
    this.#o.log.info({ child: victim.user.login }, 'evicting the longest-idle MCP server to make room');
    this.#retire(victim, victim.current, 'evicted');
  }

  #scheduleRotation(e: Entry, gen: Generation): void {
    clearTimeout(e.rotateTimer);
    const at = gen.expiresAt - this.#margin(gen) - Date.now();
    e.rotateTimer = setTimeout(
      () => {
        // Only children in use are worth replacing ahead of time; an idle one is reaped instead.
        if (e.current === gen && Date.now() - e.lastUsed < this.#o.idleMs)
          void this.#rotate(e).catch(() => {});
      },
      Math.max(0, at),
    );
    e.rotateTimer.unref();
  }

  /** Starts a child with a fresh token, sends new calls there, lets the old one finish, then stops it. */
  #rotate(e: Entry): Promise<void> {
    if (e.rotating) return e.rotating;
    const old = e.current;
    if (!old) return Promise.resolve();
    const p = (async () => {
      const gen = await this.#spawnRotated(e, old);
      if (!gen) return;
      if (e.current !== old) {
        // The old child was retired meanwhile (idle, exited, evicted, revoked) and perhaps already
        // replaced: taking the slot would orphan that replacement, so this child is not needed.
        this.#retire(e, gen, 'superseded');
        return;
      }
      e.current = gen;
      this.#rotations++;
      this.#scheduleRotation(e, gen);
      this.#retire(e, old, 'rotated');
    })();
    e.rotating = p;
    void p
      .catch((err: Error) =>
        this.#o.log.warn({ child: e.user.login, err: err.message }, 'token rotation failed'),
      )
      .finally(() => {
        if (e.rotating === p) e.rotating = undefined;
      });
    return p;
  }

  async #spawnRotated(e: Entry, old: Generation): Promise<Generation | undefined> {
    // The room check must not count the child being replaced against the cap.
    const gen = await this.#spawn(e, this.#margin(old) * 2);
    if (gen.tokenHash === old.tokenHash) {
      // The credential was not refreshed: no point in a second child with the same token.
      await gen.child.stop(this.#o.stopGraceMs).catch(() => {});
      old.expiresAt = Math.max(old.expiresAt, gen.expiresAt);
      return undefined;
    }
    return gen;
  }

  /** Takes a generation out of service; it stops once its in-flight calls are done. */
  #retire(e: Entry, gen: Generation, why: string): void {
    if (e.current === gen) {
      e.current = undefined;
      clearTimeout(e.rotateTimer);
    }
    e.draining.add(gen);
    void gen.bridge
      .drained()
      .then(() => gen.child.stop(this.#o.stopGraceMs))
      .catch(() => {})
      .finally(() => {
        gen.bridge.close(`the MCP server was stopped (${why})`);
        e.draining.delete(gen);
        if (!e.current && !e.starting && e.draining.size === 0) this.#forget(e);
      });
  }

  /** Drops an emptied entry, unless the user already has a newer one (an old rotation finishing late). */
  #forget(e: Entry): void {
    if (this.#entries.get(e.user.id) === e) this.#entries.delete(e.user.id);
  }

  #reapIdle(): void {
    const now = Date.now();
    for (const e of this.#entries.values()) {
      const g = e.current;
      if (g && (g.bridge.closed || (g.bridge.inFlight === 0 && now - e.lastUsed >= this.#o.idleMs))) {
        this.#o.log.info({ child: e.user.login, idleMs: now - e.lastUsed }, 'reaping an idle MCP server');
        this.#retire(e, g, 'idle');
      }
    }
  }

  /** Stops the user's children now (revocation): in-flight calls fail with `reason`. */
  async stopUser(userId: number, reason: string): Promise<void> {
    const e = this.#entries.get(userId);
    if (!e) return;
    const gens = [e.current, ...e.draining].filter((g): g is Generation => g !== undefined);
    if (e.current) this.#retire(e, e.current, reason);
    await Promise.all(
      gens.map(async (g) => {
        g.bridge.close(reason);
        await g.child.stop(this.#o.stopGraceMs).catch(() => {});
      }),
    );
  }

  /** Shutdown: in-flight calls get until `deadline`, then every child is stopped. */
  async stopAll(deadline: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#sweeper);
    const gens = [...this.#entries.values()].flatMap((e) => {
      clearTimeout(e.rotateTimer);
      return [e.current, ...e.draining].filter((g): g is Generation => g !== undefined);
    });
    const wait = Math.max(0, deadline - Date.now());
    await Promise.race([
      Promise.all(gens.map((g) => g.bridge.drained())),
      new Promise((r) => setTimeout(r, wait)),
    ]);
    const grace = Math.max(100, Math.min(this.#o.stopGraceMs, deadline - Date.now()));
    await Promise.all(
      gens.map(async (g) => {
        g.bridge.close('the broker is shutting down');
        await g.child.stop(grace, Math.min(200, grace)).catch(() => {});
      }),
    );
    this.#entries.clear();
  }
}
