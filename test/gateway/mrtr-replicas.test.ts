// A 2026 multi-round-trip call whose retry lands on another replica (a load balancer's choice, or
// the first replica died): the requestState is known genuine there (the replicas share its key),
// the call is started afresh on that replica's child and the answers the retry carries answer the
// child's questions at once, so the client gets its result without a second round.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { CONFORMANCE_SERVER, type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { call2026, textOf } from '../support/stateless-call.ts';

const key = randomBytes(32);
let a: GatewayStack;
let b: GatewayStack;
let stranger: GatewayStack;
before(async () => {
  [a, b, stranger] = await Promise.all([
    startGatewayStack({ args: [CONFORMANCE_SERVER], requestStateKey: key }),
    startGatewayStack({ args: [CONFORMANCE_SERVER], requestStateKey: key }),
    // Another broker altogether (its own key): its states mean nothing to the replicas.
    startGatewayStack({ args: [CONFORMANCE_SERVER] }),
  ]);
});
after(async () => {
  await Promise.all([a.close(), b.close(), stranger.close()]);
});

const TOOL = 'test_input_required_result_elicitation';
const accept = (content: Record<string, unknown>) => ({ action: 'accept', content });

async function askedOn(stack: GatewayStack): Promise<{ key: string; state: string }> {
  const first = await call2026(stack.url, 'tools/call', { name: TOOL, arguments: {} });
  assert.equal(first.body.result?.['resultType'], 'input_required', JSON.stringify(first.body));
  const [k] = Object.keys(first.body.result?.['inputRequests'] as Record<string, unknown>);
  return { key: k as string, state: String(first.body.result?.['requestState']) };
}

const retry = (stack: GatewayStack, q: { key: string; state: string }, o: { token?: string } = {}) =>
  call2026(
    stack.url,
    'tools/call',
    {
      name: TOOL,
      arguments: {},
      inputResponses: { [q.key]: accept({ name: 'Bea' }) },
      requestState: q.state,
    },
    { id: 31, ...o },
  );

it('a retry with the requestState of another replica completes there', async () => {
  const q = await askedOn(a);
  const done = await retry(b, q);
  assert.equal(done.body.result?.['resultType'], 'complete', JSON.stringify(done.body));
  assert.equal(textOf(done), 'Hello, Bea!');
  assert.equal(done.body.id, 31);
});

it("another user's or another app's retry with it, or another broker's state, is still refused", async () => {
  const q = await askedOn(a);
  for (const token of ['token-bob', 'token-alice-2']) {
    const refused = await retry(b, q, { token });
    assert.equal(refused.body.error?.code, -32602, JSON.stringify(refused.body));
  }
  const foreign = await askedOn(stranger);
  const refused = await retry(b, foreign);
  assert.equal(refused.body.error?.code, -32602, JSON.stringify(refused.body));
  assert.match(String(refused.body.error?.message), /requestState is invalid/);
});
