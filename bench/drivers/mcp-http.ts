// A minimal MCP Streamable HTTP client over node:http keep-alive sockets: pre-built JSON-RPC bodies,
// whole responses read (JSON or SSE) and checked to be the result of the request sent.
import { Agent, request } from 'node:http';

export const PROTOCOL_VERSION = '2025-11-25';
const MAX_RESPONSE = 4 * 1024 * 1024;

export type HttpReply = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
};

export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

export function send(
  agent: Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body?: string,
  timeoutMs = 30_000,
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        agent,
        method,
        headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE) {
            res.destroy(new Error('response too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.end(body);
  });
}

type RpcMessage = {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string };
};

/** The JSON-RPC response with this id from a JSON or SSE body; throws on an error response. */
export function rpcResult(reply: HttpReply, id: number | string): unknown {
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
  const type = String(reply.headers['content-type'] ?? '');
  const messages: RpcMessage[] = [];
  if (type.startsWith('text/event-stream')) {
    for (const event of reply.body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l[5] === ' ' ? 6 : 5))
        .join('\n');
      if (data !== '') messages.push(JSON.parse(data) as RpcMessage);
    }
  } else if (type.startsWith('application/json')) {
    const parsed = JSON.parse(reply.body) as RpcMessage | RpcMessage[];
    messages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
  } else {
    throw new Error(`unexpected content-type ${type}`);
  }
  const msg = messages.find((m) => m.id === id && ('result' in m || 'error' in m));
  if (!msg) throw new Error(`no response with id ${id} in ${reply.body.slice(0, 200)}`);
  if (msg.error) throw new Error(`JSON-RPC error ${msg.error.code}: ${msg.error.message}`);
  return msg.result;
}

export type McpHttpSession = {
  headers: Record<string, string>;
  sessionId?: string;
  /** one round trip: initialize result */
  initializeMs: number;
};

const BASE_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** initialize + notifications/initialized; returns the headers every later request carries. */
export async function openSession(
  agent: Agent,
  url: URL,
  extraHeaders: Record<string, string>,
): Promise<McpHttpSession> {
  const t0 = performance.now();
  const init = await send(
    agent,
    url,
    'POST',
    { ...BASE_HEADERS, ...extraHeaders },
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: PROTOCOL_VERSION,
        capabilities: {},
        clientInfo: { name: 'forgejo-mcp-broker-bench-lean', version: '1' },
      },
    }),
    // A cold initialize spawns a child; many at once on a busy machine take a while.
    120_000,
  );
  const result = rpcResult(init, 0) as { protocolVersion?: string };
  const initializeMs = performance.now() - t0;
  const sid = init.headers['mcp-session-id'];
  const sessionId = typeof sid === 'string' ? sid : undefined;
  const headers: Record<string, string> = {
    ...BASE_HEADERS,
    ...extraHeaders,
    'mcp-protocol-version': result.protocolVersion ?? PROTOCOL_VERSION,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
  };
  const note = await send(
    agent,
    url,
    'POST',
    headers,
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  );
  if (note.status !== 202 && note.status !== 200)
    throw new Error(`notifications/initialized: HTTP ${note.status} ${note.body.slice(0, 200)}`);
  return { headers, ...(sessionId ? { sessionId } : {}), initializeMs };
}

export async function closeSession(agent: Agent, url: URL, session: McpHttpSession): Promise<void> {
  if (!session.sessionId) return;
  await send(agent, url, 'DELETE', session.headers).catch(() => undefined);
}

/** A tools/call body builder: the id changes per call, the rest is serialized once. */
export function toolCallBody(tool: string, args: Record<string, unknown>): (id: number) => string {
  const tail = `,"method":"tools/call","params":${JSON.stringify({ name: tool, arguments: args })}}`;
  return (id) => `{"jsonrpc":"2.0","id":${id}${tail}`;
}
