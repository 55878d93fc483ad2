// 2026-07-28 requests in front of a 2025 child (the conformance fixture server, real process): what
// the broker must add or refuse that the child knows nothing of. Raw HTTP, so every status, code and
// id is seen as a client sees it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CONFORMANCE_SERVER, type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { type Answer, type CallOptions, call2026, textOf } from '../support/stateless-call.ts';

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack({ args: [CONFORMANCE_SERVER] });
});
after(() => stack.close());

const call = (method: string, params: Record<string, unknown>, o: CallOptions = {}) =>
  call2026(stack.url, method, params, o);

const tool = (name: string, extra: Record<string, unknown> = {}) => ({ name, arguments: {}, ...extra });
const accept = (content: Record<string, unknown>) => ({ action: 'accept', content });
const sampled = (text: string) => ({ role: 'assistant', content: { type: 'text', text }, model: 'm' });
function inputRequests(a: Answer): Record<string, { method: string; params?: Record<string, unknown> }> {
  assert.equal(a.body.result?.['resultType'], 'input_required', JSON.stringify(a.body));
  return a.body.result?.['inputRequests'] as Record<string, { method: string }>;
}

describe('client capabilities decide what the child may ask', () => {
  it('a call that cannot do without an undeclared capability ends in -32021 with HTTP 400', async () => {
    const a = await call('tools/call', tool('test_missing_capability'), { caps: {}, id: 401 });
    assert.equal(a.status, 400);
    assert.equal(a.body.id, 401);
    assert.equal(a.body.error?.code, -32021);
    assert.deepEqual(a.body.error?.data, { requiredCapabilities: { sampling: {} } });
  });

  it('a question the client cannot answer is refused to the child, which goes on without it', async () => {
    const first = await call('tools/call', tool('test_input_required_result_capabilities'), {
      caps: { sampling: {} },
    });
    const asked = inputRequests(first);
    assert.deepEqual(
      Object.values(asked).map((q) => q.method),
      ['sampling/createMessage'],
    );
    const [key] = Object.keys(asked);
    const done = await call(
      'tools/call',
      tool('test_input_required_result_capabilities', {
        inputResponses: { [key as string]: sampled('Paris') },
        requestState: first.body.result?.['requestState'],
      }),
      { caps: { sampling: {} } },
    );
    assert.equal(done.body.result?.['resultType'], 'complete');
    assert.equal(textOf(done), 'no elicitation; model=Paris');
  });
});

describe('multi-round-trip calls', () => {
  it('puts every question of one burst into one InputRequiredResult', async () => {
    const first = await call('tools/call', tool('test_input_required_result_multiple_inputs'));
    const asked = inputRequests(first);
    assert.deepEqual(
      Object.values(asked)
        .map((q) => q.method)
        .sort(),
      ['elicitation/create', 'roots/list', 'sampling/createMessage'],
    );
    const answers: Record<string, unknown> = {};
    for (const [k, q] of Object.entries(asked)) {
      answers[k] =
        q.method === 'elicitation/create'
          ? accept({ name: 'Alice' })
          : q.method === 'roots/list'
            ? { roots: [{ uri: 'file:///r' }] }
            : sampled('Hi');
    }
    const done = await call(
      'tools/call',
      tool('test_input_required_result_multiple_inputs', {
        inputResponses: answers,
        requestState: first.body.result?.['requestState'],
      }),
    );
    assert.equal(textOf(done), 'Hi {"name":"Alice"} (1 roots)');
  });

  it('refuses a tampered, replayed, foreign or method-swapped requestState', async () => {
    const r1 = await call('tools/call', tool('test_input_required_result_multi_round'));
    const [k1] = Object.keys(inputRequests(r1));
    const state1 = String(r1.body.result?.['requestState']);
    const answer1 = { inputResponses: { [k1 as string]: accept({ name: 'Alice' }) } };
    const refused = async (state: string, token = 'token-alice', method = 'tools/call') => {
      const params =
        method === 'tools/call'
          ? tool('test_input_required_result_multi_round', { ...answer1, requestState: state })
          : { name: 'test_input_required_result_prompt', ...answer1, requestState: state };
      const a = await call(method, params, { token, id: 77 });
      assert.equal(a.body.error?.code, -32602, JSON.stringify(a.body));
      assert.equal(a.body.id, 77);
    };
    const [body, mac] = state1.slice(4).split('.');
    await refused(`${state1}-TAMPERED`);
    await refused(`rs1.${body}.${mac?.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`);
    await refused(state1, 'token-bob');
    await refused(state1, 'token-alice-2'); // the same user through another grant
    await refused(state1, 'token-alice', 'prompts/get');
    // The genuine state still works after all that, and moves on to a new round with a new state.
    const r2 = await call(
      'tools/call',
      tool('test_input_required_result_multi_round', { ...answer1, requestState: state1 }),
    );
    const [k2] = Object.keys(inputRequests(r2));
    const state2 = String(r2.body.result?.['requestState']);
    assert.notEqual(state2, state1);
    await refused(state1); // round 1's state is spent
    const r3 = await call(
      'tools/call',
      tool('test_input_required_result_multi_round', {
        inputResponses: { [k2 as string]: accept({ color: 'blue' }) },
        requestState: state2,
      }),
    );
    assert.equal(textOf(r3), 'Alice likes blue');
  });

  it('answers sent again without the requestState are used, not thrown away', async () => {
    const first = await call('tools/call', tool('test_input_required_result_elicitation'));
    const [key] = Object.keys(inputRequests(first));
    // The client lost the state (or the broker restarted): the same question gets the same key,
    // so the answer it already has goes to the child and no second round is needed.
    const again = await call(
      'tools/call',
      tool('test_input_required_result_elicitation', {
        inputResponses: { [key as string]: accept({ name: 'Bea' }), stray: accept({ x: 1 }) },
      }),
    );
    assert.equal(again.body.result?.['resultType'], 'complete');
    assert.equal(textOf(again), 'Hello, Bea!');
    // Answers under keys the broker never gave are ignored: the child's question is put again.
    const unknown = await call(
      'tools/call',
      tool('test_input_required_result_elicitation', {
        inputResponses: { user_name: accept({ name: 'X' }) },
      }),
    );
    assert.equal(unknown.body.result?.['resultType'], 'input_required');
  });
});

describe('what 2026 adds to a 2025 child', () => {
  it('checks Mcp-Param-* headers of x-mcp-header arguments', async () => {
    const args = { arguments: { region: 'eu-west' } };
    const ok = await call(
      'tools/call',
      { name: 'test_header_param', ...args },
      {
        headers: { 'mcp-param-region': 'eu-west' },
      },
    );
    assert.equal(textOf(ok), 'region=eu-west');
    const b64 = await call(
      'tools/call',
      { name: 'test_header_param', ...args },
      {
        headers: { 'mcp-param-region': `=?base64?${Buffer.from('eu-west').toString('base64')}?=` },
      },
    );
    assert.equal(textOf(b64), 'region=eu-west');
    const wrong: Record<string, string>[] = [
      {},
      { 'mcp-param-region': 'us-east' },
      { 'mcp-param-region': '=?base64?ZXUtd2VzdA?=' },
      { 'mcp-param-region': '=?base64?ZXUt!!!d2VzdA==?=' },
    ];
    for (const headers of wrong) {
      const a = await call('tools/call', { name: 'test_header_param', ...args }, { headers, id: 9 });
      assert.equal(a.status, 400, JSON.stringify(headers));
      assert.equal(a.body.error?.code, -32020);
      assert.equal(a.body.id, 9);
    }
  });

  it('passes the child’s log messages only to a request that asked for them, from its level up', async () => {
    const logs = async (level?: string) => {
      const a = await call('tools/call', tool('test_tool_with_logging'), {
        ...(level ? { meta: { 'io.modelcontextprotocol/logLevel': level } } : {}),
      });
      assert.equal(textOf(a), 'Tool with logging executed successfully');
      return a.frames.filter((f) => f['method'] === 'notifications/message').length;
    };
    assert.equal(await logs(), 0);
    assert.equal(await logs('error'), 0);
    assert.equal(await logs('info'), 3);
  });

  it('says a missing resource the 2026 way: -32602 with the URI', async () => {
    const a = await call('resources/read', { uri: 'test://nope' });
    assert.equal(a.body.error?.code, -32602);
    assert.equal(a.body.error?.data?.uri, 'test://nope');
  });

  it('answers envelope errors with the request id', async () => {
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: 'Bearer token-alice',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'server/discover',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'req-7',
        method: 'server/discover',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
      }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { id: unknown; error: { code: number } };
    assert.equal(body.id, 'req-7');
    assert.equal(body.error.code, -32602);
  });

  it('gives list and read results caching hints and every result a resultType', async () => {
    for (const [method, params] of [
      ['tools/list', {}],
      ['prompts/list', {}],
      ['resources/list', {}],
      ['resources/templates/list', {}],
      ['resources/read', { uri: 'test://static-text' }],
    ] as const) {
      const a = await call(method, params);
      assert.equal(a.body.result?.['resultType'], 'complete', method);
      assert.equal(a.body.result?.['ttlMs'], 0, method);
      assert.equal(a.body.result?.['cacheScope'], 'private', method);
    }
    const c = await call('tools/call', tool('test_simple_text'));
    assert.equal(c.body.result?.['resultType'], 'complete');
  });
});
