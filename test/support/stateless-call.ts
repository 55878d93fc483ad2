// One 2026-07-28 request over raw HTTP with a correct envelope and mirror headers (unless a test
// overrides them), read back whether the answer came as JSON or as an SSE stream.
import assert from 'node:assert/strict';

export type Answer = {
  status: number;
  /** Everything an SSE answer carried before (and including) the response; empty for JSON. */
  frames: Record<string, unknown>[];
  body: {
    id: unknown;
    result?: Record<string, unknown>;
    error?: { code: number; message: string; data?: Record<string, unknown> };
  };
};

export const ALL_CAPS = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

let nextId = 1;

export type CallOptions = {
  caps?: Record<string, unknown>;
  token?: string;
  headers?: Record<string, string>;
  id?: number;
  /** Extra `_meta` keys (e.g. the log level). */
  meta?: Record<string, unknown>;
};

export async function call2026(
  url: string,
  method: string,
  params: Record<string, unknown>,
  o: CallOptions = {},
): Promise<Answer> {
  const id = o.id ?? nextId++;
  const name =
    method === 'resources/read'
      ? params['uri']
      : method.startsWith('tasks/')
        ? params['taskId']
        : params['name'];
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${o.token ?? 'token-alice'}`,
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
      ...o.headers,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': o.caps ?? ALL_CAPS,
          ...o.meta,
        },
      },
    }),
  });
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const frames = text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)));
    return { status: res.status, frames, body: frames.find((f) => f.id === id) };
  }
  return { status: res.status, frames: [], body: JSON.parse(text) };
}

/** The text of a result's first content block. */
export function textOf(a: Answer | Record<string, unknown> | undefined): string | undefined {
  const result = a && 'body' in a ? (a as Answer).body.result : (a as Record<string, unknown> | undefined);
  const content = result?.['content'] as { text: string }[] | undefined;
  assert.ok(content, JSON.stringify(a));
  return content[0]?.text;
}
