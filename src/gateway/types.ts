// What the parts of /mcp share: the gateway's options, the records of open calls and streams, and the
// context each transport is handed (so no part reaches into another's fields).
import type { EventEmitter } from 'node:events';
import type { Bridge } from '../bridge/bridge.ts';
import {
  errorResponse,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../bridge/jsonrpc.ts';
import type { Logger } from '../log/log.ts';
import { type ConnectionPolicy, Policy } from '../policy/policy.ts';
import type { Pool } from '../pool/pool.ts';
import type { McpSessionStore } from '../store/store.ts';
import type { CallObserver } from './call-observer.ts';
import type { Gate, GateOptions, Principal, VerifyBearer } from './gate.ts';
import type { PostResponse } from './post-response.ts';
import type { SessionRegistry } from './sessions.ts';
import type { SseOptions, SseStream } from './sse.ts';
import type { Task, TaskOptions } from './tasks.ts';

export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;

export type GatewayOptions = GateOptions & {
  verifyBearer: VerifyBearer;
  pool: Pool;
  log: Logger;
  sse: SseOptions;
  maxSessionsPerUser: number;
  sessionIdleMs: number;
  /**
   * Where 2025 sessions are recorded for every replica and the next start; absent: in this
   * process only (they end with it).
   */
  sessionStore?: McpSessionStore;
  /** How long a 2026 call may wait for the client to answer its server-to-client requests. */
  parkTtlMs: number;
  /**
   * Seals 2026 requestStates; every replica must have the same, so a retry landing on another
   * replica is known genuine there. Absent: a random key (states are this process's only).
   */
  requestStateKey?: Buffer;
  /** Tasks (io.modelcontextprotocol/tasks) for slow 2026 tool calls; `afterMs: 0` turns them off. */
  tasks: TaskOptions;
  /** Most characters of text in a tool result before it is cut with a note; 0 or absent: no limit. */
  maxResultChars?: number;
  /** Told of every call relayed to a child when its final answer leaves (metrics, audit). */
  onCall?: CallObserver;
  /** A request refused by the tool policy (the audit trail's policy_refused). */
  onRefused?: (refusal: { login: string; clientId: string; name: string; reason: string }) => void;
  /** Revocation announcements from the OAuth side: grantRevoked({grantId,userId}), userRevoked(userId), tokenChanged(userId). */
  events?: EventEmitter;
  /** The operator's tool policy; each request is narrowed further by its grant's mode. */
  policy?: Policy;
};

const OPEN_POLICY = new Policy({ allow: ['read', 'write', 'destructive'], deny: [] });

/**
 * The answer to a request its connection's policy hides (the child's own "not found"), reported to
 * the operator's side; undefined when the request may go to the child.
 */
export function policyRefusal(
  o: GatewayOptions,
  p: Principal,
  policy: ConnectionPolicy,
  r: JsonRpcRequest,
): JsonRpcResponse | undefined {
  const refused = policy.refusal(r.method, r.params);
  if (!refused) return undefined;
  const name = String(r.params?.['name'] ?? r.params?.['uri'] ?? '');
  const reason = r.method === 'tools/call' ? policy.reason(name) : 'operator policy';
  o.onRefused?.({ login: p.login, clientId: p.clientId, name: `${r.method} ${name}`.slice(0, 200), reason });
  return errorResponse(r.id, refused.code, refused.message);
}

/** What this request's connection may see and call: the operator's policy under its grant's mode. */
export function policyOf(o: GatewayOptions, p: Principal): ConnectionPolicy {
  return (o.policy ?? OPEN_POLICY).forMode(p.mode ?? 'write');
}

/** The parts every transport needs: options, the gate's headers, the 2025 sessions. */
export type GatewayContext = {
  readonly o: GatewayOptions;
  readonly gate: Gate;
  readonly sessions: SessionRegistry;
};

/** A child's server-to-client request put to a 2026 client as one of an InputRequiredResult's inputRequests. */
export type Question = { childKey: string; method: string; params?: Record<string, unknown> };

/** A 2026 call whose child asks the client things: answered over one or more retried POSTs. */
export type Parked = {
  /** Handle in the parked-call table (inside the sealed requestState). */
  handle: string;
  userId: number;
  policy: ConnectionPolicy;
  grantId: string;
  bridge: Bridge;
  origin: string;
  method: string;
  params?: Record<string, unknown>;
  clientId: JsonRpcId;
  /** What the client declared on its latest request; questions needing anything else are refused. */
  caps: Record<string, unknown>;
  /** Capabilities the broker refused the child for want of a declaration (for -32021). */
  refused: Record<string, Record<string, never>>;
  /** The child's questions awaiting the client's answers, by the key the client sees. */
  open: Map<string, Question>;
  /** Answers the client sent ahead, by key: a question that matches one is answered at once. */
  ahead: Map<string, Record<string, unknown>>;
  /** Rounds of questions put to the client so far (the requestState names the current one). */
  round: number;
  /** The first question of a burst waits this long for the rest, so they go out together. */
  settle?: NodeJS.Timeout;
  final?: JsonRpcMessage;
  post?: PostResponse;
  created: number;
  /** The lowest log level the latest request asked for (`_meta` logLevel); none: no log messages. */
  logLevel?: number;
  /** Whether the call becomes a task when it runs long (not for a tool the child forbids it). */
  mayBecomeTask: boolean;
  /** Fires when the call has run `tasks.afterMs` on its current POST: it becomes a task. */
  taskTimer?: NodeJS.Timeout;
  /** The task the call became; its outcome goes there instead of to a POST. */
  task?: Task;
};

/** A 2026 `subscriptions/listen` stream. */
export type Listener = {
  userId: number;
  grantId: string;
  tokenHash?: string;
  id: JsonRpcId;
  stream: SseStream;
  wants: { tools: boolean; prompts: boolean; resources: boolean; uris: Set<string> };
};
