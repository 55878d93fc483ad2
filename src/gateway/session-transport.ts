// The 2025 revisions (2025-03-26, 2025-06-18, 2025-11-25): initialize makes a session (a cheap record
// pointing at the user's child), POSTs carry its Mcp-Session-Id, GET opens its stream, DELETE ends it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bridge } from '../bridge/bridge.ts';
import {
  INVALID_REQUEST,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  SERVER_ERROR,
  validateMessage,
} from '../bridge/jsonrpc.ts';
import { type ConnectionPolicy, filteringSink } from '../policy/policy.ts';
import type { PoolUser } from '../pool/pool.ts';
import { observedSink } from './call-observer.ts';
import { MODERN_VERSION } from './envelope.ts';
import type { Principal } from './gate.ts';
import { bridgeFor, HttpError, refuse } from './http-errors.ts';
import { type Accepts, PostResponse, parseAccept } from './post-response.ts';
import { limitedSink } from './result-limit.ts';
import type { Routing } from './routing.ts';
import { oversized, type Session } from './sessions.ts';
import { SseStream } from './sse.ts';
import { type GatewayContext, LEGACY_VERSIONS, policyOf, policyRefusal } from './types.ts';

export class SessionTransport {
  readonly #ctx: GatewayContext;
  readonly #routing: Routing;

  constructor(ctx: GatewayContext, routing: Routing) {
    this.#ctx = ctx;
    this.#routing = routing;
  }

  async post(
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
    const session = await this.#session(req, p);
    if (batch && session.protocolVersion !== '2025-03-26') {
      throw new HttpError(
        400,
        INVALID_REQUEST,
        `Invalid Request: batches are not allowed in protocol version ${session.protocolVersion}`,
      );
    }
    const { pool } = this.#ctx.o;
    for (const m of messages) {
      if (isResponse(m)) pool.respond(p.userId, m, session.id);
      else if (isNotification(m)) this.#notify(session, m);
    }
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      res.writeHead(202, this.#ctx.gate.corsHeaders(req.headers.origin));
      res.end();
      return;
    }
    const bridge = await bridgeFor(this.#ctx, user, requests, batch, res, req.headers.origin);
    if (!bridge) return;
    const post = new PostResponse(res, {
      accepts,
      expected: requests.length,
      batch,
      sse: this.#ctx.o.sse,
      headers: this.#ctx.gate.corsHeaders(req.headers.origin),
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
    const policy = policyOf(this.#ctx.o, p);
    for (const r of requests) this.#request(r, session, bridge, post, user, p, policy);
  }

  #request(
    r: JsonRpcRequest,
    session: Session,
    bridge: Bridge,
    post: PostResponse,
    user: PoolUser,
    p: Principal,
    policy: ConnectionPolicy,
  ): void {
    const refused = policyRefusal(this.#ctx.o, p, policy, r);
    if (refused) {
      post.send(refused, true);
      return;
    }
    if (r.method === 'ping') {
      post.send({ jsonrpc: '2.0', id: r.id, result: {} }, true);
      return;
    }
    if (r.method === 'resources/subscribe' || r.method === 'resources/unsubscribe') {
      void this.#routing
        .subscription(r, session.id, bridge, user.id, session.grantId)
        .then((m) => post.send(m, true));
      return;
    }
    const { maxResultChars = 0, log, onCall } = this.#ctx.o;
    const sink = limitedSink(r, post.sink, maxResultChars, log, user.id);
    bridge.call(
      r,
      filteringSink(policy, r.method, observedSink(r, p, sink, onCall)),
      session.id,
      session.grantId,
    );
  }

  #notify(session: Session, m: JsonRpcNotification): void {
    const { pool } = this.#ctx.o;
    if (m.method === 'notifications/cancelled') {
      for (const b of pool.bridgesOf(session.userId)) b.notify(m, session.id);
      return;
    }
    if (m.method === 'notifications/initialized') return;
    const b = pool.bridgesOf(session.userId)[0];
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
    const caps = init.params?.['capabilities'];
    const clientInfo = init.params?.['clientInfo'];
    const tooLong = oversized(clientInfo, caps);
    if (tooLong) throw new HttpError(400, -32602, `Invalid params: ${tooLong}`);
    const bridge = await bridgeFor(this.#ctx, user, [init], false, res, origin);
    if (!bridge) return;
    const created = await this.#stored('recording a session', () =>
      this.#ctx.sessions.create({
        userId: p.userId,
        login: p.login,
        grantId: p.grantId,
        ...(p.tokenHash ? { tokenHash: p.tokenHash } : {}),
        protocolVersion: version,
        clientInfo,
        clientCapabilities:
          typeof caps === 'object' && caps !== null && !Array.isArray(caps)
            ? (caps as Record<string, unknown>)
            : {},
      }),
    );
    if (!created) {
      // The grant was revoked between the bearer check and now.
      const failure = {
        ok: false,
        error: 'invalid_token',
        description: 'the token is unknown or revoked',
      } as const;
      refuse(this.#ctx, res, failure, true, origin);
      return;
    }
    const { session, evicted } = created;
    if (evicted) this.forget(evicted);
    const post = new PostResponse(res, {
      accepts,
      expected: 1,
      batch: false,
      sse: this.#ctx.o.sse,
      headers: { ...this.#ctx.gate.corsHeaders(origin), 'mcp-session-id': session.id },
    });
    post.send(
      { jsonrpc: '2.0', id: init.id, result: { ...bridge.initializeResult, protocolVersion: version } },
      true,
    );
  }

  async #session(req: IncomingMessage, p: Principal): Promise<Session> {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '')
      throw new HttpError(400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
    // Another user's session id is as unknown as a made-up one, and so is another app's of the same
    // user: what the child says to a session must reach only the grant that opened it. One held
    // here needs no store; one that is not (opened on another replica, or before a restart) is read.
    const { sessions } = this.#ctx;
    const s =
      sessions.get(id, p.userId) ??
      (sessions.holds(id)
        ? undefined
        : await this.#stored('reading a session', () => sessions.load(id, p.userId, p.grantId)));
    if (!s || s.grantId !== p.grantId) throw new HttpError(404, -32001, 'Session not found');
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

  /** A step in the session store; the store away is a 503 the client may retry, never a stack. */
  async #stored<T>(what: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      this.#ctx.o.log.error(
        { err: { message: (e as Error).message } },
        `${what} in the session store failed`,
      );
      throw new HttpError(
        503,
        SERVER_ERROR,
        'the session store is unavailable; try again shortly',
        undefined,
        {
          'retry-after': '1',
        },
      );
    }
  }

  async get(req: IncomingMessage, res: ServerResponse, p: Principal): Promise<void> {
    if (req.headers['mcp-protocol-version'] === MODERN_VERSION) {
      throw new HttpError(405, SERVER_ERROR, 'Method not allowed.', undefined, { allow: 'POST' });
    }
    if (!parseAccept(req.headers.accept).sse) {
      throw new HttpError(406, SERVER_ERROR, 'Not Acceptable: Client must accept text/event-stream');
    }
    const s = await this.#session(req, p);
    if (s.stream?.open)
      throw new HttpError(409, SERVER_ERROR, 'Conflict: Only one SSE stream is allowed per session');
    const stream = new SseStream(res, this.#ctx.o.sse, this.#ctx.gate.corsHeaders(req.headers.origin));
    s.stream = stream;
    if (p.tokenHash) s.streamTokenHash = p.tokenHash;
    else delete s.streamTokenHash;
    stream.endAt(p.expiresAt);
    stream.onClose(() => {
      if (s.stream === stream) s.stream = undefined;
    });
  }

  async delete(req: IncomingMessage, res: ServerResponse, p: Principal): Promise<void> {
    const s = await this.#session(req, p);
    this.forget(s);
    // Everywhere: the other replicas holding it hear of it through the store's change log.
    await this.#stored('ending a session', () => this.#ctx.sessions.end(s));
    res.writeHead(200, this.#ctx.gate.corsHeaders(req.headers.origin));
    res.end();
  }

  /** A session is gone: its calls are cancelled and its subscriptions released. */
  forget(s: Session): void {
    for (const b of this.#ctx.o.pool.bridgesOf(s.userId)) b.cancelOrigin(s.id, 'session closed');
    this.#routing.dropSubscriptions(s.userId, s.id);
  }
}
