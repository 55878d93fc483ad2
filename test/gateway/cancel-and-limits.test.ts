// A client that cancels its own call gets that call's POST answered and closed; a request nested
// far too deep gets a plain JSON-RPC error, never the broker's internals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { rawInitialize, rawPost } from '../support/mcp-oauth-client.ts';
import { eventually } from '../support/wait.ts';

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack();
});
after(() => stack.close());

/** Alice's call has reached her child's bridge. */
async function callInFlight(): Promise<void> {
  assert.ok(await eventually(() => stack.pool.bridgesOf(1).some((b) => b.inFlight > 0)));
}

async function session(): Promise<string> {
  const res = await rawInitialize(stack.url, 'token-alice');
  await res.text();
  const id = res.headers.get('mcp-session-id');
  assert.ok(id);
  return id;
}

describe('cancelling your own request', () => {
  it('answers its still-open POST with the cancelled request’s error and closes it', async () => {
    const sessionId = await session();
    const call = rawPost(
      stack.url,
      'token-alice',
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'hang', arguments: {} } },
      { sessionId, signal: AbortSignal.timeout(10_000) },
    );
    await callInFlight();
    const cancel = await rawPost(
      stack.url,
      'token-alice',
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'user stop' } },
      { sessionId },
    );
    assert.equal(cancel.status, 202);
    const res = await call;
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: number; error: { code: number; message: string } };
    assert.equal(body.id, 7);
    assert.equal(body.error.code, -32800);
    assert.equal(body.error.message, 'Request cancelled');
  });

  it('answers the calls of a session deleted while they run', async () => {
    const sessionId = await session();
    const call = rawPost(
      stack.url,
      'token-alice',
      { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'hang', arguments: {} } },
      { sessionId, signal: AbortSignal.timeout(10_000) },
    );
    await callInFlight();
    const del = await fetch(stack.url, {
      method: 'DELETE',
      headers: { authorization: 'Bearer token-alice', 'mcp-session-id': sessionId },
    });
    assert.equal(del.status, 200);
    const body = (await (await call).json()) as { id: number; error: { code: number; message: string } };
    assert.deepEqual([body.id, body.error.code], [8, -32800]);
    assert.match(body.error.message, /session closed/);
  });
});

describe('a request nested 100,000 levels deep', () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  const bodies = {
    'in tool arguments': `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":${deep(100_000)}}}}`,
    'as a batch': deep(100_000),
    'in a 2026 request': `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","x":${deep(100_000)}}}}`,
  };

  for (const [where, body] of Object.entries(bodies)) {
    it(`gets a plain invalid-request error, ${where}`, async () => {
      const sessionId = await session();
      const res = await fetch(stack.url, {
        method: 'POST',
        headers: {
          authorization: 'Bearer token-alice',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        },
        body,
      });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      const answer = JSON.parse(text) as { id: null; error: { code: number; message: string } };
      assert.deepEqual(answer, {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: 'Invalid Request: nested more than 512 levels deep' },
      });
    });
  }

  it('leaves the broker serving, and a merely deep request (100 levels) still reaches the child', async () => {
    const sessionId = await session();
    const nested = JSON.parse(deep(100)) as unknown;
    const res = await rawPost(
      stack.url,
      'token-alice',
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'ok', nested } },
      },
      { sessionId },
    );
    const body = (await res.json()) as { result: { content: { text: string }[] } };
    assert.equal(body.result.content[0]?.text, 'ok');
  });
});
