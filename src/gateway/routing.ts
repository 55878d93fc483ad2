// Where the child's unrequested messages go: notifications to the user's 2025 sessions and 2026
// listen streams, server-to-client requests with no call in flight to a GET stream, and resource
// subscriptions shared by everyone of the user who asked.
import { type Bridge, CHILD_WIDE_NOTIFICATIONS, type Sink } from '../bridge/bridge.ts';
import {
  errorResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
} from '../bridge/jsonrpc.ts';
import type { Logger } from '../log/log.ts';
import type { Pool } from '../pool/pool.ts';
import { callOnce } from './call-once.ts';
import { META } from './envelope.ts';
import type { Session, SessionRegistry } from './sessions.ts';
import type { Listener } from './types.ts';

export class Routing {
  readonly #sessions: SessionRegistry;
  readonly #pool: Pool;
  readonly #listeners = new Set<Listener>();
  /** Resource subscriptions per user: uri → sessions (or listeners) that asked. */
  readonly #subs = new Map<number, Map<string, Set<string>>>();

  readonly #log: Logger;

  constructor(sessions: SessionRegistry, pool: Pool, log: Logger) {
    this.#sessions = sessions;
    this.#pool = pool;
    this.#log = log;
  }

  #drop(userId: number, method: string): void {
    this.#log.info(
      { userId, method, reason: 'no call in flight and several client apps of the user' },
      'dropped a message no single client app may see',
    );
  }

  /**
   * Pool event: a notification that belongs to no call in flight. One about the child itself (list
   * changes, resource updates) goes to every session and listener of the user that wants it: every
   * app of the user shares that child. Anything else (a log message) could be about one app's work,
   * so it goes to the user's sessions only while they and the user's listen streams are all of one
   * grant, and is dropped otherwise.
   */
  broadcast(userId: number, msg: JsonRpcNotification): void {
    if (!CHILD_WIDE_NOTIFICATIONS.has(msg.method)) {
      if (this.#grantsOf(userId) > 1) {
        this.#drop(userId, msg.method);
        return;
      }
      for (const s of this.#sessions.ofUser(userId)) s.stream?.send(msg);
      return;
    }
    if (msg.method === 'notifications/resources/updated') {
      const uri = String(msg.params?.['uri'] ?? '');
      const who = this.#subs.get(userId)?.get(uri);
      for (const s of this.#sessions.ofUser(userId)) if (who?.has(s.id)) s.stream?.send(msg);
      for (const l of this.#listeners)
        if (l.userId === userId && l.wants.uris.has(uri)) this.#toListener(l, msg);
      return;
    }
    for (const s of this.#sessions.ofUser(userId)) s.stream?.send(msg);
    const kind = /^notifications\/(tools|prompts|resources)\/list_changed$/.exec(msg.method)?.[1] as
      | 'tools'
      | 'prompts'
      | 'resources'
      | undefined;
    if (kind)
      for (const l of this.#listeners) if (l.userId === userId && l.wants[kind]) this.#toListener(l, msg);
  }

  /**
   * Pool event: a server-to-client request with no call in flight goes to the freshest GET stream,
   * provided the user's sessions and listen streams are all of one grant (else there is no telling
   * whose it is).
   */
  orphanRequest(userId: number, method: string): { sink: Sink; origin: string } | undefined {
    if (this.#grantsOf(userId) > 1) {
      this.#drop(userId, method);
      return undefined;
    }
    let best: Session | undefined;
    for (const s of this.#sessions.ofUser(userId))
      if (s.stream?.open && (!best || s.lastSeen > best.lastSeen)) best = s;
    const stream = best?.stream;
    if (!best || !stream) return undefined;
    return { sink: { send: (m) => stream.send(m) }, origin: best.id };
  }

  /** How many grants (client apps) of the user hold a session or a listen stream. */
  #grantsOf(userId: number): number {
    const grants = new Set(this.#sessions.ofUser(userId).map((s) => s.grantId));
    for (const l of this.#listeners) if (l.userId === userId) grants.add(l.grantId);
    return grants.size;
  }

  #toListener(l: Listener, msg: JsonRpcNotification): void {
    l.stream.send({ ...msg, params: { ...msg.params, _meta: { [`${META}subscriptionId`]: l.id } } });
  }

  addListener(l: Listener): void {
    this.#listeners.add(l);
  }

  removeListener(l: Listener): void {
    this.#listeners.delete(l);
  }

  /** Ends the listen streams `match` picks (revocation, shutdown). */
  countListeners(match: (l: Listener) => boolean): number {
    let n = 0;
    for (const l of this.#listeners) if (match(l)) n++;
    return n;
  }

  endListeners(match: (l: Listener) => boolean): void {
    for (const l of this.#listeners) if (match(l)) l.stream.end();
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  hasListener(userId: number): boolean {
    for (const l of this.#listeners) if (l.userId === userId) return true;
    return false;
  }

  /**
   * One child serves many sessions but keeps one subscriber list: the broker subscribes the child
   * once per URI and unsubscribes when the last session lets go, and fans updates out itself.
   */
  async subscription(
    r: JsonRpcRequest,
    who: string,
    bridge: Bridge,
    userId: number,
    grantId: string,
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
      const answer = await callOnce(bridge, r, who, grantId);
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

  /** `who` (a session or a listen stream) is gone: the URIs only it held are unsubscribed at the child. */
  dropSubscriptions(userId: number, who: string): void {
    const byUri = this.#subs.get(userId);
    if (!byUri) return;
    const bridge = this.#pool.bridgesOf(userId)[0];
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
}
