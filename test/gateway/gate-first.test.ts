// /mcp checks Host, Origin and the bearer token on the headers, before it reads a single body byte:
// a stranger's upload is refused while it is still arriving, and its connection closes, while an
// authenticated user's body gets the body deadline and the user keeps being served.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MCP_BODY_LIMIT } from '../../src/gateway/routes.ts';
import { type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { slowRequest } from '../support/slow-client.ts';

const BODY_MS = 1500;
let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack({ limits: { bodyTimeoutMs: BODY_MS } });
});
after(() => stack.close());

const upload = (headers: Record<string, string>) =>
  slowRequest(stack.url, {
    path: '/mcp',
    headers: { accept: 'application/json, text/event-stream', ...headers },
    contentLength: MCP_BODY_LIMIT - 1,
    sendAtOnce: 1024,
    giveUpMs: 3 * BODY_MS,
  });

describe('the gate runs before the body', () => {
  it('answers 401 to an unauthenticated upload before its body arrived, and closes the connection', async () => {
    const r = await upload({});
    assert.equal(r.status, 401, r.head);
    assert.match(r.head, /www-authenticate: Bearer resource_metadata=/i);
    assert.match(r.head, /connection: close/i);
    assert.ok(r.bytesSent < MCP_BODY_LIMIT - 1, 'the body was still incomplete');
    assert.ok(
      r.answeredAfterMs !== undefined && r.answeredAfterMs < BODY_MS,
      `answered after ${r.answeredAfterMs} ms`,
    );
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS,
      `closed after ${r.closedAfterMs} ms`,
    );
  });

  it('refuses a bad token, a foreign Host or Origin the same way, before the body', async () => {
    const cases: Record<string, string>[] = [
      { authorization: 'Bearer nope' },
      { authorization: 'Bearer token-alice', host: 'evil.example' },
      { authorization: 'Bearer token-alice', origin: 'https://evil.example' },
    ];
    for (const headers of cases) {
      const r = await upload(headers);
      assert.ok(r.status === 401 || r.status === 403, `${JSON.stringify(headers)}: ${r.head}`);
      assert.ok(
        r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS,
        `closed after ${r.closedAfterMs} ms`,
      );
    }
  });

  it('keeps the connection of a small, complete unauthenticated request alive (normal discovery)', async () => {
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":0,"method":"initialize"}',
    });
    assert.equal(res.status, 401);
    assert.notEqual(res.headers.get('connection'), 'close');
  });

  it('refuses a small unauthenticated body that stalls at the latest at the body deadline', async () => {
    const r = await slowRequest(stack.url, {
      path: '/mcp',
      contentLength: 300,
      sendAtOnce: 10,
      giveUpMs: 3 * BODY_MS,
    });
    assert.equal(r.status, 401, r.head);
    assert.match(r.head, /connection: close/i);
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS + 1000,
      `closed after ${r.closedAfterMs} ms`,
    );
  });

  it('gives an authenticated stalled body the body deadline (408, JSON-RPC error) and serves the user meanwhile', async () => {
    const strangers = Array.from({ length: 20 }, () => upload({}));
    const stalled = upload({ authorization: 'Bearer token-bob' });
    const client = new Client({ name: 'gate-first', version: '0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(stack.url), {
        requestInit: { headers: { authorization: 'Bearer token-alice' } },
      }),
    );
    const r = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    assert.equal((r.content as { text: string }[])[0]?.text, 'still here');
    await client.close();
    for (const s of await Promise.all(strangers)) assert.equal(s.status, 401, s.head);
    const own = await stalled;
    assert.equal(own.status, 408, own.head);
    assert.match(own.head, /connection: close/i);
    assert.ok(
      own.closedAfterMs !== undefined &&
        own.closedAfterMs >= BODY_MS - 50 &&
        own.closedAfterMs < BODY_MS + 1000,
      `cut after ${own.closedAfterMs} ms`,
    );
  });

  it('refuses an authenticated body over the limit with 413 as soon as its length says so, and closes', async () => {
    const r = await slowRequest(stack.url, {
      path: '/mcp',
      headers: {
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        authorization: 'Bearer token-alice',
      },
      contentLength: MCP_BODY_LIMIT + 1,
      sendAtOnce: 1024,
      giveUpMs: 3 * BODY_MS,
    });
    assert.equal(r.status, 413, r.head);
    assert.match(r.head, /connection: close/i);
    assert.ok(r.bytesSent < MCP_BODY_LIMIT, 'refused before the body was sent');
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS,
      `closed after ${r.closedAfterMs} ms`,
    );
  });

  it('cuts an authenticated chunked body when it grows past the limit, with a JSON-RPC 413', async () => {
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    let sent = 0;
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: {
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        authorization: 'Bearer token-alice',
      },
      duplex: 'half',
      body: new ReadableStream({
        pull(c) {
          if (sent > 2 * MCP_BODY_LIMIT) c.close();
          else {
            sent += chunk.length;
            c.enqueue(chunk);
          }
        },
      }),
    } as RequestInit);
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error?: { code?: number; message?: string } };
    assert.equal(body.error?.code, -32000);
    assert.equal(body.error?.message, `the request body is larger than ${MCP_BODY_LIMIT} bytes`);
  });
});
