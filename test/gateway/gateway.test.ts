import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { drainBody, type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { eventually } from '../support/wait.ts';

let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack();
});
after(() => stack.close());

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

async function v1(
  token = 'token-alice',
  version?: string,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: 'v1-test', version: '0' },
    { capabilities: { sampling: {} }, ...(version ? { supportedProtocolVersions: [version] } : {}) },
  );
  const transport = new StreamableHTTPClientTransport(new URL(stack.url), { requestInit: auth(token) });
  await client.connect(transport);
  return { client, transport };
}

function textOf(r: unknown): string {
  return ((r as { content: { text: string }[] }).content[0] as { text: string }).text;
}

async function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(stack.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: 'Bearer token-alice',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const init = (v = '2025-11-25') => ({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: v, capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});

describe('the gate', () => {
  it('answers 401 with the resource metadata URL, and says invalid_token when a token was given', async () => {
    const none = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(none.status, 401);
    const base = new URL(stack.url).origin;
    assert.equal(
      none.headers.get('www-authenticate'),
      `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
    );
    const bad = await post(init(), { authorization: 'Bearer nope' });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('answers a CORS preflight before the bearer check, and refuses foreign Origins and Hosts', async () => {
    const pre = await fetch(stack.url, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:6274');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /mcp-session-id/);
    const evil = await post(init(), { origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    const ok = await post(init(), { origin: 'http://localhost:6274' });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('access-control-expose-headers') ?? '', /mcp-session-id/);
  });

  /** A POST /mcp with exactly this Host header (fetch would set its own). */
  async function statusWithHost(host: string): Promise<number> {
    const { request } = await import('node:http');
    const u = new URL(stack.url);
    return new Promise<number>((resolve, reject) => {
      const r = request(
        {
          host: u.hostname,
          port: u.port,
          path: '/mcp',
          method: 'POST',
          headers: {
            host,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: 'Bearer token-alice',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      r.end(JSON.stringify(init()));
    });
  }

  it('refuses a Host header that is not the public host (DNS rebinding)', async () => {
    assert.equal(await statusWithHost('attacker.example'), 403);
    assert.equal(await statusWithHost(new URL(stack.url).host), 200);
    assert.equal(await statusWithHost(`localhost:${new URL(stack.url).port}`), 200);
  });

  it('parses Host and Origin strictly: userinfo, paths or junk around a loopback host are refused', async () => {
    const port = new URL(stack.url).port;
    for (const host of [
      'evil.example@127.0.0.1',
      `evil.example@127.0.0.1:${port}`,
      `127.0.0.1:${port}@evil.example`,
      `127.0.0.1:${port}/x`,
      `127.0.0.1:${port}#x`,
      '127.0.0.1:99999',
      '[::1',
      '[not:an:ip]',
    ]) {
      assert.equal(await statusWithHost(host), 403, host);
    }
    for (const origin of [
      'http://evil@127.0.0.1',
      `http://evil@127.0.0.1:${port}`,
      'http://127.0.0.1.evil.example',
      'http://localhost:6274/path',
      'http://localhost:6274?x',
      'null',
      'javascript://localhost',
    ]) {
      const res = await post(init(), { origin });
      assert.equal(res.status, 403, origin);
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
    }
    assert.equal((await post(init(), { origin: 'http://[::1]:6274' })).status, 200);
  });

  it('answers other methods with 405 and an Allow header', async () => {
    const res = await fetch(stack.url, { method: 'PUT', headers: { authorization: 'Bearer token-alice' } });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') ?? '', /POST/);
  });
});

describe('2025 sessions with the SDK v1 client', () => {
  it('initializes, lists tools and calls one', async () => {
    const { client } = await v1();
    assert.equal(client.getServerVersion()?.name, 'fault-server');
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'));
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'hi');
    await client.close();
  });

  for (const version of ['2025-03-26', '2025-06-18', '2025-11-25']) {
    it(`negotiates ${version}`, async () => {
      const { client } = await v1('token-alice', version);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: version } })), version);
      await client.close();
    });
  }

  it('streams progress before the result on the request’s own stream', async () => {
    const { client } = await v1();
    const seen: string[] = [];
    const r = await client.callTool({ name: 'slow', arguments: { steps: 3, ms: 50 } }, undefined, {
      onprogress: (p) => seen.push(`progress ${p.progress}/${p.total}`),
    });
    seen.push(textOf(r));
    assert.deepEqual(seen, ['progress 1/3', 'progress 2/3', 'progress 3/3', 'done after 3 steps']);
    await client.close();
  });

  it('completes a sampling request through the broker', async () => {
    const { client } = await v1();
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'sampled by v1' },
      model: 'test',
    }));
    const r = await client.callTool({ name: 'sample', arguments: { prompt: 'x' } });
    assert.equal(textOf(r), 'sampled: {"type":"text","text":"sampled by v1"}');
    await client.close();
  });

  it('re-initializing before every call starts no new child', async () => {
    const before = stack.pool.stats().starts;
    for (let i = 0; i < 5; i++) {
      const { client } = await v1();
      await client.callTool({ name: 'echo', arguments: { text: String(i) } });
      await client.close();
    }
    assert.equal(stack.pool.stats().starts, before);
  });

  it('keeps a session to its user: another user’s token gets 404', async () => {
    const { transport, client } = await v1();
    const sid = transport.sessionId as string;
    const res = await post(
      { jsonrpc: '2.0', id: 5, method: 'tools/list' },
      {
        authorization: 'Bearer token-bob',
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
    );
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32001);
    await client.close();
  });

  it('two users get two children', async () => {
    const a = await v1('token-alice');
    const b = await v1('token-bob');
    const pa = textOf(await a.client.callTool({ name: 'pid', arguments: {} }));
    const pb = textOf(await b.client.callTool({ name: 'pid', arguments: {} }));
    assert.notEqual(pa, pb);
    await a.client.close();
    await b.client.close();
  });

  it('tells the child a call was cancelled when the client disconnects mid-stream', async () => {
    const res = await post(init());
    const sid = res.headers.get('mcp-session-id') as string;
    const ctrl = new AbortController();
    const pending = fetch(stack.url, {
      method: 'POST',
      signal: ctrl.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: 'Bearer token-alice',
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'cut-me',
        method: 'tools/call',
        params: { name: 'hang', arguments: {} },
      }),
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const before = stack.logs.text().split('fault-server: cancelled').length;
    ctrl.abort();
    await pending;
    await eventually(() => stack.logs.text().split('fault-server: cancelled').length > before);
    assert.ok(
      stack.logs.text().split('fault-server: cancelled').length > before,
      'the child saw notifications/cancelled',
    );
  });
});

describe('2025 transport rules', () => {
  it('missing session → 400, unknown session → 404, notifications only → 202, DELETE ends the session', async () => {
    const noSession = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    assert.equal(noSession.status, 400);
    const unknown = await post({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': 'nope' });
    assert.equal(unknown.status, 404);
    const r = await post(init());
    const sid = r.headers.get('mcp-session-id') as string;
    assert.match(sid, /^[\x21-\x7e]{16,}$/);
    const note = await post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sid },
    );
    assert.equal(note.status, 202);
    assert.equal(await note.text(), '');
    const del = await fetch(stack.url, {
      method: 'DELETE',
      headers: { authorization: 'Bearer token-alice', 'mcp-session-id': sid },
    });
    assert.equal(del.status, 200);
    const after = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': sid });
    assert.equal(after.status, 404);
  });

  it('bounds what a session keeps of the client: oversized clientInfo or capabilities get -32602', async () => {
    const big = 'x'.repeat(9000);
    const tooLong = [
      { capabilities: {}, clientInfo: { name: big.slice(0, 2100), version: '0' } },
      { capabilities: { experimental: { big } }, clientInfo: { name: 'raw', version: '0' } },
    ];
    for (const params of tooLong) {
      const r = await post({ ...init(), id: 5, params: { protocolVersion: '2025-11-25', ...params } });
      assert.equal(r.status, 400);
      const body = (await r.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(body.id, 5);
      assert.equal(body.error.code, -32602);
      assert.match(body.error.message, /longer than \d+ characters of JSON/);
      assert.equal(r.headers.get('mcp-session-id'), null, 'no session');
    }
  });

  it('refuses bad JSON, bad content types, unsupported versions and a second GET stream', async () => {
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post(init(), { 'content-type': 'text/plain' })).status, 415);
    const r = await post(init());
    const sid = r.headers.get('mcp-session-id') as string;
    const badVersion = await post(
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' },
    );
    assert.equal(badVersion.status, 400);
    const headers = {
      authorization: 'Bearer token-alice',
      'mcp-session-id': sid,
      accept: 'text/event-stream',
    };
    const first = await fetch(stack.url, { headers });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'text/event-stream');
    const second = await fetch(stack.url, { headers });
    assert.equal(second.status, 409);
    await first.body?.cancel();
  });

  it('answers a batch only in 2025-03-26', async () => {
    const r = await post(init('2025-06-18'));
    const sid = r.headers.get('mcp-session-id') as string;
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { jsonrpc: '2.0', id: 2, method: 'ping' },
    ];
    assert.equal((await post(batch, { 'mcp-session-id': sid })).status, 400);
    const old = await post(init('2025-03-26'));
    const oldSid = old.headers.get('mcp-session-id') as string;
    const ok = await post(batch, { 'mcp-session-id': oldSid });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), [
      { jsonrpc: '2.0', id: 1, result: {} },
      { jsonrpc: '2.0', id: 2, result: {} },
    ]);
  });
});

describe('2026-07-28 with the SDK v2 client', () => {
  async function v2(): Promise<ClientV2> {
    const client = new ClientV2(
      { name: 'v2-test', version: '0' },
      { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(new TransportV2(new URL(stack.url), { requestInit: auth('token-alice') }));
    return client;
  }

  it('discovers the server, lists tools and calls one, statelessly', async () => {
    const client = await v2();
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'));
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'modern' } })), 'modern');
    await client.close();
  });

  it('turns the child’s sampling request into an input_required round trip', async () => {
    const client = await v2();
    client.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'sampled by v2' },
      model: 'test',
    }));
    const r = await client.callTool({ name: 'sample', arguments: { prompt: 'y' } });
    assert.equal(textOf(r), 'sampled: {"type":"text","text":"sampled by v2"}');
    await client.close();
  });

  it('the v2 client in auto mode also connects (and a default v2 client speaks 2025)', async () => {
    for (const mode of ['auto', 'legacy'] as const) {
      const client = new ClientV2({ name: 'v2-auto', version: '0' }, { versionNegotiation: { mode } });
      await client.connect(new TransportV2(new URL(stack.url), { requestInit: auth('token-alice') }));
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: mode } })), mode);
      await client.close();
    }
  });

  it('checks the envelope against its headers', async () => {
    const body = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'echo',
        arguments: {},
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    };
    const mismatch = await post(body, {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'other',
    });
    assert.equal(mismatch.status, 400);
    assert.equal(((await mismatch.json()) as { error: { code: number } }).error.code, -32020);
    const ok = await post(body, {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    });
    assert.equal(ok.status, 200);
    const res = (await ok.json()) as { result: Record<string, unknown> };
    assert.equal(res.result['resultType'], 'complete');
    assert.deepEqual((res.result['_meta'] as Record<string, unknown>)['io.modelcontextprotocol/serverInfo'], {
      name: 'fault-server',
      version: '1.0.0',
    });
  });
});

describe('notifications that belong to no request', () => {
  async function openStream(token: string): Promise<{ sid: string; text: () => string; close: () => void }> {
    const r = await post(init(), { authorization: `Bearer ${token}` });
    const sid = r.headers.get('mcp-session-id') as string;
    const ctrl = new AbortController();
    const res = await fetch(stack.url, {
      signal: ctrl.signal,
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, accept: 'text/event-stream' },
    });
    assert.equal(res.status, 200);
    return { sid, text: drainBody(res).text, close: () => ctrl.abort() };
  }

  it('list-changed goes to every session of the user, and to no other user', async () => {
    const a1 = await openStream('token-alice');
    const a2 = await openStream('token-alice');
    const b = await openStream('token-bob');
    await post(
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'notify', arguments: {} } },
      { 'mcp-session-id': a1.sid, 'mcp-protocol-version': '2025-11-25' },
    );
    await eventually(() => a1.text().includes('list_changed') && a2.text().includes('list_changed'));
    assert.match(a1.text(), /"method":"notifications\/tools\/list_changed"/);
    assert.match(a2.text(), /"method":"notifications\/tools\/list_changed"/);
    assert.doesNotMatch(b.text(), /list_changed/);
    for (const s of [a1, a2, b]) s.close();
  });
});

describe('request log', () => {
  it('logs one line per /mcp request with its status and duration, never the bearer', async () => {
    // POST only: a GET stream an earlier test closed may be logged (as aborted) while this one runs.
    const count = () =>
      stack.logs
        .lines()
        .filter((l) => l['msg'] === 'request' && l['route'] === '/mcp' && l['method'] === 'POST');
    const before = count().length;
    await (await post(init())).text();
    await (await post(init(), { authorization: 'Bearer not-a-real-token-7f3a' })).text();
    await new Promise((r) => setTimeout(r, 100));
    const lines = count().slice(before);
    assert.deepEqual(
      lines.map((l) => l['status']),
      [200, 401],
    );
    for (const l of lines) assert.equal(typeof l['ms'], 'number');
    assert.ok(!stack.logs.text().includes('not-a-real-token-7f3a'));
  });
});
