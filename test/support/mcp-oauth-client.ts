// A user's way to /mcp through the real authorization server: register a public client, walk the
// consent and Forgejo login, and connect an SDK v1 client with the access token it got.
import { Client, type ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Supervisor } from '../../src/supervisor/supervisor.ts';
import { registerClient } from './oauth-harness.ts';
import { fullFlow } from './oauth-stack.ts';

const REDIRECT = 'http://127.0.0.1/cb';

/** A broker access token for `login` (password `<login>-pw`), from a fresh public client. */
export async function brokerToken(base: string, login = 'alice'): Promise<string> {
  const c = await registerClient(base, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' });
  const { tokens } = await fullFlow(base, {
    clientId: c.client_id,
    redirectUri: 'http://127.0.0.1:41234/cb',
    login,
  });
  return tokens.access_token;
}

export type Connected = { client: Client; transport: StreamableHTTPClientTransport };

/** Connects a v1 SDK client to `<base>/mcp` with a bearer token (no connect: see `connectV1`). */
export function clientV1(
  base: string,
  token: string,
  capabilities: NonNullable<ClientOptions['capabilities']> = {},
): Connected {
  const client = new Client({ name: 'faults-test', version: '0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  return { client, transport };
}

export async function connectV1(
  base: string,
  token: string,
  capabilities: NonNullable<ClientOptions['capabilities']> = {},
): Promise<Connected> {
  const c = clientV1(base, token, capabilities);
  await c.client.connect(c.transport);
  return c;
}

export function textOf(r: unknown): string {
  return ((r as { content: { text: string }[] }).content[0] as { text: string }).text;
}

/** Records the pid of every child the supervisor starts from now on (for "none left" checks). */
export function recordChildPids(supervisor: Supervisor): number[] {
  const pids: number[] = [];
  const start = supervisor.start.bind(supervisor);
  supervisor.start = async (spec) => {
    const child = await start(spec);
    pids.push(child.pid);
    return child;
  };
  return pids;
}

/**
 * A raw JSON-RPC POST to /mcp with a bearer token, as a client without an SDK sends it; within a
 * session it carries the session id and the 2025-11-25 protocol version header.
 */
export function rawPost(
  mcpUrl: string | URL,
  token: string,
  message: unknown,
  opts: { sessionId?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(mcpUrl, {
    method: 'POST',
    ...(opts.signal ? { signal: opts.signal } : {}),
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(opts.sessionId ? { 'mcp-session-id': opts.sessionId, 'mcp-protocol-version': '2025-11-25' } : {}),
    },
    body: JSON.stringify(message),
  });
}

/** A raw 2025-11-25 initialize, the first request of a client without an SDK. */
export function rawInitialize(mcpUrl: string | URL, token: string): Promise<Response> {
  return rawPost(mcpUrl, token, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
  });
}
