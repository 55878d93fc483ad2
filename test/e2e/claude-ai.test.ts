// Claude.ai as the field reports it (test/support/claude-ai.ts) against the broker in front of the
// Forgejo emulator: discovery, two registrations, consent and Forgejo login through 302/303 only,
// client_secret_post, then MCP opened with server/discover (or, as before August 2026, with
// initialize and a fresh session per exchange), and an expired access token refreshed or replaced
// by a new authorization.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CLAUDE_AI_OPENING,
  CLAUDE_MCP_UA,
  CLAUDE_OAUTH_UA,
  ClaudeAi,
  ClaudeAiError,
  LEGACY,
  MODERN,
  openingOf,
} from '../support/claude-ai.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { E2E_USERS, fullNames, repoNames, STANDIN_TOOLS } from './support.ts';

let s: Stack;
before(async () => {
  s = await startStack({ emulator: { users: E2E_USERS } });
});
after(() => s.closeAll());

const connector = (o: Partial<ConstructorParameters<typeof ClaudeAi>[0]> = {}) =>
  new ClaudeAi({ url: `${s.url}/mcp`, login: { login: 'alice', password: 'alice-pw' }, ...o });

/** The MCP requests it sent: method header, session id header, version header. */
function mcpRequests(c: ClaudeAi) {
  return c.sent
    .filter((r) => r.url === `${s.url}/mcp` && r.headers['authorization'])
    .map((r) => ({
      method: r.headers['mcp-method'],
      name: r.headers['mcp-name'],
      session: r.headers['mcp-session-id'],
      version: r.headers['mcp-protocol-version'],
      ua: r.headers['user-agent'],
      status: r.status,
    }));
}

/** tools/list then tools/call on a 2025 server, each in a session of its own, as Claude.ai does now. */
const LEGACY_LIST_THEN_CALL = [
  'initialize 200',
  'notifications/initialized 202',
  'tools/list 200',
  'initialize 200',
  'notifications/initialized 202',
  'tools/call 200',
];

function expireAccessTokens(): void {
  s.broker.store.db
    .prepare("UPDATE oauth_token SET expires_at = ? WHERE kind = 'access'")
    .run(Date.now() - 1000);
  // Aged in place, behind the store's back: the bearer check's cache must be told.
  s.broker.auth.verifyBearer.forgetCached();
}

describe('Claude.ai (simulated from the field reports) against the broker and the Forgejo emulator', () => {
  it('discovers, registers twice with client_secret_post, authorizes by 302/303, and works over server/discover on 2026-07-28', async () => {
    const c = connector();
    await c.connect();

    assert.deepEqual(openingOf(c), CLAUDE_AI_OPENING);
    assert.ok(c.sent.slice(1).every((r) => r.headers['user-agent'] === CLAUDE_OAUTH_UA));
    assert.equal(c.registrations.length, 2);
    for (const r of c.registrations) {
      assert.equal(r['registration_client_uri'], `${s.url}/oauth/register/${r['client_id']}`);
      assert.ok(await s.broker.store.getClient(r['client_id'] as string), 'both registrations are kept');
    }
    assert.notEqual(c.registrations[0]?.['client_id'], c.registrations[1]?.['client_id']);
    assert.ok(c.redirects.length >= 3, `the browser was redirected: ${c.redirects}`);
    assert.ok(c.redirects.every((code) => code === 302 || code === 303));
    const p = await s.broker.auth.verifyBearer(`Bearer ${c.tokens?.access}`);
    assert.ok(p.ok);
    assert.equal(p.principal.clientId, c.client?.id, 'the second registration is the one in use');
    assert.equal(p.principal.login, 'alice');

    assert.deepEqual((await c.listTools()).sort(), STANDIN_TOOLS);
    assert.equal(c.era, 'modern');
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), fullNames('alice'));
    assert.deepEqual(mcpRequests(c), [
      {
        method: 'server/discover',
        name: undefined,
        session: undefined,
        version: MODERN,
        ua: CLAUDE_MCP_UA,
        status: 200,
      },
      {
        method: 'tools/list',
        name: undefined,
        session: undefined,
        version: MODERN,
        ua: CLAUDE_MCP_UA,
        status: 200,
      },
      {
        method: 'tools/call',
        name: 'list_my_repos',
        session: undefined,
        version: MODERN,
        ua: CLAUDE_MCP_UA,
        status: 200,
      },
    ]);
    assert.equal(c.cut, 0);
  });

  it('as before August 2026: initialize on 2025-11-25 with Mcp-Method/Mcp-Name headers, a new session for every exchange', async () => {
    const c = connector({ opening: 'initialize', login: { login: 'bob', password: 'bob-pw' } });
    await c.connect();
    assert.deepEqual((await c.listTools()).sort(), STANDIN_TOOLS);
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), fullNames('bob'));
    assert.equal(c.era, 'legacy');
    const sent = mcpRequests(c);
    assert.deepEqual(
      sent.map((r) => `${r.method} ${r.status}`),
      LEGACY_LIST_THEN_CALL,
    );
    assert.ok(sent.every((r) => r.ua === CLAUDE_MCP_UA));
    assert.equal(sent[5]?.name, 'list_my_repos');
    assert.ok(sent.filter((r) => r.method !== 'initialize').every((r) => r.version === LEGACY));
    const [first, second] = [sent[2]?.session, sent[5]?.session];
    assert.ok(first && second && first !== second, 'no session id is reused across exchanges');
    assert.equal(sent[1]?.session, first);
  });

  it('an expired access token is refreshed (client_secret_post), without the browser', async () => {
    const c = connector({ onExpiry: 'refresh' });
    await c.connect();
    assert.deepEqual((await c.listTools()).sort(), STANDIN_TOOLS);
    const before = c.tokens?.access;
    expireAccessTokens();
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), fullNames('alice'));
    assert.deepEqual(c.grants, ['authorization_code', 'refresh_token']);
    assert.equal(c.authorizations, 1);
    assert.notEqual(c.tokens?.access, before);
    const statuses = mcpRequests(c).map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(statuses.slice(-2), ['tools/call 401', 'tools/call 200']);
  });

  it('an expired access token makes it authorize again instead (also reported), with the same client', async () => {
    const c = connector({ onExpiry: 'reauthorize', opening: 'initialize' });
    await c.connect();
    const clientId = c.client?.id;
    expireAccessTokens();
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), fullNames('alice'));
    assert.deepEqual(c.grants, ['authorization_code', 'authorization_code']);
    assert.equal(c.authorizations, 2);
    assert.equal(c.client?.id, clientId);
    const p = await s.broker.auth.verifyBearer(`Bearer ${c.tokens?.access}`);
    assert.ok(p.ok && p.principal.login === 'alice');
  });

  it('registers anew after 401 invalid_client, as reported (here: its registration was deleted by RFC 7592)', async () => {
    const c = connector({ registrations: 1 });
    await c.connect();
    const old = c.client;
    assert.ok(old);
    const del = await fetch(old.configurationUri, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${old.registrationToken}` },
    });
    assert.equal(del.status, 204);
    assert.deepEqual((await c.listTools()).sort(), STANDIN_TOOLS);
    assert.deepEqual(c.grants, ['authorization_code', 'refresh_token', 'authorization_code']);
    assert.notEqual(c.client?.id, old.id, 'a new client after invalid_client');
    assert.equal(c.registrations.length, 2);
  });
});

/** A 2025-only server from the v1 SDK (sessions, no 2026 support), with no authorization. */
async function legacyServer(): Promise<{ url: string; initializes: () => number; close(): Promise<void> }> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  let initializes = 0;
  const http = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!transport) {
      if (body?.method === 'initialize') initializes++;
      const t = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
          sessions.set(sid, t);
        },
      });
      const server = new McpServer({ name: 'legacy', version: '1.0.0' });
      server.registerTool('hello', { description: 'says hello' }, async () => ({
        content: [{ type: 'text', text: 'hello from 2025' }],
      }));
      await server.connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    initializes: () => initializes,
    close: async () => {
      for (const t of sessions.values()) await t.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

/** A server whose every answer is one 400 with a 2026 error (an unsupported protocol version). */
async function modernRefusal(): Promise<{ url: string; close(): Promise<void> }> {
  const http = createServer((req, res) => {
    req.resume();
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32022, message: 'Unsupported protocol version', data: { supported: ['2099-01-01'] } },
      }),
    );
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/mcp`, close: () => new Promise((r) => http.close(() => r())) };
}

describe('the simulator keeps the 2026 fallback rule (its MCP side alone, against other servers)', () => {
  it('falls back to initialize on a 400 without a modern error (a 2025-only SDK server), re-initializing per exchange', async () => {
    const legacy = await legacyServer();
    try {
      const c = new ClaudeAi({ url: legacy.url, login: { login: '-', password: '-' } });
      assert.deepEqual(await c.listTools(), ['hello']);
      const r = await c.callTool('hello');
      assert.equal(r.content?.[0]?.text, 'hello from 2025');
      assert.equal(c.era, 'legacy');
      assert.deepEqual(
        c.sent.map((x) => `${x.headers['mcp-method']} ${x.status}`),
        ['server/discover 400', ...LEGACY_LIST_THEN_CALL],
      );
      assert.equal(legacy.initializes(), 2);
    } finally {
      await legacy.close();
    }
  });

  it('does not fall back on a 400 carrying a modern error: it gives up instead', async () => {
    const modern = await modernRefusal();
    try {
      const c = new ClaudeAi({ url: modern.url, login: { login: '-', password: '-' } });
      await assert.rejects(c.listTools(), ClaudeAiError);
      assert.deepEqual(
        c.sent.map((x) => x.headers['mcp-method']),
        ['server/discover'],
      );
    } finally {
      await modern.close();
    }
  });
});
