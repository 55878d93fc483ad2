import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { eventually } from '../support/wait.ts';

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack({ pool: { maxChildren: 1 } });
});
after(() => stack.close());

function post(token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(stack.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });
}
const init = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '0' } },
};

it('at the child cap with every child busy, a new user gets 503, Retry-After and a JSON-RPC error', async () => {
  const a = await post('token-alice', init);
  const sid = a.headers.get('mcp-session-id') as string;
  await a.text();
  // Alice's only child is busy with a call that never ends.
  const ctrl = new AbortController();
  const busy = fetch(stack.url, {
    method: 'POST',
    signal: ctrl.signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: 'Bearer token-alice',
      'mcp-session-id': sid,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'hang', arguments: {} },
    }),
  }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  const b = await post('token-bob', init);
  assert.equal(b.status, 503);
  assert.ok(Number(b.headers.get('retry-after')) > 0);
  const body = (await b.json()) as { id: number; error: { code: number; message: string } };
  assert.equal(body.id, 0);
  assert.match(body.error.message, /busy; try again shortly/);
  // Once alice's call is gone and her child idle, bob's child takes its place (eviction).
  ctrl.abort();
  await busy;
  await new Promise((r) => setTimeout(r, 200));
  const again = await post('token-bob', init);
  assert.equal(again.status, 200);
  await again.text();
  await eventually(() => stack.pool.liveChildren === 1);
  assert.equal(stack.pool.liveChildren, 1, 'the evicted child stopped; the cap holds');
});
