// One child's JSON-RPC over stdio, shared by many client sessions (design decision 1). The broker
// is the child's only MCP client: it performs the one `initialize`, rewrites every request id (and
// progress token) into its own space so sessions cannot collide, and routes what comes back to the
// stream of the request it belongs to.
import {
  errorResponse,
  INTERNAL_ERROR,
  isNotification,
  isRequest,
  isResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  progressTokenOf,
  REQUEST_CANCELLED,
  REQUEST_TIMEOUT,
  SERVER_ERROR,
} from './jsonrpc.ts';

export type ChildExit = { code: number | null; signal: string | null };

/** What the bridge needs of a child process: framed lines in, framed lines out, an exit. */
export interface ChildChannel {
  /** Writes one serialized message (no newline); rejects when the child is gone or its queue is full. */
  send(line: string): Promise<void>;
  onLine(cb: (line: string) => void): void;
  /** A stdout line over the size cap, skipped; head and tail help find whose response it was. */
  onOversize(cb: (o: { bytes: number; head: string; tail: string }) => void): void;
  readonly exited: Promise<ChildExit>;
}

/** Where messages for one client request go: the HTTP stream that carried it. */
export interface Sink {
  /** Delivers a message; `final` marks the response that ends the request. False when the stream is gone. */
  send(msg: JsonRpcMessage, final: boolean): boolean;
}

export type BridgeEvents = {
  /** Notifications that belong to no request (list changes, resource updates, logging). */
  notification(msg: JsonRpcNotification): void;
  /**
   * A server-to-client request with no call in flight to carry it: return a sink (e.g. a GET
   * stream) and the origin allowed to answer it.
   */
  orphanRequest(msg: JsonRpcRequest): { sink: Sink; origin: string } | undefined;
  /** A stdout line that is not JSON-RPC: logged by the owner, never forwarded. */
  garbage(info: { bytes: number; reason: string }): void;
  /** A message from the child that no one may safely receive: dropped, for the owner to log. */
  dropped?(info: { method: string; reason: string }): void;
};

/**
 * Notifications about the child itself rather than about any call: every client of the child may
 * have them. Anything else a child says unasked (a log message, say) belongs to a call.
 */
export const CHILD_WIDE_NOTIFICATIONS: ReadonlySet<string> = new Set([
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
  'notifications/resources/updated',
]);

export type BridgeOptions = {
  initTimeoutMs: number;
  callTimeoutMs: number;
  maxLineBytes: number;
  clientInfo: { name: string; version: string };
  protocolVersion: string;
  events: BridgeEvents;
};

export class BridgeError extends Error {
  override name = 'BridgeError';
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

type Pending = {
  sink: Sink;
  origin: string;
  /** Who may see what the child says during this call: the client app (grant) behind `origin`. */
  party: string;
  clientId: JsonRpcId;
  method: string;
  progressToken?: JsonRpcId;
  timer?: NodeJS.Timeout;
  started: number;
  /** Server-to-client requests this call is waiting on; its timeout pauses meanwhile. */
  waiting: number;
  /** How long the call may go without a word from the child (the default, or a task's lifetime). */
  timeoutMs: number;
};

type ServerRequest = { childId: JsonRpcId; origin: string; call?: number };

// Server-to-client request ids are unique across all bridges, so a session that outlives a child
// (rotation, respawn) never sees two different requests with one id.
let serverRequestSerial = 0;

export class Bridge {
  readonly #ch: ChildChannel;
  readonly #opts: BridgeOptions;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #serverRequests = new Map<string, ServerRequest>();
  #init?: Promise<Record<string, unknown>>;
  #initResult?: Record<string, unknown>;
  #closed?: string;
  #exit?: ChildExit;
  #drainWaiters: (() => void)[] = [];

  constructor(channel: ChildChannel, options: BridgeOptions) {
    this.#ch = channel;
    this.#opts = options;
    channel.onLine((line) => this.#onLine(line));
    channel.onOversize((o) => this.#onOversize(o));
    void channel.exited.then((exit) => {
      this.#exit = exit;
      this.close(this.#exitReason(exit));
    });
  }

  get inFlight(): number {
    return this.#pending.size;
  }
  get closed(): boolean {
    return this.#closed !== undefined;
  }
  get initializeResult(): Record<string, unknown> | undefined {
    return this.#initResult;
  }

  /** The child's one handshake; later callers share the first attempt. */
  initialize(): Promise<Record<string, unknown>> {
    this.#init ??= this.#handshake();
    return this.#init;
  }

  async #handshake(): Promise<Record<string, unknown>> {
    const response = await new Promise<JsonRpcResponse>((resolve, reject) => {
      const sink: Sink = {
        send: (msg, final) => {
          if (final) resolve(msg as JsonRpcResponse);
          return true;
        },
      };
      const req: JsonRpcRequest = {
        jsonrpc: '2.0',
        id: 'broker-initialize',
        method: 'initialize',
        params: {
          protocolVersion: this.#opts.protocolVersion,
          // The union of what clients may offer: a request reaching a session that lacks it is
          // answered by that client with an error, which goes back to the child.
          capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
          clientInfo: this.#opts.clientInfo,
        },
      };
      this.#dispatch(req, sink, 'broker', this.#opts.initTimeoutMs, 'broker').catch(reject);
    });
    if ('error' in response) {
      throw new BridgeError(
        response.error.code === REQUEST_TIMEOUT ? REQUEST_TIMEOUT : SERVER_ERROR,
        `the MCP server did not initialize: ${response.error.message}`,
      );
    }
    await this.#ch.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    this.#initResult = response.result;
    return response.result;
  }

  /**
   * Forwards a client's request; everything the child says about it goes to `sink`, the final
   * response last. `origin` names the session, for server-to-client routing and cancellation.
   */
  call(req: JsonRpcRequest, sink: Sink, origin: string, party = origin): void {
    this.#dispatch(req, sink, origin, this.#opts.callTimeoutMs, party).catch((e: Error) => {
      // A BridgeError's message is the broker's own; anything else is internal and stays out.
      if (e instanceof BridgeError) sink.send(errorResponse(req.id, e.code, e.message), true);
      else sink.send(errorResponse(req.id, INTERNAL_ERROR, 'internal error'), true);
    });
  }

  async #dispatch(
    req: JsonRpcRequest,
    sink: Sink,
    origin: string,
    timeoutMs: number,
    party: string,
  ): Promise<void> {
    if (this.#closed) throw new BridgeError(SERVER_ERROR, this.#closed);
    const id = this.#nextId++;
    const p: Pending = {
      sink,
      origin,
      party,
      clientId: req.id,
      method: req.method,
      started: Date.now(),
      waiting: 0,
      timeoutMs,
    };
    let params = req.params;
    const token = progressTokenOf(req);
    if (token !== undefined) {
      p.progressToken = token;
      // Two sessions may both use progress token 1: the child sees the broker's own id instead.
      params = { ...params, _meta: { ...(params?.['_meta'] as object), progressToken: id } };
    }
    this.#pending.set(id, p);
    this.#arm(id, p, timeoutMs);
    const line = JSON.stringify({ jsonrpc: '2.0', id, method: req.method, ...(params ? { params } : {}) });
    try {
      await this.#ch.send(line);
    } catch (e) {
      this.#settle(id);
      throw new BridgeError(SERVER_ERROR, `cannot write to the MCP server: ${(e as Error).message}`);
    }
  }

  #arm(id: number, p: Pending, timeoutMs: number): void {
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      if (!this.#settle(id)) return;
      p.sink.send(
        errorResponse(p.clientId, REQUEST_TIMEOUT, `request timed out after ${timeoutMs} ms`),
        true,
      );
      this.#sendToChild({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: id, reason: 'timeout' },
      });
    }, timeoutMs);
    p.timer.unref();
  }

  /** Removes a pending call; false if it was already gone. */
  #settle(id: number): boolean {
    const p = this.#pending.get(id);
    if (!p) return false;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    if (this.#pending.size === 0) for (const w of this.#drainWaiters.splice(0)) w();
    return true;
  }

  /** A client notification: cancellation is rewritten to the child's id; lifecycle ones stay here. */
  notify(msg: JsonRpcNotification, origin: string): void {
    if (msg.method === 'notifications/initialized') return; // the broker initialized the child once
    if (msg.method === 'notifications/cancelled') {
      const requestId = msg.params?.['requestId'];
      for (const [id, p] of this.#pending) {
        if (p.origin === origin && p.clientId === requestId) {
          this.#settle(id);
          this.#sendToChild({ ...msg, params: { ...msg.params, requestId: id } });
          // The child will not answer a cancelled call, but the client's HTTP stream for it is still
          // open: it ends with the call's error (a client that cancelled ignores it).
          p.sink.send(errorResponse(p.clientId, REQUEST_CANCELLED, 'Request cancelled'), true);
        }
      }
      return;
    }
    this.#sendToChild(msg);
  }

  /**
   * Moves a call to another stream under a new client id: a 2026 client answers a server-to-client
   * request by retrying its request on a new POST, and the child's call continues there.
   */
  rebind(origin: string, clientId: JsonRpcId, sink: Sink, newClientId: JsonRpcId): boolean {
    for (const p of this.#pending.values()) {
      if (p.origin === origin && p.clientId === clientId) {
        p.sink = sink;
        p.clientId = newClientId;
        return true;
      }
    }
    return false;
  }

  /**
   * Gives a call a timeout of its own: a call that became a task may run for the task's lifetime,
   * not the ordinary call timeout. False if no such call is in flight.
   */
  extend(origin: string, clientId: JsonRpcId, timeoutMs: number): boolean {
    for (const [id, p] of this.#pending) {
      if (p.origin !== origin || p.clientId !== clientId) continue;
      p.timeoutMs = timeoutMs;
      if (p.waiting === 0) this.#arm(id, p, timeoutMs);
      return true;
    }
    return false;
  }

  /**
   * Cancels every call of one origin (its session closed, or its HTTP stream dropped mid-call); a
   * stream still open gets the call's error.
   */
  cancelOrigin(origin: string, reason: string): void {
    for (const [id, p] of this.#pending) {
      if (p.origin !== origin) continue;
      this.#settle(id);
      this.#sendToChild({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: id, reason },
      });
      p.sink.send(errorResponse(p.clientId, REQUEST_CANCELLED, `Request cancelled: ${reason}`), true);
    }
  }

  /** Whether a server-to-client request id belongs to this bridge (and so its answer does). */
  owns(serverRequestId: JsonRpcId): boolean {
    return typeof serverRequestId === 'string' && this.#serverRequests.has(serverRequestId);
  }

  /** A client's answer to a server-to-client request; only the session it was sent to may answer. */
  respond(msg: JsonRpcResponse, origin: string): boolean {
    const key = msg.id;
    const sr = typeof key === 'string' ? this.#serverRequests.get(key) : undefined;
    if (!sr || sr.origin !== origin) return false;
    this.#serverRequests.delete(key as string);
    if (sr.call !== undefined) {
      const p = this.#pending.get(sr.call);
      if (p && --p.waiting === 0) this.#arm(sr.call, p, p.timeoutMs);
    }
    this.#sendToChild({ ...msg, id: sr.childId } as JsonRpcResponse);
    return true;
  }

  #sendToChild(msg: JsonRpcMessage): void {
    if (this.#closed) return;
    this.#ch.send(JSON.stringify(msg)).catch(() => {});
  }

  #onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.#opts.events.garbage({ bytes: Buffer.byteLength(line), reason: 'not JSON' });
      return;
    }
    for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
      if (typeof m !== 'object' || m === null || (m as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
        this.#opts.events.garbage({ bytes: Buffer.byteLength(line), reason: 'not a JSON-RPC 2.0 message' });
        continue;
      }
      this.#route(m as JsonRpcMessage);
    }
  }

  #route(m: JsonRpcMessage): void {
    if (isResponse(m)) {
      const id = typeof m.id === 'number' ? m.id : -1;
      const p = this.#pending.get(id);
      if (!p || !this.#settle(id)) return; // late answer to a cancelled or timed-out call
      p.sink.send({ ...m, id: p.clientId } as JsonRpcResponse, true);
      return;
    }
    if (isRequest(m)) {
      this.#serverRequest(m);
      return;
    }
    if (isNotification(m)) {
      if (m.method === 'notifications/progress') {
        const id = Number(m.params?.['progressToken']);
        const p = this.#pending.get(id);
        if (p?.progressToken === undefined) return;
        this.#arm(id, p, p.timeoutMs); // progress proves the call is alive
        p.sink.send({ ...m, params: { ...m.params, progressToken: p.progressToken } }, false);
        return;
      }
      if (m.method === 'notifications/cancelled') {
        const rid = m.params?.['requestId'];
        for (const [key, sr] of this.#serverRequests)
          if (sr.childId === rid) this.#serverRequests.delete(key);
        return;
      }
      if (CHILD_WIDE_NOTIFICATIONS.has(m.method)) {
        this.#opts.events.notification(m);
        return;
      }
      const caller = this.#caller();
      if (caller === 'ambiguous') this.#drop(m.method, 'calls of several client apps are in flight');
      else if (caller) caller.pending.sink.send(m, false);
      else this.#opts.events.notification(m);
    }
  }

  /**
   * The call a message the child sent unasked belongs to. stdio carries no link to the request that
   * caused it, so it is the most recent call in flight (a tool asking or logging is normally the
   * call waiting on it) — but only while every call in flight is of one client app: across apps
   * that would be a guess, and the message is dropped instead.
   */
  #caller(): { id: number; pending: Pending } | 'ambiguous' | undefined {
    let found: { id: number; pending: Pending } | undefined;
    for (const [id, p] of this.#pending) {
      if (p.origin === 'broker') continue;
      if (found && found.pending.party !== p.party) return 'ambiguous';
      if (!found || p.started >= found.pending.started) found = { id, pending: p };
    }
    return found;
  }

  #drop(method: string, reason: string): void {
    this.#opts.events.dropped?.({ method, reason });
  }

  /**
   * A server-to-client request goes to the call it belongs to (see #caller), or, with no call in
   * flight, to a session's standalone stream the owner picks; it is refused when it cannot be
   * attributed to one client app.
   */
  #serverRequest(m: JsonRpcRequest): void {
    const caller = this.#caller();
    if (caller === 'ambiguous') {
      this.#drop(m.method, 'calls of several client apps are in flight');
      this.#sendToChild(
        errorResponse(m.id, INTERNAL_ERROR, 'no single client session can answer this request now'),
      );
      return;
    }
    const callId = caller?.id;
    const target = caller?.pending;
    const key = `srv-${++serverRequestSerial}`;
    const forwarded: JsonRpcRequest = { ...m, id: key };
    let sink: Sink | undefined = target?.sink;
    let origin = target?.origin;
    if (!sink) {
      const orphan = this.#opts.events.orphanRequest(forwarded);
      sink = orphan?.sink;
      origin = orphan?.origin;
    }
    if (!sink || origin === undefined) {
      this.#sendToChild(errorResponse(m.id, INTERNAL_ERROR, 'no client session can answer this request now'));
      return;
    }
    this.#serverRequests.set(key, {
      childId: m.id,
      origin,
      ...(callId === undefined ? {} : { call: callId }),
    });
    if (target && callId !== undefined) {
      target.waiting++;
      clearTimeout(target.timer);
    }
    if (!sink.send(forwarded, false)) {
      this.#serverRequests.delete(key);
      this.#sendToChild(errorResponse(m.id, INTERNAL_ERROR, 'the client stream closed'));
    }
  }

  /** A response line too long to buffer fails only the call it answered, found by its id. */
  #onOversize(o: { bytes: number; head: string; tail: string }): void {
    const idMatch = /"id"\s*:\s*(\d+)/.exec(o.head) ?? /"id"\s*:\s*(\d+)\s*}\s*$/.exec(o.tail);
    const id = idMatch ? Number(idMatch[1]) : undefined;
    const p = id === undefined ? undefined : this.#pending.get(id);
    this.#opts.events.garbage({ bytes: o.bytes, reason: `line over ${this.#opts.maxLineBytes} bytes` });
    if (p && id !== undefined && this.#settle(id)) {
      p.sink.send(
        errorResponse(
          p.clientId,
          INTERNAL_ERROR,
          `the MCP server's response (${o.bytes} bytes) exceeds the broker's limit of ${this.#opts.maxLineBytes} bytes`,
        ),
        true,
      );
    }
  }

  /** What clients are told: the child's own output (its stderr) is for the log only. */
  #exitReason(exit: ChildExit): string {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
    return `the MCP server ${how}`;
  }

  /** Fails every call still in flight with `reason`; later calls fail at once. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const [id, p] of [...this.#pending]) {
      this.#settle(id);
      p.sink.send(errorResponse(p.clientId, SERVER_ERROR, reason), true);
    }
    this.#serverRequests.clear();
  }

  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /** Resolves when no call is in flight (rotation lets the old child finish its work first). */
  drained(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }
}
