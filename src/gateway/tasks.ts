// Tasks (extension io.modelcontextprotocol/tasks, SEP-2663) as the broker's own feature: a 2026
// tool call still running after `afterMs` is answered with a CreateTaskResult for a client that
// negotiated the extension, while the child's call goes on. The client polls tasks/get (the result
// is inlined once there is one), answers the child's questions with tasks/update, and may
// tasks/cancel (the child hears notifications/cancelled). Tasks are bounded per user in number and
// lifetime; they live in memory, like the calls they stand for.
import type { JsonRpcRequest, JsonRpcResponse } from '../bridge/jsonrpc.ts';
import { errorResponse } from '../bridge/jsonrpc.ts';
import { newSecret } from '../store/secrets.ts';
import { clientCapabilitiesOf, MISSING_CAPABILITY } from './envelope.ts';
import type { Principal } from './gate.ts';
import type { Question } from './types.ts';

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
export const TASK_METHODS = new Set(['tasks/get', 'tasks/update', 'tasks/cancel']);

/** How often a client should poll, said on every task. */
const POLL_INTERVAL_MS = 1000;

export type TaskOptions = { afterMs: number; ttlMs: number; maxPerUser: number };

/** What a task needs of the call it stands for while that call runs. */
export type LiveCall = {
  open: Map<string, Question>;
  /** Hands the client's answer to the child; false if the key is not open. */
  answer(key: string, value: Record<string, unknown>): boolean;
  cancel(reason: string): void;
};

export type Outcome =
  | { result: Record<string, unknown> }
  | { error: { code: number; message: string; data?: unknown } };

export type Task = {
  id: string;
  userId: number;
  grantId: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  live?: LiveCall;
  outcome?: Outcome;
  cancelled?: boolean;
};

export function negotiatesTasks(req: JsonRpcRequest): boolean {
  const ext = clientCapabilitiesOf(req)['extensions'];
  return (
    typeof ext === 'object' && ext !== null && (ext as Record<string, unknown>)[TASKS_EXTENSION] !== undefined
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

export class Tasks {
  readonly #o: TaskOptions;
  readonly #byId = new Map<string, Task>();

  constructor(o: TaskOptions) {
    this.#o = o;
  }

  get afterMs(): number {
    return this.#o.afterMs;
  }

  get ttlMs(): number {
    return this.#o.ttlMs;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** A new task for a running call, or undefined when the user already holds as many as allowed. */
  create(p: Pick<Principal, 'userId' | 'grantId'>, live: LiveCall, now = Date.now()): Task | undefined {
    this.sweep(now);
    let held = 0;
    for (const t of this.#byId.values()) if (t.userId === p.userId) held++;
    if (held >= this.#o.maxPerUser) return undefined;
    const t: Task = {
      id: `task_${newSecret()}`,
      userId: p.userId,
      grantId: p.grantId,
      createdAt: now,
      updatedAt: now,
      expiresAt: now + this.#o.ttlMs,
      live,
    };
    this.#byId.set(t.id, t);
    return t;
  }

  /** The call behind a task ended: its answer is kept until the task expires. */
  settle(t: Task, outcome: Outcome): void {
    t.live = undefined;
    if (t.cancelled) return;
    t.outcome = outcome;
    t.updatedAt = Date.now();
  }

  /** Something about the call changed (a question was asked or answered). */
  touch(t: Task): void {
    t.updatedAt = Date.now();
  }

  /** The CreateTaskResult that answers the call's POST. */
  created(t: Task): Record<string, unknown> {
    return { resultType: 'task', ...this.#envelope(t) };
  }

  #status(t: Task): string {
    if (t.cancelled) return 'cancelled';
    if (t.outcome) return 'error' in t.outcome ? 'failed' : 'completed';
    return t.live && t.live.open.size > 0 ? 'input_required' : 'working';
  }

  #envelope(t: Task): Record<string, unknown> {
    return {
      taskId: t.id,
      status: this.#status(t),
      createdAt: iso(t.createdAt),
      lastUpdatedAt: iso(t.updatedAt),
      ttlMs: this.#o.ttlMs,
      pollIntervalMs: POLL_INTERVAL_MS,
    };
  }

  /**
   * Answers tasks/get, tasks/update and tasks/cancel. A client that did not negotiate the extension
   * gets -32021; a task that is unknown, expired or another user's or grant's is -32602.
   */
  request(r: JsonRpcRequest, p: Principal): { msg: JsonRpcResponse; status?: number } {
    if (!negotiatesTasks(r)) {
      return {
        msg: errorResponse(r.id, MISSING_CAPABILITY, `${r.method} needs the ${TASKS_EXTENSION} extension`, {
          requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
        }),
        status: 400,
      };
    }
    this.sweep(); // an expired task is gone the moment anyone asks, not at the next sweep
    const id = r.params?.['taskId'];
    const t = typeof id === 'string' ? this.#byId.get(id) : undefined;
    if (!t || t.userId !== p.userId || t.grantId !== p.grantId) {
      return { msg: errorResponse(r.id, -32602, 'unknown taskId (or expired, or not yours)') };
    }
    const ok = (result: Record<string, unknown>): { msg: JsonRpcResponse } => ({
      msg: { jsonrpc: '2.0', id: r.id, result },
    });
    if (r.method === 'tasks/cancel') {
      if (t.live && !t.cancelled) {
        t.cancelled = true;
        t.updatedAt = Date.now();
        t.live.cancel('cancelled by the client');
        t.live = undefined;
      }
      return ok({ resultType: 'complete' });
    }
    if (r.method === 'tasks/update') {
      const responses = r.params?.['inputResponses'];
      if (typeof responses !== 'object' || responses === null || Array.isArray(responses))
        return { msg: errorResponse(r.id, -32602, 'inputResponses must be an object') };
      for (const [k, v] of Object.entries(responses as Record<string, unknown>)) {
        if (!t.live?.open.has(k)) continue;
        if (typeof v !== 'object' || v === null || Array.isArray(v))
          return { msg: errorResponse(r.id, -32602, `inputResponses["${k}"] must be an object`) };
        t.live.answer(k, v as Record<string, unknown>);
        t.updatedAt = Date.now();
      }
      return ok({ resultType: 'complete' });
    }
    const detailed: Record<string, unknown> = { resultType: 'complete', ...this.#envelope(t) };
    if (t.outcome && !t.cancelled) Object.assign(detailed, t.outcome);
    if (t.live && t.live.open.size > 0 && !t.cancelled) {
      detailed['inputRequests'] = Object.fromEntries(
        [...t.live.open].map(([k, q]) => [
          k,
          { method: q.method, ...(q.params ? { params: q.params } : {}) },
        ]),
      );
    }
    return ok(detailed);
  }

  /** Expired tasks go; a call still running behind one is cancelled at the child. */
  sweep(now = Date.now()): void {
    for (const t of [...this.#byId.values()]) {
      if (t.expiresAt > now) continue;
      this.#byId.delete(t.id);
      t.live?.cancel('the task expired');
      t.live = undefined;
    }
  }

  /** Revocation: the tasks of a grant or user go, their calls cancelled. */
  drop(match: (t: Task) => boolean): void {
    for (const t of [...this.#byId.values()]) {
      if (!match(t)) continue;
      this.#byId.delete(t.id);
      t.live?.cancel('access was revoked');
      t.live = undefined;
    }
  }
}
