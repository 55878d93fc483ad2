// 2026 multi-round-trip requests on top of a 2025 child. The child asks with real server-to-client
// requests (sampling, elicitation, roots); the broker ends the client's POST with an
// InputRequiredResult holding every question of the burst, parks the call, and hands out a sealed
// requestState. The client's retry carries the answers to the child and the call continues on the
// new POST. Questions the client did not declare the capability for are refused back to the child,
// and a call that then fails says so with -32021.
import type { Bridge, Sink } from '../bridge/bridge.ts';
import {
  errorResponse,
  INTERNAL_ERROR,
  isNotification,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../bridge/jsonrpc.ts';
import type { ConnectionPolicy } from '../policy/policy.ts';
import { newSecret } from '../store/secrets.ts';
import { type CallObserver, observedSink } from './call-observer.ts';
import {
  capabilityFor,
  clientCapabilitiesOf,
  decorateResult,
  forChild,
  logLevelOf,
  MISSING_CAPABILITY,
  translateError,
  wantsLog,
} from './envelope.ts';
import type { Principal } from './gate.ts';
import type { PostResponse } from './post-response.ts';
import { answersAhead, questionKey } from './questions.ts';
import { RequestStateSealer } from './request-state.ts';
import { negotiatesTasks, type Tasks } from './tasks.ts';
import type { Parked } from './types.ts';

/**
 * How long the first question of a burst waits for the others. A child asking several things at
 * once writes them back to back, so a few milliseconds collect them; the window is fixed, never
 * extended, so a lone question costs at most this much.
 */
export const SETTLE_MS = 25;

/** Whether a tool call may become a task: at once (task-only tools), when slow, or never. */
export type TaskMode = 'now' | 'when-slow' | 'never';

/** A call may leave at most this many questions open; more is a child gone wrong. */
const MAX_OPEN = 32;

export class ParkedCalls {
  readonly #parked = new Map<string, Parked>();
  readonly #ttlMs: number;
  readonly #limit: (r: JsonRpcRequest, sink: Sink, userId: number) => Sink;
  readonly #sealer: RequestStateSealer;
  readonly #tasks: Tasks;
  readonly #onCall: CallObserver | undefined;

  /**
   * `limit` wraps the child's answer to a call (tool results cut to size); `stateKey` seals the
   * requestState (the same on every replica; absent: a random key of this process).
   */
  constructor(
    ttlMs: number,
    tasks: Tasks,
    onCall?: CallObserver,
    limit: (r: JsonRpcRequest, sink: Sink, userId: number) => Sink = (_r, s) => s,
    stateKey?: Buffer,
  ) {
    this.#sealer = new RequestStateSealer(stateKey);
    this.#onCall = onCall;
    this.#ttlMs = ttlMs;
    this.#tasks = tasks;
    this.#limit = limit;
  }

  get size(): number {
    return this.#parked.size;
  }

  /**
   * Sends a new 2026 call to the child, answering on `post` until the child asks the client
   * something. Answers sent ahead (`inputResponses` without a `requestState`) are kept: a question
   * the broker would put under one of their keys is answered with it at once.
   */
  start(
    r: JsonRpcRequest,
    post: PostResponse,
    p: Principal,
    bridge: Bridge,
    serverInfo: unknown,
    policy: ConnectionPolicy,
    taskMode: TaskMode = 'when-slow',
  ): void {
    const x: Parked = {
      handle: newSecret(),
      userId: p.userId,
      grantId: p.grantId,
      policy,
      bridge,
      origin: `m:${newSecret()}`,
      method: r.method,
      ...(r.params ? { params: r.params } : {}),
      clientId: r.id,
      caps: clientCapabilitiesOf(r),
      refused: {},
      open: new Map(),
      ahead: answersAhead(r.params?.['inputResponses'], MAX_OPEN),
      round: 0,
      post,
      created: Date.now(),
      mayBecomeTask: taskMode === 'when-slow',
      logLevel: logLevelOf(r),
    };
    this.#watch(x, post);
    const sink = this.#limit(r, this.#sink(x, serverInfo), p.userId);
    bridge.call(forChild(r), observedSink(r, p, sink, this.#onCall), x.origin, p.grantId);
    if (taskMode === 'now') this.#toTask(x);
    else this.#armTask(x, r);
  }

  /** A tool call of a client that negotiated tasks becomes one if it is still running in a while. */
  #armTask(x: Parked, r: JsonRpcRequest): void {
    clearTimeout(x.taskTimer);
    if (
      !x.mayBecomeTask ||
      this.#tasks.afterMs <= 0 ||
      x.method !== 'tools/call' ||
      x.task ||
      !negotiatesTasks(r)
    )
      return;
    x.taskTimer = setTimeout(() => this.#toTask(x), this.#tasks.afterMs);
    x.taskTimer.unref();
  }

  #toTask(x: Parked): void {
    const post = x.post;
    if (!post || post.done || x.open.size > 0 || x.final) return;
    const task = this.#tasks.create(x, {
      open: x.open,
      answer: (key, value) => {
        const q = x.open.get(key);
        if (!q) return false;
        x.open.delete(key);
        return x.bridge.respond({ jsonrpc: '2.0', id: q.childKey, result: value }, x.origin);
      },
      cancel: (reason) => this.#cancel(x, reason),
    });
    if (!task) return; // the user holds as many tasks as allowed: it stays an ordinary call
    x.task = task;
    x.post = undefined;
    this.#parked.delete(x.handle);
    x.bridge.extend(x.origin, x.clientId, this.#tasks.ttlMs);
    post.send({ jsonrpc: '2.0', id: x.clientId, result: this.#tasks.created(task) }, true);
  }

  /**
   * What the child says about a 2026 call: progress goes out on the POST's stream; a server-to-client
   * request becomes a question for the client, or is refused when the client cannot answer it.
   */
  #sink(x: Parked, serverInfo: unknown): Sink {
    return {
      send: (msg, final) => {
        if (final) {
          this.#finish(x, this.#answer(x, msg, serverInfo));
          return true;
        }
        if (isRequest(msg)) {
          this.#question(x, msg);
          return true;
        }
        // A 2026 client gets log messages only when, and from the level, it asked for them.
        if (
          isNotification(msg) &&
          msg.method === 'notifications/message' &&
          !wantsLog(x.logLevel, msg.params?.['level'])
        )
          return true;
        return x.post && !x.post.done && x.open.size === 0 ? x.post.send(msg, false) : false;
      },
    };
  }

  /** The child's final answer as the 2026 client must see it. */
  #answer(x: Parked, msg: JsonRpcMessage, serverInfo: unknown): { msg: JsonRpcMessage; status?: number } {
    const refused = Object.keys(x.refused).length > 0;
    const failed = 'error' in msg || ('result' in msg && msg.result['isError'] === true);
    if (refused && failed) {
      const names = Object.keys(x.refused).join(', ');
      return {
        msg: errorResponse(
          x.clientId,
          MISSING_CAPABILITY,
          `this request needs client capabilities: ${names}`,
          {
            requiredCapabilities: x.refused,
          },
        ),
        status: 400,
      };
    }
    if ('error' in msg) return { msg: { ...msg, error: translateError(x.method, x.params, msg.error) } };
    if ('result' in msg) {
      const result = decorateResult(x.method, x.policy.filterResult(x.method, msg.result), serverInfo);
      return { msg: { ...msg, result } };
    }
    return { msg };
  }

  /** The call is over: the answer goes out now, or to the retry if the client is away. */
  #finish(x: Parked, out: { msg: JsonRpcMessage; status?: number }): void {
    clearTimeout(x.settle);
    clearTimeout(x.taskTimer);
    x.open.clear(); // questions the child no longer waits for
    if (x.task) {
      const m = out.msg;
      this.#tasks.settle(
        x.task,
        'error' in m ? { error: m.error } : { result: 'result' in m ? m.result : {} },
      );
      return;
    }
    const post = x.post;
    if (post && !post.done) {
      this.#parked.delete(x.handle);
      if (out.status) post.setStatus(out.status);
      post.send(out.msg, true);
      return;
    }
    x.final = out.msg;
  }

  #question(x: Parked, msg: JsonRpcRequest): void {
    const childKey = String(msg.id);
    const need = capabilityFor(msg.method);
    if (!need || x.caps[need] === undefined) {
      // The client cannot answer it: the child hears no, so a child that can do without falls back.
      const reason = need
        ? `the client did not declare the ${need} capability`
        : `${msg.method} cannot be put to a 2026-07-28 client`;
      if (need) x.refused[need] = {};
      x.bridge.respond(
        errorResponse(
          childKey,
          MISSING_CAPABILITY,
          reason,
          need ? { requiredCapabilities: { [need]: {} } } : undefined,
        ),
        x.origin,
      );
      return;
    }
    const key = questionKey(msg, x.open);
    const ahead = x.ahead.get(key);
    if (ahead) {
      x.ahead.delete(key);
      x.bridge.respond({ jsonrpc: '2.0', id: childKey, result: ahead }, x.origin);
      return;
    }
    if (x.open.size >= MAX_OPEN) {
      x.bridge.respond(errorResponse(childKey, INTERNAL_ERROR, 'too many questions open at once'), x.origin);
      return;
    }
    x.open.set(key, { childKey, method: msg.method, ...(msg.params ? { params: msg.params } : {}) });
    if (x.task) this.#tasks.touch(x.task); // tasks/get now shows it, status input_required
    if (x.post && !x.post.done && !x.settle) {
      // setImmediate after the window: whatever the child wrote meanwhile is read (poll phase)
      // before the client is asked (check phase), however late the timer fires on a busy machine.
      x.settle = setTimeout(() => setImmediate(() => this.#askClient(x)), SETTLE_MS);
      x.settle.unref();
    }
  }

  /** Ends the current POST with every question still open; the client retries with the answers. */
  #askClient(x: Parked): void {
    clearTimeout(x.settle);
    clearTimeout(x.taskTimer);
    x.settle = undefined;
    const post = x.post;
    if (!post || post.done || x.open.size === 0) return;
    x.post = undefined;
    x.round++;
    this.#parked.set(x.handle, x);
    const requestState = this.#sealer.seal({
      call: x.handle,
      userId: x.userId,
      grantId: x.grantId,
      method: x.method,
      round: x.round,
      exp: x.created + this.#ttlMs,
    });
    const inputRequests = Object.fromEntries(
      [...x.open].map(([k, q]) => [k, { method: q.method, ...(q.params ? { params: q.params } : {}) }]),
    );
    post.send(
      {
        jsonrpc: '2.0',
        id: x.clientId,
        result: { resultType: 'input_required', inputRequests, requestState },
      },
      true,
    );
  }

  /**
   * The client's retry with `requestState`: its answers go to the child, the call continues on
   * `post`. False for a genuine state of this user, grant and method that another broker process
   * sealed (another replica, or this one before a restart): the call parked there cannot go on
   * here, so the caller starts it afresh with the answers as answers sent ahead (the child's
   * questions come again under the same keys and are answered at once).
   */
  resume(r: JsonRpcRequest, state: string, post: PostResponse, p: Principal, serverInfo: unknown): boolean {
    const c = this.#sealer.open(state);
    if (
      c &&
      c.by !== this.#sealer.process &&
      c.userId === p.userId &&
      c.grantId === p.grantId &&
      c.method === r.method
    )
      return false;
    const x = c ? this.#parked.get(c.call) : undefined;
    if (
      !c ||
      !x ||
      c.userId !== p.userId ||
      c.grantId !== p.grantId ||
      c.method !== r.method ||
      c.round !== x.round ||
      x.post !== undefined
    ) {
      post.send(
        errorResponse(
          r.id,
          -32602,
          'requestState is invalid, expired, already used or not yours; send the request again without it',
        ),
        true,
      );
      return true;
    }
    const responses = r.params?.['inputResponses'];
    if (typeof responses !== 'object' || responses === null || Array.isArray(responses)) {
      post.send(errorResponse(r.id, -32602, 'inputResponses must be an object'), true);
      return true;
    }
    const answers = Object.entries(responses as Record<string, unknown>).filter(([k]) => x.open.has(k));
    const bad = answers.find(([, v]) => typeof v !== 'object' || v === null || Array.isArray(v));
    if (bad) {
      post.send(errorResponse(r.id, -32602, `inputResponses["${bad[0]}"] must be an object`), true);
      return true;
    }
    x.bridge.rebind(x.origin, x.clientId, this.#limit(r, this.#sink(x, serverInfo), p.userId), r.id);
    x.clientId = r.id;
    x.caps = clientCapabilitiesOf(r);
    x.logLevel = logLevelOf(r);
    x.post = post;
    this.#watch(x, post);
    this.#armTask(x, r);
    if (x.final) {
      this.#parked.delete(x.handle);
      post.send({ ...x.final, id: r.id } as JsonRpcMessage, true);
      return true;
    }
    for (const [k, v] of answers) {
      const q = x.open.get(k);
      if (!q) continue;
      x.open.delete(k);
      x.bridge.respond({ jsonrpc: '2.0', id: q.childKey, result: v as Record<string, unknown> }, x.origin);
    }
    // Whatever is still unanswered is asked again at once; new questions get their settle window.
    if (x.open.size > 0) this.#askClient(x);
    else this.#parked.delete(x.handle);
    return true;
  }

  #watch(x: Parked, post: PostResponse): void {
    post.onAbort(() => {
      if (x.post === post) this.#cancel(x, 'client disconnected');
    });
  }

  #cancel(x: Parked, reason: string): void {
    clearTimeout(x.settle);
    clearTimeout(x.taskTimer);
    this.#parked.delete(x.handle);
    x.bridge.notify(
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: x.clientId, reason } },
      x.origin,
    );
    for (const q of x.open.values()) {
      x.bridge.respond(
        { jsonrpc: '2.0', id: q.childKey, error: { code: INTERNAL_ERROR, message: reason } },
        x.origin,
      );
    }
    x.open.clear();
  }

  /** Parked calls the client did not come back to within the TTL are cancelled at the child. */
  sweep(now = Date.now()): void {
    for (const x of [...this.#parked.values()])
      if (now - x.created > this.#ttlMs) this.#cancel(x, 'no answer in time');
  }
}
