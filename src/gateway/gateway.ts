// /mcp: every MCP revision on one endpoint, each request bound to its user's child through the pool.
// 2025 revisions get sessions (cheap records pointing at the user's child); 2026-07-28 requests are
// stateless. Nothing here speaks to a child directly: the bridge does.
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bridge, Sink } from '../bridge/bridge.ts';
import {
  errorResponse,
  INTERNAL_ERROR,
  INVALID_REQUEST,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  METHOD_NOT_FOUND,
  PARSE_ERROR,
  SERVER_ERROR,
  validateMessage,
} from '../bridge/jsonrpc.ts';
import type { Logger } from '../log/log.ts';
import { type Pool, PoolFullError, type PoolUser, signInRequired } from '../pool/pool.ts';
import { newSecret } from '../store/secrets.ts';
import { type BearerResult, Gate, type GateOptions, type Principal, type VerifyBearer } from './gate.ts';
import {
  checkEnvelope,
  decorateResult,
  discoverResult,
  envelopeVersion,
  FORWARDED,
  forChild,
  META,
  MODERN_VERSION,
} from './modern.ts';
import { type Accepts, PostResponse, parseAccept } from './post-response.ts';
import { type Session, SessionRegistry } from './sessions.ts';
import { type SseOptions, SseStream } from './sse.ts';

export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;

export type GatewayOptions = GateOptions & {
  verifyBearer: VerifyBearer;
  pool: Pool;
  log: Logger;
  sse: SseOptions;
  maxSessionsPerUser: number;
  sessionIdleMs: number;
  /** How long a 2026 call may wait for the client to answer its server-to-client requests. */
  parkTtlMs: number;
  /** Revocation announcements from the OAuth side: grantRevoked({grantId,userId}), userRevoked(userId), tokenChanged(userId). */
  events?: EventEmitter;
};

/** A 2026 call waiting for the client to retry with answers to the child's requests. */
type Parked = {
  userId: number;
  bridge: Bridge;
  origin: string;
  method: string;
  clientId: JsonRpcId;
  /** The child's server-to-client requests awaiting the client's answers, by key. */
  open: Map<string, { method: string; params?: Record<string, unknown> }>;
  /** The requestState handed to the client while parked. */
  key?: string;
  final?: JsonRpcMessage;
  post?: PostResponse;
  created: number;
};

type Listener = {
  userId: number;
  grantId: string;
  tokenHash?: string;
  id: JsonRpcId;
  stream: SseStream;
  wants: { tools: boolean; prompts: boolean; resources: boolean; uris: Set<string> };
};

class HttpError extends Error {
  readonly status: number;
  readonly code: number;
  readonly data?: unknown;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: number,
    message: string,
    data?: unknown,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
    this.headers = headers;
  }
}

export class Gateway {
  readonly gate: Gate;
  readonly sessions: SessionRegistry;
  readonly #o: GatewayOptions;
  readonly #parked = new Map<string, Parked>();
  readonly #listeners = new Set<Listener>();
  /** Resource subscriptions per user: uri → sessions (or listeners) that asked. */
  readonly #subs = new Map<number, Map<string, Set<string>>>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.gate = new Gate(options);
    this.sessions = new SessionRegistry({
      maxPerUser: options.maxSessionsPerUser,
      idleMs: options.sessionIdleMs,
    });
    this.#sweeper = setInterval(() => this.#sweep(), 30_000);
    this.#sweeper.unref();
    options.events?.on('grantRevoked', (g: { grantId: string; userId: number }) =>
      this.#revokeGrant(g.grantId, g.userId),
    );
    options.events?.on('userRevoked', (userId: number) => this.#revokeUser(userId));
    options.events?.on('accessTokenRevoked', (t: { tokenHash: string; userId: number }) =>
      this.#revokeToken(t.tokenHash, t.userId),
    );
  }

  /** Pool event: a notification that belongs to no request goes to every session of the user. */
  broadcast(userId: number, msg: JsonRpcNotification): void {
    if (msg.method === 'notifications/resources/updated') {
      const uri = String(msg.params?.['uri'] ?? '');
      const who = this.#subs.get(userId)?.get(uri);
      for (const s of this.sessions.ofUser(userId)) if (who?.has(s.id)) s.stream?.send(msg);
      for (const l of this.#listeners)
        if (l.userId === userId && l.wants.uris.has(uri)) this.#toListener(l, msg);
      return;
    }
    for (const s of this.sessions.ofUser(userId)) s.stream?.send(msg);
    const kind = /^notifications\/(tools|prompts|resources)\/list_changed$/.exec(msg.method)?.[1] as
      | 'tools'
      | 'prompts'
      | 'resources'
      | undefined;
    if (kind)
      for (const l of this.#listeners) if (l.userId === userId && l.wants[kind]) this.#toListener(l, msg);
  }

  /** Pool event: a server-to-client request with no call in flight goes to the freshest GET stream. */
  orphanRequest(userId: number): { sink: Sink; origin: string } | undefined {
    let best: Session | undefined;
    for (const s of this.sessions.ofUser(userId)) {
      if (s.stream?.open && (!best || s.lastSeen > best.lastSeen)) best = s;
    }
    const stream = best?.stream;
    if (!best || !stream) return undefined;
    return { sink: { send: (m) => stream.send(m) }, origin: best.id };
  }

  #toListener(l: Listener, msg: JsonRpcNotification): void {
    l.stream.send({ ...msg, params: { ...msg.params, _meta: { [`${META}subscriptionId`]: l.id } } });
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
      const auth = await this.#o.verifyBearer(req.headers.authorization);
      if (auth.ok) return auth.principal;
      await beforeAnswer();
      this.#refuse(res, auth, req.headers.authorization !== undefined, origin);
    } catch (e) {
      await beforeAnswer();
      this.#fail(res, e, origin);
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
          this.#get(req, res, p);
          return;
        case 'DELETE':
          this.#delete(req, res, p);
          return;
        default:
          throw new HttpError(405, SERVER_ERROR, 'Method not allowed.', undefined, {
            allow: 'GET, POST, DELETE, OPTIONS',
          });
      }
    } catch (e) {
      this.#fail(res, e, req.headers.origin);
    }
  }

  #fail(res: ServerResponse, e: unknown, origin: string | undefined): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (e instanceof HttpError) {
      this.#json(res, e.status, errorResponse(null, e.code, e.message, e.data), {
        ...this.gate.corsHeaders(origin),
        ...e.headers,
      });
      return;
    }
    this.#o.log.error({ err: { message: (e as Error).message, stack: (e as Error).stack } }, '/mcp failed');
    this.#json(
      res,
      500,
      errorResponse(null, INTERNAL_ERROR, 'internal error'),
      this.gate.corsHeaders(origin),
    );
  }

  #json(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    const body = JSON.stringify(payload);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

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
    const user: PoolUser = { id: p.userId, login: p.login };
    if (envelopeVersion(parsed) !== undefined || req.headers['mcp-protocol-version'] === MODERN_VERSION) {
      if (req.headers['mcp-session-id'] === undefined || envelopeVersion(parsed) !== undefined) {
        await this.#modern(req, res, parsed, user, p, accepts);
        return;
      }
    }
    await this.#legacy(req, res, parsed, user, p, accepts);
  }

  // ---- 2025-03-26 / 2025-06-18 / 2025-11-25 -------------------------------------------------

  async #legacy(
    req: IncomingMessage,
    res: ServerResponse,
    parsed: unknown,
    user: PoolUser,
    p: Principal,
    accepts: Accepts,
  ): Promise<void> {
    const batch = Array.isArray(parsed);
    const raw = batch ? (parsed as unknown[]) : [parsed];
    if (raw.length === 0) throw new HttpError(400, INVALID_REQUEST, 'Invalid Request: empty batch');
    if (raw.length > 100)
      throw new HttpError(400, INVALID_REQUEST, 'Invalid Request: batch of more than 100 messages');
    const messages: JsonRpcMessage[] = [];
    for (const r of raw) {
      const v = validateMessage(r);
      if (!v.ok) throw new HttpError(400, INVALID_REQUEST, `Invalid Request: ${v.reason}`);
      messages.push(v.message);
    }
    const init = messages.find((m) => isRequest(m) && m.method === 'initialize') as
      | JsonRpcRequest
      | undefined;
    if (init) {
      if (messages.length > 1)
        throw new HttpError(400, INVALID_REQUEST, 'Invalid Request: initialize must be sent alone');
      await this.#initialize(res, init, user, p, accepts, req.headers.origin);
      return;
    }
    const session = this.#session(req, p);
    if (batch && session.protocolVersion !== '2025-03-26') {
      throw new HttpError(
        400,
        INVALID_REQUEST,
        `Invalid Request: batches are not allowed in protocol version ${session.protocolVersion}`,
      );
    }
    for (const m of messages) {
      if (isResponse(m)) this.#o.pool.respond(p.userId, m, session.id);
      else if (isNotification(m)) this.#notify(session, m);
    }
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      res.writeHead(202, this.gate.corsHeaders(req.headers.origin));
      res.end();
      return;
    }
    const bridge = await this.#bridgeFor(user, requests, batch, res, req.headers.origin);
    if (!bridge) return;
    const post = new PostResponse(res, {
      accepts,
      expected: requests.length,
      batch,
      sse: this.#o.sse,
      headers: this.gate.corsHeaders(req.headers.origin),
    });
    post.onAbort(() => {
      for (const r of requests) {
        bridge.notify(
          {
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: r.id, reason: 'client disconnected' },
          },
          session.id,
        );
      }
    });
    for (const r of requests) this.#legacyRequest(r, session, bridge, post, user);
  }

  #legacyRequest(
    r: JsonRpcRequest,
    session: Session,
    bridge: Bridge,
    post: PostResponse,
    user: PoolUser,
  ): void {
    if (r.method === 'ping') {
      post.send({ jsonrpc: '2.0', id: r.id, result: {} }, true);
      return;
    }
    if (r.method === 'resources/subscribe' || r.method === 'resources/unsubscribe') {
      void this.#subscription(r, session.id, bridge, user.id).then((m) => post.send(m, true));
      return;
    }
    bridge.call(r, post.sink, session.id);
  }

  /**
   * One child serves many sessions but keeps one subscriber list: the broker subscribes the child
   * once per URI and unsubscribes when the last session lets go, and fans updates out itself.
   */
  async #subscription(
    r: JsonRpcRequest,
    who: string,
    bridge: Bridge,
    userId: number,
  ): Promise<JsonRpcMessage> {
    const uri = r.params?.['uri'];
    if (typeof uri !== 'string') return errorResponse(r.id, -32602, 'params.uri must be a string');
    let byUri = this.#subs.get(userId);
    if (!byUri) {
      byUri = new Map();
      this.#subs.set(userId, byUri);
    }
    const set = byUri.get(uri) ?? new Set<string>();
    const subscribe = r.method === 'resources/subscribe';
    const needChild = subscribe ? set.size === 0 : set.size === 1 && set.has(who);
    if (needChild) {
      const answer = await this.#callOnce(bridge, r, who);
      if ('error' in answer) return answer;
    }
    if (subscribe) {
      set.add(who);
      byUri.set(uri, set);
    } else {
      set.delete(who);
      if (set.size === 0) byUri.delete(uri);
    }
    return { jsonrpc: '2.0', id: r.id, result: {} };
  }

  #callOnce(bridge: Bridge, r: JsonRpcRequest, origin: string): Promise<JsonRpcResponse> {
    return new Promise((resolve) => {
      const sink: Sink = {
        send: (m, final) => {
          if (final) resolve(m as JsonRpcResponse);
          return true;
        },
      };
      bridge.call(r, sink, origin);
    });
  }

  #notify(session: Session, m: JsonRpcNotification): void {
    if (m.method === 'notifications/cancelled') {
      for (const b of this.#o.pool.bridgesOf(session.userId)) b.notify(m, session.id);
      return;
    }
    if (m.method === 'notifications/initialized') return;
    const b = this.#o.pool.bridgesOf(session.userId)[0];
    b?.notify(m, session.id);
  }

  async #initialize(
    res: ServerResponse,
    init: JsonRpcRequest,
    user: PoolUser,
    p: Principal,
    accepts: Accepts,
    origin: string | undefined,
  ): Promise<void> {
    const requested = init.params?.['protocolVersion'];
    const version = (LEGACY_VERSIONS as readonly unknown[]).includes(requested)
      ? (requested as string)
      : LEGACY_VERSIONS[0];
    const bridge = await this.#bridgeFor(user, [init], false, res, origin);
    if (!bridge) return;
    const caps = init.params?.['capabilities'];
    const { session, evicted } = this.sessions.create({
      userId: p.userId,
      login: p.login,
      grantId: p.grantId,
      ...(p.tokenHash ? { tokenHash: p.tokenHash } : {}),
      protocolVersion: version,
      clientInfo: init.params?.['clientInfo'],
      clientCapabilities: typeof caps === 'object' && caps !== null ? (caps as Record<string, unknown>) : {},
    });
    if (evicted) this.#forget(evicted);
    const post = new PostResponse(res, {
      accepts,
      expected: 1,
      batch: false,
      sse: this.#o.sse,
      headers: { ...this.gate.corsHeaders(origin), 'mcp-session-id': session.id },
    });
    post.send(
      { jsonrpc: '2.0', id: init.id, result: { ...bridge.initializeResult, protocolVersion: version } },
      true,
    );
  }

  /** The bearer challenge (401, or 403 for a missing scope) with the reason in the body. */
  #refuse(
    res: ServerResponse,
    failure: Extract<BearerResult, { ok: false }>,
    tokenGiven: boolean,
    origin: string | undefined,
  ): void {
    const c = this.gate.challenge(failure, tokenGiven);
    this.#json(
      res,
      c.status,
      { error: failure.error, error_description: failure.description },
      { ...this.gate.corsHeaders(origin), 'www-authenticate': c.header },
    );
  }

  /** The user's child, or an answer to every request saying why there is none. */
  async #bridgeFor(
    user: PoolUser,
    requests: JsonRpcRequest[],
    batch: boolean,
    res: ServerResponse,
    origin: string | undefined,
  ): Promise<Bridge | undefined> {
    try {
      return await this.#o.pool.acquire(user);
    } catch (e) {
      if (signInRequired(e)) {
        // Forgejo no longer honours the user's authorization: the same 401 as a revoked bearer, so
        // the client signs in again (a new Forgejo login stores a new credential).
        const failure = {
          ok: false,
          error: 'invalid_token',
          description: 'Forgejo no longer accepts this sign-in; sign in again',
        } as const;
        this.#refuse(res, failure, true, origin);
        return undefined;
      }
      const full = e instanceof PoolFullError;
      const answers = requests.map((r) => errorResponse(r.id, SERVER_ERROR, (e as Error).message));
      const headers: Record<string, string> = { ...this.gate.corsHeaders(origin) };
      if (full) headers['retry-after'] = String((e as PoolFullError).retryAfterSeconds);
      else this.#o.log.warn({ user: user.login, err: (e as Error).message }, 'MCP server unavailable');
      this.#json(res, full ? 503 : 200, batch ? answers : answers[0], headers);
      return undefined;
    }
  }

  #session(req: IncomingMessage, p: Principal): Session {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '')
      throw new HttpError(400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
    // Another user's session id is as unknown as a made-up one.
    const s = this.sessions.get(id, p.userId);
    if (!s) throw new HttpError(404, -32001, 'Session not found');
    if (p.tokenHash) s.tokenHash = p.tokenHash;
    const v = req.headers['mcp-protocol-version'];
    if (v !== undefined && !(LEGACY_VERSIONS as readonly unknown[]).includes(v)) {
      throw new HttpError(
        400,
        SERVER_ERROR,
        `Bad Request: Unsupported protocol version: ${String(v)} (supported versions: ${LEGACY_VERSIONS.join(', ')})`,
      );
    }
    return s;
  }

  #get(req: IncomingMessage, res: ServerResponse, p: Principal): void {
    if (req.headers['mcp-protocol-version'] === MODERN_VERSION) {
      throw new HttpError(405, SERVER_ERROR, 'Method not allowed.', undefined, { allow: 'POST' });
    }
    if (!parseAccept(req.headers.accept).sse) {
      throw new HttpError(406, SERVER_ERROR, 'Not Acceptable: Client must accept text/event-stream');
    }
    const s = this.#session(req, p);
    if (s.stream?.open)
      throw new HttpError(409, SERVER_ERROR, 'Conflict: Only one SSE stream is allowed per session');
    const stream = new SseStream(res, this.#o.sse, this.gate.corsHeaders(req.headers.origin));
    s.stream = stream;
    stream.onClose(() => {
      if (s.stream === stream) s.stream = undefined;
    });
  }

  #delete(req: IncomingMessage, res: ServerResponse, p: Principal): void {
    const s = this.#session(req, p);
    this.sessions.delete(s);
    this.#forget(s);
    res.writeHead(200, this.gate.corsHeaders(req.headers.origin));
    res.end();
  }

  /** A session is gone: its calls are cancelled and its subscriptions released. */
  #forget(s: Session): void {
    for (const b of this.#o.pool.bridgesOf(s.userId)) b.cancelOrigin(s.id, 'session closed');
    this.#dropSubscriptions(s.userId, s.id);
  }

  #dropSubscriptions(userId: number, who: string): void {
    const byUri = this.#subs.get(userId);
    if (!byUri) return;
    const bridge = this.#o.pool.bridgesOf(userId)[0];
    for (const [uri, set] of byUri) {
      if (!set.delete(who) || set.size > 0) continue;
      byUri.delete(uri);
      bridge?.call(
        { jsonrpc: '2.0', id: `unsub-${uri}`, method: 'resources/unsubscribe', params: { uri } },
        { send: () => true },
        'broker',
      );
    }
  }

  // ---- 2026-07-28 ---------------------------------------------------------------------------

  async #modern(
    req: IncomingMessage,
    res: ServerResponse,
    parsed: unknown,
    user: PoolUser,
    p: Principal,
    accepts: Accepts,
  ): Promise<void> {
    if (Array.isArray(parsed))
      throw new HttpError(400, INVALID_REQUEST, 'Invalid Request: batches are not allowed in 2026-07-28');
    const v = validateMessage(parsed);
    if (!v.ok) throw new HttpError(400, INVALID_REQUEST, `Invalid Request: ${v.reason}`);
    const m = v.message;
    if (isResponse(m))
      throw new HttpError(
        400,
        INVALID_REQUEST,
        'Invalid Request: 2026-07-28 clients answer with a retried request',
      );
    if (isNotification(m)) {
      // Cancellation is the stream closing; other notifications have nothing to act on here.
      res.writeHead(202, this.gate.corsHeaders(req.headers.origin));
      res.end();
      return;
    }
    const r = m as JsonRpcRequest;
    if (envelopeVersion(r) === undefined) {
      throw new HttpError(400, -32602, 'a 2026-07-28 request needs its _meta envelope');
    }
    const problem = checkEnvelope(r, req.headers);
    if (problem) throw new HttpError(problem.status, problem.code, problem.message, problem.data);
    if (r.method !== 'server/discover' && r.method !== 'subscriptions/listen' && !FORWARDED.has(r.method)) {
      this.#json(
        res,
        404,
        errorResponse(r.id, METHOD_NOT_FOUND, `Method not found: ${r.method}`),
        this.gate.corsHeaders(req.headers.origin),
      );
      return;
    }
    const bridge = await this.#bridgeFor(user, [r], false, res, req.headers.origin);
    if (!bridge) return;
    const headers = this.gate.corsHeaders(req.headers.origin);
    const serverInfo = bridge.initializeResult?.['serverInfo'];
    if (r.method === 'server/discover') {
      this.#json(
        res,
        200,
        { jsonrpc: '2.0', id: r.id, result: discoverResult(bridge.initializeResult ?? {}) },
        headers,
      );
      return;
    }
    if (r.method === 'subscriptions/listen') {
      this.#listen(r, res, p, bridge, headers);
      return;
    }
    const post = new PostResponse(res, { accepts, expected: 1, batch: false, sse: this.#o.sse, headers });
    const state = r.params?.['requestState'];
    if (typeof state === 'string') {
      this.#resume(r, state, post, p, serverInfo);
      return;
    }
    const origin = `m:${newSecret()}`;
    const parked: Parked = {
      userId: p.userId,
      bridge,
      origin,
      method: r.method,
      clientId: r.id,
      open: new Map(),
      post,
      created: Date.now(),
    };
    post.onAbort(() => {
      if (parked.post === post) this.#cancelModern(parked, 'client disconnected');
    });
    bridge.call(forChild(r), this.#modernSink(parked, serverInfo), origin);
  }

  /**
   * What the child says about a 2026 call: progress goes out on the POST's stream; a server-to-client
   * request ends the POST with an input_required result and parks the call until the client retries.
   */
  #modernSink(x: Parked, serverInfo: unknown): Sink {
    return {
      send: (msg, final) => {
        if (final) {
          const out =
            'result' in msg ? { ...msg, result: decorateResult(x.method, msg.result, serverInfo) } : msg;
          if (x.post && !x.post.done && x.open.size === 0) return x.post.send(out, true);
          x.final = out; // answered while parked: the retry gets it
          return true;
        }
        if (isRequest(msg)) {
          x.open.set(String(msg.id), { method: msg.method, ...(msg.params ? { params: msg.params } : {}) });
          if (x.post && !x.post.done) this.#askClient(x);
          return true;
        }
        return x.post && !x.post.done && x.open.size === 0 ? x.post.send(msg, false) : false;
      },
    };
  }

  /** Ends the current POST with the questions still open; the client retries with the answers. */
  #askClient(x: Parked): void {
    const post = x.post;
    if (!post) return;
    if (!x.key) {
      x.key = newSecret('rs_');
      this.#parked.set(x.key, x);
    }
    x.post = undefined;
    const inputRequests = Object.fromEntries(x.open);
    post.send(
      {
        jsonrpc: '2.0',
        id: x.clientId,
        result: { resultType: 'input_required', inputRequests, requestState: x.key },
      },
      true,
    );
  }

  #resume(r: JsonRpcRequest, state: string, post: PostResponse, p: Principal, serverInfo: unknown): void {
    const x = this.#parked.get(state);
    if (!x || x.userId !== p.userId || x.method !== r.method) {
      post.send(
        errorResponse(
          r.id,
          -32602,
          'requestState is unknown, expired or not yours; send the request again without it',
        ),
        true,
      );
      return;
    }
    const responses = r.params?.['inputResponses'];
    if (typeof responses !== 'object' || responses === null || Array.isArray(responses)) {
      post.send(errorResponse(r.id, -32602, 'inputResponses must be an object'), true);
      return;
    }
    x.bridge.rebind(x.origin, x.clientId, this.#modernSink(x, serverInfo), r.id);
    x.clientId = r.id;
    x.post = post;
    post.onAbort(() => {
      if (x.post === post) this.#cancelModern(x, 'client disconnected');
    });
    for (const [k, v] of Object.entries(responses as Record<string, unknown>)) {
      if (!x.open.delete(k)) continue;
      x.bridge.respond({ jsonrpc: '2.0', id: k, result: (v ?? {}) as Record<string, unknown> }, x.origin);
    }
    if (x.open.size > 0) {
      this.#askClient(x);
      return;
    }
    this.#parked.delete(state);
    x.key = undefined;
    if (x.final) post.send({ ...x.final, id: r.id } as JsonRpcMessage, true);
  }

  #cancelModern(x: Parked, reason: string): void {
    if (x.key) this.#parked.delete(x.key);
    x.bridge.notify(
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: x.clientId, reason } },
      x.origin,
    );
    for (const key of x.open.keys()) {
      x.bridge.respond(
        { jsonrpc: '2.0', id: key, error: { code: INTERNAL_ERROR, message: reason } },
        x.origin,
      );
    }
    x.open.clear();
  }

  #listen(
    r: JsonRpcRequest,
    res: ServerResponse,
    p: Principal,
    bridge: Bridge,
    headers: Record<string, string>,
  ): void {
    const n = (r.params?.['notifications'] ?? {}) as Record<string, unknown>;
    const caps = (bridge.initializeResult?.['capabilities'] ?? {}) as Record<
      string,
      { listChanged?: boolean; subscribe?: boolean }
    >;
    const uris =
      Array.isArray(n['resourceSubscriptions']) && caps['resources']?.subscribe
        ? (n['resourceSubscriptions'] as unknown[])
            .filter((u): u is string => typeof u === 'string')
            .slice(0, 1024)
        : [];
    const wants = {
      tools: n['toolsListChanged'] === true && caps['tools']?.listChanged === true,
      prompts: n['promptsListChanged'] === true && caps['prompts']?.listChanged === true,
      resources: n['resourcesListChanged'] === true && caps['resources']?.listChanged === true,
      uris: new Set(uris),
    };
    const stream = new SseStream(res, this.#o.sse, headers);
    const l: Listener = {
      userId: p.userId,
      grantId: p.grantId,
      tokenHash: p.tokenHash,
      id: r.id,
      stream,
      wants,
    };
    const who = `l:${newSecret()}`;
    this.#listeners.add(l);
    stream.onClose(() => {
      this.#listeners.delete(l);
      this.#dropSubscriptions(p.userId, who);
    });
    for (const uri of uris) {
      void this.#subscription(
        { jsonrpc: '2.0', id: `sub-${uri}`, method: 'resources/subscribe', params: { uri } },
        who,
        bridge,
        p.userId,
      );
    }
    stream.send({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: {
        notifications: {
          ...(wants.tools ? { toolsListChanged: true } : {}),
          ...(wants.prompts ? { promptsListChanged: true } : {}),
          ...(wants.resources ? { resourcesListChanged: true } : {}),
          ...(uris.length ? { resourceSubscriptions: uris } : {}),
        },
        _meta: { [`${META}subscriptionId`]: r.id },
      },
    });
    if (!wants.tools && !wants.prompts && !wants.resources && uris.length === 0) {
      stream.send({
        jsonrpc: '2.0',
        id: r.id,
        result: { resultType: 'complete', _meta: { [`${META}subscriptionId`]: r.id } },
      });
      stream.end();
    }
  }

  // ---- revocation and housekeeping -----------------------------------------------------------

  #revokeGrant(grantId: string, userId: number): void {
    for (const s of this.sessions.ofGrant(grantId)) {
      this.sessions.delete(s);
      this.#forget(s);
    }
    for (const l of this.#listeners) if (l.grantId === grantId) l.stream.end();
    this.#stopIfUnused(userId);
  }

  /** One access token revoked: what it opened closes; the grant's other sessions live on. */
  #revokeToken(tokenHash: string, userId: number): void {
    for (const s of this.sessions.ofUser(userId)) {
      if (s.tokenHash !== tokenHash) continue;
      this.sessions.delete(s);
      this.#forget(s);
    }
    for (const l of this.#listeners) if (l.tokenHash === tokenHash) l.stream.end();
    this.#stopIfUnused(userId);
  }

  #revokeUser(userId: number): void {
    for (const s of this.sessions.ofUser(userId)) {
      this.sessions.delete(s);
      this.#forget(s);
    }
    for (const l of this.#listeners) if (l.userId === userId) l.stream.end();
    void this.#o.pool.stopUser(userId, 'access was revoked');
  }

  /** With no session or stream of the user left, their child has nobody to serve. */
  #stopIfUnused(userId: number): void {
    if (this.sessions.ofUser(userId).length > 0) return;
    for (const l of this.#listeners) if (l.userId === userId) return;
    if (this.#o.pool.bridgesOf(userId).some((b) => b.inFlight > 0)) return;
    void this.#o.pool.stopUser(userId, 'access was revoked');
  }

  #sweep(): void {
    this.sessions.sweep();
    const now = Date.now();
    for (const x of [...this.#parked.values()])
      if (now - x.created > this.#o.parkTtlMs) this.#cancelModern(x, 'no answer in time');
  }

  /** Shutdown: streams end so clients reconnect elsewhere. */
  close(): void {
    clearInterval(this.#sweeper);
    for (const s of this.sessions.all()) s.stream?.end();
    for (const l of this.#listeners) l.stream.end();
  }
}
