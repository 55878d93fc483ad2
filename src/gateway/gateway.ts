// /mcp: every MCP revision on one endpoint, each request bound to its user's child through the pool.
// This file checks what every request must pass (Host, Origin and bearer on the headers alone, then
// the content type) and hands the request to its revision's transport: 2025 sessions (session-transport.ts) or 2026 stateless
// requests (stateless-transport.ts). Nothing here speaks to a child directly: the bridge does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sink } from '../bridge/bridge.ts';
import {
  INVALID_REQUEST,
  type JsonRpcNotification,
  type JsonRpcRequest,
  MAX_NESTING,
  nestedDeeperThan,
  PARSE_ERROR,
  SERVER_ERROR,
} from '../bridge/jsonrpc.ts';
import type { PoolUser } from '../pool/pool.ts';
import { envelopeVersion, MODERN_VERSION } from './envelope.ts';
import { Gate, type Principal } from './gate.ts';
import { answerThrown, HttpError, refuse, requestIdOf, withRequestId } from './http-errors.ts';
import { ParkedCalls } from './mrtr.ts';
import { parseAccept } from './post-response.ts';
import { limitedSink } from './result-limit.ts';
import { Routing } from './routing.ts';
import { SessionTransport } from './session-transport.ts';
import { SessionRegistry } from './sessions.ts';
import { StatelessTransport } from './stateless-transport.ts';
import { Tasks } from './tasks.ts';
import { ToolCatalog } from './tool-catalog.ts';
import type { GatewayContext, GatewayOptions } from './types.ts';

export { type GatewayOptions, LEGACY_VERSIONS } from './types.ts';

export class Gateway {
  readonly gate: Gate;
  readonly sessions: SessionRegistry;
  readonly #ctx: GatewayContext;
  readonly #routing: Routing;
  readonly #parked: ParkedCalls;
  readonly #tasks: Tasks;
  readonly #tools = new ToolCatalog();
  readonly #legacy: SessionTransport;
  readonly #modern: StatelessTransport;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: GatewayOptions) {
    this.gate = new Gate(options);
    this.sessions = new SessionRegistry({
      maxPerUser: options.maxSessionsPerUser,
      idleMs: options.sessionIdleMs,
      ...(options.sessionStore ? { store: options.sessionStore } : {}),
    });
    this.#ctx = { o: options, gate: this.gate, sessions: this.sessions };
    this.#routing = new Routing(this.sessions, options.pool, options.log);
    this.#tasks = new Tasks(options.tasks);
    this.#parked = new ParkedCalls(
      options.parkTtlMs,
      this.#tasks,
      options.onCall,
      (r, sink, userId) => limitedSink(r, sink, options.maxResultChars ?? 0, options.log, userId),
      options.requestStateKey,
    );
    this.#legacy = new SessionTransport(this.#ctx, this.#routing);
    this.#modern = new StatelessTransport(this.#ctx, this.#routing, this.#parked, this.#tools, this.#tasks);
    this.#sweeper = setInterval(() => this.#sweep(), 30_000);
    this.#sweeper.unref();
    options.events?.on('grantRevoked', (g: { grantId: string; userId: number }) =>
      this.#revokeGrant(g.grantId, g.userId),
    );
    options.events?.on('userRevoked', (userId: number) => this.#revokeUser(userId));
    options.events?.on('sessionEnded', (e: { idHash: string }) => this.#sessionEnded(e.idHash));
    options.events?.on('accessTokenRevoked', (t: { tokenHash: string; userId: number }) =>
      this.#revokeToken(t.tokenHash, t.userId),
    );
  }

  /** Pool event: a notification that belongs to no call in flight (see Routing.broadcast). */
  broadcast(userId: number, msg: JsonRpcNotification): void {
    if (msg.method === 'notifications/tools/list_changed')
      this.#tools.forget(this.#ctx.o.pool.bridgesOf(userId));
    this.#routing.broadcast(userId, msg);
  }

  /** Pool event: a server-to-client request with no call in flight (see Routing.orphanRequest). */
  orphanRequest(userId: number, msg: JsonRpcRequest): { sink: Sink; origin: string } | undefined {
    return this.#routing.orphanRequest(userId, msg.method);
  }

  /**
   * The gate, on the headers alone (no body byte has been read yet): Host, Origin, the CORS
   * preflight and the bearer token. A request that does not pass is answered here (undefined),
   * once `beforeAnswer` (the HTTP layer's handling of the unread body) has run.
   */
  async admit(
    req: IncomingMessage,
    res: ServerResponse,
    beforeAnswer: () => Promise<void> = async () => {},
  ): Promise<Principal | undefined> {
    const origin = req.headers.origin;
    try {
      if (!this.gate.hostAllowed(req.headers.host))
        throw new HttpError(403, SERVER_ERROR, `Invalid Host header: ${req.headers.host ?? ''}`);
      if (!this.gate.originAllowed(origin))
        throw new HttpError(403, SERVER_ERROR, `Origin not allowed: ${origin}`);
      if (req.method === 'OPTIONS') {
        await beforeAnswer();
        this.gate.preflight(req, res);
        return undefined;
      }
      const auth = await this.#ctx.o.verifyBearer(req.headers.authorization);
      if (auth.ok) return auth.principal;
      await beforeAnswer();
      refuse(this.#ctx, res, auth, req.headers.authorization !== undefined, origin);
    } catch (e) {
      await beforeAnswer();
      answerThrown(this.#ctx, res, e, origin);
    }
    return undefined;
  }

  /** An admitted request, with its whole body. */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    p: Principal,
  ): Promise<void> {
    try {
      switch (req.method) {
        case 'POST':
          await this.#post(req, res, body, p);
          return;
        case 'GET':
          await this.#legacy.get(req, res, p);
          return;
        case 'DELETE':
          await this.#legacy.delete(req, res, p);
          return;
        default:
          throw new HttpError(405, SERVER_ERROR, 'Method not allowed.', undefined, {
            allow: 'GET, POST, DELETE, OPTIONS',
          });
      }
    } catch (e) {
      answerThrown(this.#ctx, res, e, req.headers.origin);
    }
  }

  /** What every POST must be (JSON, acceptable answer types), then its revision's transport. */
  async #post(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    p: Principal,
  ): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new HttpError(415, SERVER_ERROR, 'Unsupported Media Type: Content-Type must be application/json');
    }
    const accepts = parseAccept(req.headers.accept);
    if (!accepts.json && !accepts.sse) {
      throw new HttpError(
        406,
        SERVER_ERROR,
        'Not Acceptable: Client must accept application/json or text/event-stream',
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body?.toString('utf8') ?? '');
    } catch {
      throw new HttpError(400, PARSE_ERROR, 'Parse error: Invalid JSON');
    }
    if (nestedDeeperThan(parsed))
      throw new HttpError(
        400,
        INVALID_REQUEST,
        `Invalid Request: nested more than ${MAX_NESTING} levels deep`,
      );
    const user: PoolUser = { id: p.userId, login: p.login };
    const modern =
      envelopeVersion(parsed) !== undefined ||
      (req.headers['mcp-protocol-version'] === MODERN_VERSION && req.headers['mcp-session-id'] === undefined);
    await withRequestId(requestIdOf(parsed), () =>
      modern
        ? this.#modern.post(req, res, parsed, user, p, accepts)
        : this.#legacy.post(req, res, parsed, user, p, accepts),
    );
  }

  /** Live sessions and listen streams of a grant (the connected-apps page shows them). */
  activeConnections(grantId: string): number {
    return this.sessions.ofGrant(grantId).length + this.#routing.countListeners((l) => l.grantId === grantId);
  }

  // ---- revocation and housekeeping -----------------------------------------------------------

  #revokeGrant(grantId: string, userId: number): void {
    for (const s of this.sessions.ofGrant(grantId)) {
      this.sessions.delete(s);
      this.#legacy.forget(s);
    }
    this.#routing.endListeners((l) => l.grantId === grantId);
    this.#tasks.drop((t) => t.grantId === grantId);
    this.#stopIfUnused(userId);
  }

  /** A session ended on another replica (DELETE, the per-user cap) or by this one's store. */
  #sessionEnded(idHash: string): void {
    const s = this.sessions.endedElsewhere(idHash);
    if (!s) return;
    this.sessions.delete(s);
    this.#legacy.forget(s);
  }

  /** One access token revoked: what it opened closes; the grant's other sessions live on. */
  #revokeToken(tokenHash: string, userId: number): void {
    for (const s of this.sessions.ofUser(userId)) {
      // A stream opened with the revoked token ends even when the session went on with a newer one.
      if (s.streamTokenHash === tokenHash) s.stream?.end();
      if (s.tokenHash !== tokenHash) continue;
      // Only the copy held here: the revoking store deleted the records last used with the token,
      // and a copy elsewhere may have moved on to a newer token since.
      this.sessions.delete(s);
      this.#legacy.forget(s);
    }
    this.#routing.endListeners((l) => l.tokenHash === tokenHash);
    this.#stopIfUnused(userId);
  }

  #revokeUser(userId: number): void {
    for (const s of this.sessions.ofUser(userId)) {
      this.sessions.delete(s);
      this.#legacy.forget(s);
    }
    this.#routing.endListeners((l) => l.userId === userId);
    this.#tasks.drop((t) => t.userId === userId);
    void this.#ctx.o.pool.stopUser(userId, 'access was revoked');
  }

  /** With no session or stream of the user left, their child has nobody to serve. */
  #stopIfUnused(userId: number): void {
    if (this.sessions.ofUser(userId).length > 0) return;
    if (this.#routing.hasListener(userId)) return;
    if (this.#ctx.o.pool.bridgesOf(userId).some((b) => b.inFlight > 0)) return;
    void this.#ctx.o.pool.stopUser(userId, 'access was revoked');
  }

  #storeFailed(e: Error): void {
    this.#ctx.o.log.error({ err: { message: e.message } }, 'session upkeep in the store failed');
  }

  #sweep(): void {
    this.sessions.sweep();
    this.sessions.share().then(
      (gone) => {
        for (const s of gone) {
          this.sessions.delete(s);
          this.#legacy.forget(s);
        }
      },
      (e: Error) => this.#storeFailed(e),
    );
    this.#parked.sweep();
    this.#tasks.sweep();
  }

  /** Open SSE streams: sessions' GET streams and 2026 listen streams (a metric). */
  get streamCount(): number {
    let n = this.#routing.listenerCount;
    for (const s of this.sessions.all()) if (s.stream?.open) n++;
    return n;
  }

  /** Shutdown: streams end so clients reconnect elsewhere. */
  close(): void {
    clearInterval(this.#sweeper);
    for (const s of this.sessions.all()) s.stream?.end();
    this.#routing.endListeners(() => true);
  }
}
