// Two apps of one user share the user's child. What the child says unasked — a sampling request, a
// log message — and a 2026 requestState reach only the app whose call caused them; when stdio
// leaves that open (calls of both apps in flight, or no call at all), the broker drops the message
// rather than guess. What describes the child itself (list changes) still reaches both apps.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aliceToken, drainBody, type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { rawInitialize } from '../support/mcp-oauth-client.ts';
import { eventually } from '../support/wait.ts';

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack();
});
after(() => stack.close());

type App = { bearer: string; sid: string; stream: () => string; close: () => void };

let serial = 0;
/** An app of alice's (its own grant): a session with its GET stream open. */
async function app(grantId: string): Promise<App> {
  const bearer = aliceToken(`routing-${++serial}`, { grantId });
  const init = await rawInitialize(stack.url, bearer);
  await init.text();
  const sid = init.headers.get('mcp-session-id') as string;
  const ctrl = new AbortController();
  const res = await fetch(stack.url, {
    signal: ctrl.signal,
    headers: {
      authorization: `Bearer ${bearer}`,
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-11-25',
      accept: 'text/event-stream',
    },
  });
  assert.equal(res.status, 200);
  return { bearer, sid, stream: drainBody(res).text, close: () => ctrl.abort() };
}

/** A tools/call on the app's session; resolves with the whole answer (JSON or SSE) as text. */
function call(a: App, id: number, name: string, args: Record<string, unknown> = {}): Promise<string> {
  return fetch(stack.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${a.bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': a.sid,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
  }).then((r) => r.text());
}

const inFlight = () => stack.pool.bridgesOf(1).reduce((n, b) => n + b.inFlight, 0);
const dropped = () =>
  stack.logs.lines().filter((l) => l['msg'] === 'dropped a message no single client app may see');

describe('two apps of one user', () => {
  const apps: App[] = [];
  after(() => {
    for (const a of apps) a.close();
  });

  it('a sampling request while both apps have calls in flight reaches neither: the child is told no', async () => {
    const [one, two] = [await app('g-one'), await app('g-two')];
    apps.push(one, two);
    // App one's tool asks for sampling after 600 ms; app two's later call is in flight by then.
    const asking = call(one, 1, 'sample', { delayMs: 600 });
    await eventually(() => inFlight() === 1);
    const busy = call(two, 2, 'slow', { steps: 12, ms: 100 });
    const [asked, other] = await Promise.all([asking, busy]);
    assert.doesNotMatch(other, /sampling\/createMessage/, 'app two saw app one’s question');
    assert.doesNotMatch(two.stream(), /sampling\/createMessage/);
    assert.doesNotMatch(asked, /sampling\/createMessage/);
    assert.match(asked, /no single client session can answer this request now/);
    assert.match(other, /done after 12 steps/);
    assert.ok(dropped().some((l) => l['method'] === 'sampling/createMessage'));
  });

  it('a log message during one app’s call goes on that call’s stream, and nowhere while both are busy', async () => {
    const [one, two] = [await app('g-three'), await app('g-four')];
    apps.push(one, two);
    const alone = await call(one, 3, 'log', { text: 'solo' });
    assert.match(alone, /"method":"notifications\/message".*solo during/);
    assert.doesNotMatch(two.stream(), /solo/);

    const logging = call(one, 4, 'log', { text: 'crowded', delayMs: 600 });
    await eventually(() => inFlight() === 1);
    const busy = call(two, 5, 'slow', { steps: 12, ms: 100 });
    const [logged, other] = await Promise.all([logging, busy]);
    for (const text of [logged, other, one.stream(), two.stream()]) assert.doesNotMatch(text, /crowded/);
    assert.ok(dropped().some((l) => l['method'] === 'notifications/message'));
  });

  it('a log message with no call in flight goes to the sessions of a lone grant, and is dropped across grants', async () => {
    const one = await app('g-five');
    apps.push(one);
    // Alone among alice's apps (earlier tests' sessions are deleted first).
    for (const s of stack.gateway.sessions.ofUser(1)) if (s.id !== one.sid) stack.gateway.sessions.delete(s);
    assert.match(await call(one, 6, 'log', { text: 'late-one', afterMs: 100 }), /late-one during/);
    assert.ok(await eventually(() => one.stream().includes('late-one after')));

    const two = await app('g-six');
    apps.push(two);
    const before = dropped().length;
    await call(one, 7, 'log', { text: 'late-two', afterMs: 100 });
    assert.ok(await eventually(() => dropped().length > before));
    assert.doesNotMatch(one.stream(), /late-two after/);
    assert.doesNotMatch(two.stream(), /late-two after/);
  });

  it('a list change, which is about the child itself, still reaches every app', async () => {
    const [one, two] = [await app('g-seven'), await app('g-eight')];
    apps.push(one, two);
    await call(one, 8, 'notify');
    assert.ok(
      await eventually(() => one.stream().includes('list_changed') && two.stream().includes('list_changed')),
    );
  });
});

describe('a log message during a 2026 call', () => {
  function logCall(meta: Record<string, unknown>): Promise<string> {
    return fetch(stack.url, {
      method: 'POST',
      headers: {
        authorization: 'Bearer token-alice',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'log',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: {
          name: 'log',
          arguments: { text: 'modern' },
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientCapabilities': {},
            ...meta,
          },
        },
      }),
    }).then((r) => r.text());
  }

  it('reaches the client only when its request set a logLevel the message meets', async () => {
    assert.doesNotMatch(await logCall({}), /notifications\/message/);
    assert.doesNotMatch(
      await logCall({ 'io.modelcontextprotocol/logLevel': 'error' }),
      /notifications\/message/,
    );
    assert.match(
      await logCall({ 'io.modelcontextprotocol/logLevel': 'info' }),
      /"notifications\/message".*modern during/,
    );
  });
});

describe('a 2026 requestState', () => {
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
  };
  function post2026(
    bearer: string,
    id: number,
    params: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return fetch(stack.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        accept: 'application/json',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'sample',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'sample', arguments: {}, ...params, _meta: envelope },
      }),
    }).then((r) => r.json() as Promise<Record<string, unknown>>);
  }

  it('is honoured only for the app that got it', async () => {
    const mine = aliceToken('rs-mine', { grantId: 'g-rs-mine' });
    const theirs = aliceToken('rs-theirs', { grantId: 'g-rs-theirs' });
    const first = (await post2026(mine, 1, {})) as {
      result: { resultType: string; requestState: string; inputRequests: Record<string, unknown> };
    };
    assert.equal(first.result.resultType, 'input_required');
    const key = Object.keys(first.result.inputRequests)[0] as string;
    const answer = {
      requestState: first.result.requestState,
      inputResponses: {
        [key]: { role: 'assistant', content: { type: 'text', text: 'from me' }, model: 'm' },
      },
    };
    const stolen = (await post2026(theirs, 2, answer)) as { error?: { code: number; message: string } };
    assert.equal(stolen.error?.code, -32602);
    assert.match(stolen.error?.message ?? '', /not yours/);
    const resumed = (await post2026(mine, 3, answer)) as { result: { content: { text: string }[] } };
    assert.match(resumed.result.content[0]?.text ?? '', /sampled: .*from me/);
  });
});
