// How /mcp says no over HTTP: a status with a JSON-RPC error body, the bearer challenge, and the
// answers for a user whose child cannot be had (pool full, child failing, sign-in withdrawn).
import type { ServerResponse } from 'node:http';
import type { Bridge } from '../bridge/bridge.ts';
import {
  errorResponse,
  INTERNAL_ERROR,
  type JsonRpcId,
  type JsonRpcRequest,
  SERVER_ERROR,
} from '../bridge/jsonrpc.ts';
import { scrubText } from '../log/redact.ts';
import { PoolFullError, type PoolUser, signInRequired } from '../pool/pool.ts';
import type { BearerResult } from './gate.ts';
import type { GatewayContext } from './types.ts';

/**
 * Thrown anywhere below `Gateway.handle`; answered as `status` with a JSON-RPC error carrying the
 * request's id once it is known (null before the body is read).
 */
export class HttpError extends Error {
  id: JsonRpcId | null = null;
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

export function writeJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** The answer to whatever a request handler threw: its HttpError, or a 500 that shows no stack. */
export function answerThrown(
  ctx: GatewayContext,
  res: ServerResponse,
  e: unknown,
  origin: string | undefined,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e instanceof HttpError) {
    writeJson(res, e.status, errorResponse(e.id, e.code, e.message, e.data), {
      ...ctx.gate.corsHeaders(origin),
      ...e.headers,
    });
    return;
  }
  // An unexpected error's text may quote what it failed on: token shapes are scrubbed from it.
  ctx.o.log.error(
    {
      err: { message: scrubText(String((e as Error).message)), stack: scrubText(String((e as Error).stack)) },
    },
    '/mcp failed',
  );
  writeJson(res, 500, errorResponse(null, INTERNAL_ERROR, 'internal error'), ctx.gate.corsHeaders(origin));
}

/** Runs `f`; an HttpError it throws answers with `id` (the request's, read from the body). */
export async function withRequestId<T>(id: JsonRpcId | undefined, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof HttpError && e.id === null && id !== undefined) e.id = id;
    throw e;
  }
}

/** The id of a single JSON-RPC request body, if it has a valid one. */
export function requestIdOf(body: unknown): JsonRpcId | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const id = (body as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : undefined;
}

/** The bearer challenge (401, or 403 for a missing scope) with the reason in the body. */
export function refuse(
  ctx: GatewayContext,
  res: ServerResponse,
  failure: Extract<BearerResult, { ok: false }>,
  tokenGiven: boolean,
  origin: string | undefined,
): void {
  const c = ctx.gate.challenge(failure, tokenGiven);
  writeJson(
    res,
    c.status,
    { error: failure.error, error_description: failure.description },
    { ...ctx.gate.corsHeaders(origin), 'www-authenticate': c.header },
  );
}

/** The user's child, or an answer to every request saying why there is none. */
export async function bridgeFor(
  ctx: GatewayContext,
  user: PoolUser,
  requests: JsonRpcRequest[],
  batch: boolean,
  res: ServerResponse,
  origin: string | undefined,
): Promise<Bridge | undefined> {
  try {
    return await ctx.o.pool.acquire(user);
  } catch (e) {
    if (signInRequired(e)) {
      // Forgejo no longer honours the user's authorization: the same 401 as a revoked bearer, so
      // the client signs in again (a new Forgejo login stores a new credential).
      const failure = {
        ok: false,
        error: 'invalid_token',
        description: 'Forgejo no longer accepts this sign-in; sign in again',
      } as const;
      refuse(ctx, res, failure, true, origin);
      return undefined;
    }
    const full = e instanceof PoolFullError;
    // Why a child would not start (its command, its exit, its output) is for the log only.
    const message = full ? (e as Error).message : 'the MCP server is unavailable; try again shortly';
    const answers = requests.map((r) => errorResponse(r.id, SERVER_ERROR, message));
    const headers: Record<string, string> = { ...ctx.gate.corsHeaders(origin) };
    if (full) headers['retry-after'] = String((e as PoolFullError).retryAfterSeconds);
    // The reason may quote the child (its answer to initialize): scrubbed like its stderr.
    else ctx.o.log.warn({ user: user.login, err: scrubText((e as Error).message) }, 'MCP server unavailable');
    writeJson(res, full ? 503 : 200, batch ? answers : answers[0], headers);
    return undefined;
  }
}
