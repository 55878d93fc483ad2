// 2026 multi-round-trip requests: a child's server-to-client request (sampling, elicitation, roots)
// ends the client's POST with an input_required result and parks the call; the client's retry with
// the requestState carries the answers to the child, and the call continues on the new POST.
import type { Bridge, Sink } from '../bridge/bridge.ts';
import {
  errorResponse,
  INTERNAL_ERROR,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../bridge/jsonrpc.ts';
import type { ConnectionPolicy } from '../policy/policy.ts';
import { newSecret } from '../store/secrets.ts';
import { decorateResult, forChild } from './envelope.ts';
import type { Principal } from './gate.ts';
import type { PostResponse } from './post-response.ts';
import type { Parked } from './types.ts';

export class ParkedCalls {
  readonly #parked = new Map<string, Parked>();
  readonly #ttlMs: number;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /** Sends a new 2026 call to the child, answering on `post` until the child asks the client something. */
  start(
    r: JsonRpcRequest,
    post: PostResponse,
    p: Principal,
    bridge: Bridge,
    serverInfo: unknown,
    policy: ConnectionPolicy,
  ): void {
    const origin = `m:${newSecret()}`;
    const parked: Parked = {
      userId: p.userId,
      policy,
      bridge,
      origin,
      method: r.method,
      clientId: r.id,
      open: new Map(),
      post,
      created: Date.now(),
    };
    post.onAbort(() => {
      if (parked.post === post) this.#cancel(parked, 'client disconnected');
    });
    bridge.call(forChild(r), this.#sink(parked, serverInfo), origin);
  }

  /**
   * What the child says about a 2026 call: progress goes out on the POST's stream; a server-to-client
   * request ends the POST with an input_required result and parks the call until the client retries.
   */
  #sink(x: Parked, serverInfo: unknown): Sink {
    return {
      send: (msg, final) => {
        if (final) {
          const out =
            'result' in msg
              ? {
                  ...msg,
                  result: decorateResult(x.method, x.policy.filterResult(x.method, msg.result), serverInfo),
                }
              : msg;
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

  /** The client's retry with `requestState`: its answers go to the child, the call continues on `post`. */
  resume(r: JsonRpcRequest, state: string, post: PostResponse, p: Principal, serverInfo: unknown): void {
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
    x.bridge.rebind(x.origin, x.clientId, this.#sink(x, serverInfo), r.id);
    x.clientId = r.id;
    x.post = post;
    post.onAbort(() => {
      if (x.post === post) this.#cancel(x, 'client disconnected');
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

  #cancel(x: Parked, reason: string): void {
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

  /** Parked calls the client did not come back to within the TTL are cancelled at the child. */
  sweep(now = Date.now()): void {
    for (const x of [...this.#parked.values()])
      if (now - x.created > this.#ttlMs) this.#cancel(x, 'no answer in time');
  }
}
