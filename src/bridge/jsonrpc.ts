// The JSON-RPC 2.0 shapes the bridge routes. It only looks at envelopes (id, method, params._meta),
// never at tool payloads, so these types stay loose on purpose.

export type JsonRpcId = string | number;

export type JsonRpcError = { code: number; message: string; data?: unknown };

export type JsonRpcRequest = {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
};
export type JsonRpcNotification = { jsonrpc: '2.0'; method: string; params?: Record<string, unknown> };
export type JsonRpcResponse =
  | { jsonrpc: '2.0'; id: JsonRpcId; result: Record<string, unknown> }
  | { jsonrpc: '2.0'; id: JsonRpcId | null; error: JsonRpcError };

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

// Standard and MCP error codes used by the broker.
export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;
/** Implementation-defined server errors (JSON-RPC reserves -32000..-32099). */
export const SERVER_ERROR = -32000;
export const REQUEST_TIMEOUT = -32001;
/** A request its client cancelled (the code LSP uses; MCP names none). */
export const REQUEST_CANCELLED = -32800;

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined && m.id !== null;
}
export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}
export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m) && ('result' in m || 'error' in m);
}

export function errorResponse(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

function isId(v: unknown): v is JsonRpcId {
  return (typeof v === 'string' && v.length <= 256) || (typeof v === 'number' && Number.isSafeInteger(v));
}

/**
 * Checks one decoded value is a JSON-RPC 2.0 message of a shape the broker can route; returns the
 * reason when it is not. Used on what clients send, so it is strict.
 */
export function validateMessage(
  v: unknown,
): { ok: true; message: JsonRpcMessage } | { ok: false; reason: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { ok: false, reason: 'not a JSON object' };
  const m = v as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0') return { ok: false, reason: 'jsonrpc must be "2.0"' };
  if (
    'params' in m &&
    (typeof m['params'] !== 'object' || m['params'] === null || Array.isArray(m['params']))
  ) {
    return { ok: false, reason: 'params must be an object' };
  }
  if ('method' in m) {
    if (typeof m['method'] !== 'string' || m['method'] === '')
      return { ok: false, reason: 'method must be a string' };
    if ('id' in m && !isId(m['id'])) return { ok: false, reason: 'id must be a string or an integer' };
    return { ok: true, message: m as JsonRpcMessage };
  }
  if (!isId(m['id'])) return { ok: false, reason: 'a response needs an id' };
  if ('result' in m === 'error' in m)
    return { ok: false, reason: 'a response has exactly one of result or error' };
  return { ok: true, message: m as JsonRpcMessage };
}

/** Deeper than any real MCP message; far below what the broker's own JSON.stringify can handle. */
export const MAX_NESTING = 512;

/**
 * Whether a decoded value nests arrays or objects more than `max` levels deep. Iterative: a client's
 * 100,000-deep request must not be what exhausts the stack.
 */
export function nestedDeeperThan(value: unknown, max = MAX_NESTING): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The request's progress token, if the client asked for progress. */
export function progressTokenOf(req: JsonRpcRequest): JsonRpcId | undefined {
  const meta = req.params?.['_meta'] as Record<string, unknown> | undefined;
  const t = meta?.['progressToken'];
  return isId(t) ? t : undefined;
}
