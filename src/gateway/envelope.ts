// MCP 2026-07-28 (stateless) on top of a 2025-era stdio child: envelope checks, result decoration,
// and multi-round-trip results standing in for the child's server-to-client requests.
import type { IncomingHttpHeaders } from 'node:http';
import type { JsonRpcRequest } from '../bridge/jsonrpc.ts';

export const MODERN_VERSION = '2026-07-28';
export const META = 'io.modelcontextprotocol/';
export const HEADER_MISMATCH = -32020;
export const MISSING_CAPABILITY = -32021;
export const UNSUPPORTED_VERSION = -32022;
const RESOURCE_NOT_FOUND_2025 = -32002;

/** The methods a 2026 client may send that the child answers. */
export const FORWARDED = new Set([
  'tools/call',
  'tools/list',
  'prompts/get',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
]);
/** Results that must say how long they may be cached. */
export const CACHEABLE = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

export function envelopeVersion(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const meta = (body as { params?: { _meta?: Record<string, unknown> } }).params?._meta;
  const v = meta?.[`${META}protocolVersion`];
  return typeof v === 'string' ? v : undefined;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A mirror header's value: `=?base64?…?=` carries values that are not plain visible ASCII and must
 * be well-formed base64 (undefined when it is not); anything else is the value itself.
 */
export function decodeHeaderValue(v: string): string | undefined {
  if (!v.startsWith('=?base64?') || !v.endsWith('?=') || v.length < 11) return v;
  const b64 = v.slice(9, -2);
  if (!BASE64.test(b64)) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return text.decode(bytes);
  } catch {
    return undefined;
  }
}

export type EnvelopeProblem = { status: number; code: number; message: string; data?: unknown };

/** Checks a 2026 request's envelope and its mirror headers. */
export function clientCapabilitiesOf(req: JsonRpcRequest): Record<string, unknown> {
  const meta = (req.params?.['_meta'] ?? {}) as Record<string, unknown>;
  const caps = meta[`${META}clientCapabilities`];
  return typeof caps === 'object' && caps !== null && !Array.isArray(caps)
    ? (caps as Record<string, unknown>)
    : {};
}

/** The client capability a child's server-to-client request needs, by method. */
export function capabilityFor(method: string): string | undefined {
  if (method === 'sampling/createMessage') return 'sampling';
  if (method === 'elicitation/create') return 'elicitation';
  if (method === 'roots/list') return 'roots';
  return undefined;
}

export function checkEnvelope(
  req: JsonRpcRequest,
  headers: IncomingHttpHeaders,
): EnvelopeProblem | undefined {
  const meta = (req.params?.['_meta'] ?? {}) as Record<string, unknown>;
  const version = meta[`${META}protocolVersion`];
  const headerVersion = headers['mcp-protocol-version'];
  if (headerVersion !== version) {
    return {
      status: 400,
      code: HEADER_MISMATCH,
      message: 'MCP-Protocol-Version header does not match the request body',
      data: { mismatch: { header: headerVersion ?? null, body: version } },
    };
  }
  if (version !== MODERN_VERSION) {
    return {
      status: 400,
      code: UNSUPPORTED_VERSION,
      message: `unsupported protocol version ${String(version)}`,
      data: { supported: [MODERN_VERSION], requested: version },
    };
  }
  const caps = meta[`${META}clientCapabilities`];
  if (typeof caps !== 'object' || caps === null || Array.isArray(caps)) {
    return { status: 400, code: -32602, message: `_meta["${META}clientCapabilities"] must be an object` };
  }
  if (headers['mcp-method'] !== req.method) {
    return {
      status: 400,
      code: HEADER_MISMATCH,
      message: 'Mcp-Method header does not match the request body',
      data: { mismatch: { header: headers['mcp-method'] ?? null, body: req.method } },
    };
  }
  const nameKey =
    req.method === 'resources/read'
      ? 'uri'
      : req.method === 'tools/call' || req.method === 'prompts/get'
        ? 'name'
        : req.method === 'tasks/get' || req.method === 'tasks/update' || req.method === 'tasks/cancel'
          ? 'taskId'
          : undefined;
  if (nameKey) {
    const raw = headers['mcp-name'];
    const header = typeof raw === 'string' ? decodeHeaderValue(raw) : undefined;
    const body = req.params?.[nameKey];
    if (header !== body) {
      return {
        status: 400,
        code: HEADER_MISMATCH,
        message: 'Mcp-Name header does not match the request body',
        data: { mismatch: { header: raw ?? null, body } },
      };
    }
  }
  return undefined;
}

/** The request as the 2025-era child should see it: no 2026 envelope keys. */
export function forChild(req: JsonRpcRequest): JsonRpcRequest {
  const params = { ...req.params };
  delete params['inputResponses'];
  delete params['requestState'];
  delete params['task']; // a client's task hint: tasks are the broker's, the child never sees one
  const meta = params['_meta'] as Record<string, unknown> | undefined;
  if (meta) {
    const kept = Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith(META)));
    if (Object.keys(kept).length > 0) params['_meta'] = kept;
    else delete params['_meta'];
  }
  return { ...req, params };
}

/**
 * A 2025 error as 2026 says it: a resource that does not exist is -32602 with the URI in `data`
 * (SEP-2164), where 2025 servers, the SDK's among them, answer -32002.
 */
export function translateError(
  method: string,
  params: Record<string, unknown> | undefined,
  error: { code: number; message: string; data?: unknown },
): { code: number; message: string; data?: unknown } {
  if (method !== 'resources/read' || error.code !== RESOURCE_NOT_FOUND_2025) return error;
  const data = typeof error.data === 'object' && error.data !== null ? error.data : {};
  return { code: -32602, message: error.message, data: { ...data, uri: params?.['uri'] } };
}

/** Adds what 2026 requires of every result the child produced for 2025 clients. */
export function decorateResult(
  method: string,
  result: Record<string, unknown>,
  serverInfo: unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...result, resultType: result['resultType'] ?? 'complete' };
  if (CACHEABLE.has(method)) {
    out['ttlMs'] ??= 0;
    out['cacheScope'] ??= 'private';
  }
  out['_meta'] = { ...(result['_meta'] as object), [`${META}serverInfo`]: serverInfo };
  return out;
}

export function discoverResult(
  init: Record<string, unknown>,
  extensions: string[] = [],
): Record<string, unknown> {
  const caps = (init['capabilities'] ?? {}) as Record<string, unknown>;
  const ext = { ...(caps['extensions'] as object), ...Object.fromEntries(extensions.map((e) => [e, {}])) };
  return {
    resultType: 'complete',
    supportedVersions: [MODERN_VERSION],
    capabilities: Object.keys(ext).length ? { ...caps, extensions: ext } : caps,
    ...(init['instructions'] ? { instructions: init['instructions'] } : {}),
    ttlMs: 0,
    cacheScope: 'private',
    _meta: { [`${META}serverInfo`]: init['serverInfo'] },
  };
}

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** The log level a 2026 request asked for in its `_meta`; without one it gets no log messages. */
export function logLevelOf(r: JsonRpcRequest): number | undefined {
  const meta = (r.params?.['_meta'] ?? {}) as Record<string, unknown>;
  const i = LOG_LEVELS.indexOf(String(meta[`${META}logLevel`]));
  return i < 0 ? undefined : i;
}

/** Whether a log message of `level` goes to a request that asked for `wanted`. */
export function wantsLog(wanted: number | undefined, level: unknown): boolean {
  if (wanted === undefined) return false;
  const i = LOG_LEVELS.indexOf(String(level));
  return i < 0 || i >= wanted;
}
