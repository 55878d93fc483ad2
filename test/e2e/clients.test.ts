// Issue 5 acceptance, in-process broker: real MCP SDK clients (v1 on 2025-11-25 sessions, v2 on
// stateless 2026-07-28) authorize through the broker's OAuth server (DCR, consent, the emulated
// Forgejo login, token exchange) and reach their own user's forgejo-mcp stand-in child.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  auth as authV2,
  Client as ClientV2,
  type OAuthDiscoveryState as DiscoveryV2,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { type OAuthDiscoveryState, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { Child } from '../../src/supervisor/supervisor.ts';
import { rawInitialize } from '../support/mcp-oauth-client.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { type Login, ScriptedOAuthProvider } from '../support/scripted-oauth.ts';
import { pidAlive } from '../support/wait.ts';
import { assertNotLogged, assertServesStandin, E2E_USERS, fullNames, repoNames, textOf } from './support.ts';

type V1Provider = ScriptedOAuthProvider<OAuthClientInformationMixed, OAuthTokens, OAuthDiscoveryState>;

const who = (login: string): Login => ({ login, password: `${login}-pw` });
let nextPort = 47_100;
/** Loopback redirect URIs match on any port; the scripted browser stops before the callback. */
const redirectUrl = () => `http://127.0.0.1:${nextPort++}/callback`;

let s: Stack;
let mcpUrl: URL;
/** Every client-side secret seen by these tests, checked against the broker's log at the end. */
const secrets: Record<string, string | undefined> = {};

before(async () => {
  s = await startStack({ emulator: { users: E2E_USERS } });
  mcpUrl = new URL(`${s.url}/mcp`);
});
after(async () => {
  await s.closeAll();
});

/** The SDK v1 flow as an app runs it: connect → 401 → browser → finishAuth(code) → connect again. */
async function connectV1(
  login: string,
  name: string,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; provider: V1Provider }> {
  const provider: V1Provider = new ScriptedOAuthProvider({
    redirectUrl: redirectUrl(),
    who: who(login),
    clientName: name,
  });
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await assert.rejects(new Client({ name, version: '1.0.0' }).connect(first), UnauthorizedError);
  assert.equal(provider.redirects, 1, 'the SDK sent the user to the authorization page once');
  assert.ok(provider.info?.client_id, 'the SDK registered itself (DCR)');
  assert.equal(provider.callback?.searchParams.get('iss'), s.url, 'RFC 9207 iss on the callback');
  await first.finishAuth(provider.code());
  assert.ok(provider.stored?.access_token && provider.stored.refresh_token);

  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, provider };
}

function childOf(login: string): Child {
  const mine = s.broker.supervisor.children().filter((c) => c.name === login);
  assert.equal(mine.length, 1, `one child for ${login}: ${mine.length}`);
  return mine[0] as Child;
}

async function forgejoTokensOf(userId: number): Promise<Record<string, string>> {
  const cred = await s.broker.store.getCredential(userId);
  assert.ok(cred, `user ${userId} has a Forgejo credential`);
  return { [`forgejo access ${userId}`]: cred.accessToken, [`forgejo refresh ${userId}`]: cred.refreshToken };
}

function remember(prefix: string, provider: { stored?: { access_token: string; refresh_token?: string } }) {
  secrets[`${prefix} access token`] = provider.stored?.access_token;
  secrets[`${prefix} refresh token`] = provider.stored?.refresh_token;
}

describe('issue 5 end to end, in-process broker', () => {
  it('1. SDK v1 (2025-11-25 session): OAuth via UnauthorizedError + finishAuth, then initialize → tools/list → version → list_my_repos', async () => {
    const { client, transport, provider } = await connectV1('alice', 'e2e sdk v1');
    remember('v1 alice', provider);
    Object.assign(secrets, await forgejoTokensOf(1001));

    assert.equal(transport.protocolVersion, '2025-11-25');
    assert.match(transport.sessionId ?? '', /^[\x21-\x7e]{16,}$/, 'an Mcp-Session-Id was issued');
    const p = await s.broker.auth.verifyBearer(`Bearer ${provider.stored?.access_token}`);
    assert.ok(p.ok);
    assert.equal(p.principal.login, 'alice');
    assert.equal(p.principal.clientId, provider.info?.client_id);
    const session = s.broker.gateway.sessions.ofGrant(p.principal.grantId);
    assert.deepEqual(
      session.map((x) => x.id),
      [transport.sessionId],
    );

    await assertServesStandin(client, 'alice');

    // The child is alice's and used alice's Forgejo token on the emulator.
    assert.ok(childOf('alice').pid > 0);
    const apiCalls = s.emulator.requests.filter((r) => r.path === '/api/v1/user/repos');
    assert.ok(apiCalls.length > 0 && apiCalls.every((r) => r.auth === 'token' && r.user === 'alice'));

    await transport.terminateSession();
    assert.equal(
      s.broker.gateway.sessions.ofGrant(p.principal.grantId).length,
      0,
      'DELETE ended the session',
    );
    await client.close();
  });

  it('2. SDK v2 pinned to 2026-07-28: OAuth via auth() and its provider, then tools/list → version → list_my_repos, statelessly', async () => {
    const provider = new ScriptedOAuthProvider<StoredOAuthClientInformation, StoredOAuthTokens, DiscoveryV2>({
      redirectUrl: redirectUrl(),
      who: who('bob'),
      clientName: 'e2e sdk v2',
    });
    assert.equal(await authV2(provider, { serverUrl: mcpUrl }), 'REDIRECT');
    assert.ok(provider.info?.client_id, 'the SDK registered itself (DCR)');
    const iss = provider.callback?.searchParams.get('iss') ?? undefined;
    assert.equal(iss, s.url);
    assert.equal(
      await authV2(provider, { serverUrl: mcpUrl, authorizationCode: provider.code(), iss }),
      'AUTHORIZED',
    );
    remember('v2 bob', provider);

    const client = new ClientV2(
      { name: 'e2e sdk v2', version: '2.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    const transport = new TransportV2(mcpUrl, { authProvider: provider });
    await client.connect(transport);
    await assertServesStandin(client, 'bob');

    // Stateless: no 2025 session exists for this grant, yet bob's child served the calls.
    const p = await s.broker.auth.verifyBearer(`Bearer ${provider.stored?.access_token}`);
    assert.ok(p.ok);
    assert.equal(p.principal.login, 'bob');
    assert.equal(s.broker.gateway.sessions.ofGrant(p.principal.grantId).length, 0);
    assert.equal(transport.sessionId, undefined);
    assert.ok(childOf('bob').pid > 0);
    Object.assign(secrets, await forgejoTokensOf(1002));
    await client.close();
  });

  it('3. two users, each connected at the same time, see only their own repositories, through separate children', async () => {
    const [a, b] = await Promise.all([connectV1('alice', 'e2e alice'), connectV1('bob', 'e2e bob')]);
    remember('v1 alice (3)', a.provider);
    remember('v1 bob (3)', b.provider);
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'list_my_repos', arguments: {} }),
      b.client.callTool({ name: 'list_my_repos', arguments: {} }),
    ]);
    assert.deepEqual(repoNames(ra), fullNames('alice'));
    assert.deepEqual(repoNames(rb), fullNames('bob'));
    assert.deepEqual(fullNames('alice'), ['alice/alice-notes', 'alice/alice-site']);
    assert.deepEqual(fullNames('bob'), ['bob/bob-tools']);
    const me = async (c: Client) =>
      (
        JSON.parse(textOf(await c.callTool({ name: 'get_my_user_info', arguments: {} }))) as {
          Result: { login: string };
        }
      ).Result.login;
    assert.equal(await me(a.client), 'alice');
    assert.equal(await me(b.client), 'bob');
    assert.notEqual(childOf('alice').pid, childOf('bob').pid);
    for (const x of [a, b]) {
      await x.transport.terminateSession();
      await x.client.close();
    }
  });

  it('5. revoking the client’s refresh token at /oauth/revoke ends its GET stream, 401s its next request and reaps the user’s child', async () => {
    const { client, transport, provider } = await connectV1('carol', 'e2e revoke');
    remember('v1 carol', provider);
    Object.assign(secrets, await forgejoTokensOf(1003));
    assert.deepEqual(
      repoNames(await client.callTool({ name: 'list_my_repos', arguments: {} })),
      fullNames('carol'),
    );
    const child = childOf('carol');
    const aliceChild = s.broker.supervisor.children().find((c) => c.name === 'alice');
    const access = provider.stored?.access_token as string;
    const base = {
      authorization: `Bearer ${access}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    // The SDK holds its session's GET stream; a second session of the same grant gets one of ours,
    // read until it ends.
    const init = await rawInitialize(mcpUrl, access);
    assert.equal(init.status, 200);
    await init.text();
    const sid = init.headers.get('mcp-session-id') as string;
    assert.ok(sid);
    const headers = { ...base, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const note = await fetch(mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    assert.equal(note.status, 202);
    assert.deepEqual(
      s.broker.gateway.sessions
        .ofUser(1003)
        .map((x) => x.id)
        .sort(),
      [sid, transport.sessionId].sort(),
      'the SDK’s session and ours',
    );
    const get = await fetch(mcpUrl, { headers: { ...headers, accept: 'text/event-stream' } });
    assert.equal(get.status, 200);
    assert.match(get.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = (get.body as ReadableStream<Uint8Array>).getReader();
    const streamEnded = (async () => {
      for (;;) {
        const r = await reader.read().catch(() => ({ done: true }));
        if (r.done) return 'ended';
      }
    })();
    const notYet = await Promise.race([streamEnded, new Promise((r) => setTimeout(() => r('open'), 300))]);
    assert.equal(notYet, 'open', 'the GET stream stays open before revocation');

    const res = await fetch(`${s.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: provider.stored?.refresh_token as string,
        token_type_hint: 'refresh_token',
        client_id: provider.info?.client_id as string,
      }).toString(),
    });
    assert.equal(res.status, 200);

    const within = (ms: number, what: string) =>
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms).unref(),
      );
    assert.equal(await Promise.race([streamEnded, within(5000, 'GET stream end')]), 'ended');

    const next = await fetch(mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    assert.equal(next.status, 401);
    assert.match(next.headers.get('www-authenticate') ?? '', /^Bearer .*resource_metadata="/);
    assert.equal(((await next.json()) as { error: string }).error, 'invalid_token');
    assert.equal(s.broker.gateway.sessions.ofUser(1003).length, 0, 'both sessions are gone');
    // The SDK client's next request is refused too: its refresh fails (the grant is gone) and the
    // user does not sign in again.
    provider.refuse = true;
    await assert.rejects(client.listTools());
    assert.equal(provider.stored?.access_token, access, 'no new token was issued');

    // carol's child: stopped and reaped, its process gone; alice's child untouched.
    await Promise.race([child.exited, within(8000, 'child exit')]);
    assert.equal(
      s.broker.supervisor.children().some((c) => c.name === 'carol'),
      false,
    );
    assert.equal(pidAlive(child.pid), false, 'carol’s child process is gone');
    if (aliceChild)
      assert.ok(s.broker.supervisor.children().includes(aliceChild), 'other users keep their child');
    await client.close();
  });

  it('5b. revoking only the access token closes what it opened (GET stream ends, session gone, 401); the grant lives on for a new session', async () => {
    const { client, transport, provider } = await connectV1('carol', 'e2e revoke access');
    const access = provider.stored?.access_token as string;
    const refresh = provider.stored?.refresh_token as string;
    secrets['5b access token'] = access;
    secrets['5b refresh token'] = refresh;
    const sid = transport.sessionId as string;
    const call = (token: string) =>
      fetch(mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'mcp-session-id': sid,
          'mcp-protocol-version': '2025-11-25',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
    assert.equal((await call(access)).status, 200);
    // A second session of the same grant, opened with the same access token, holding a GET stream.
    const init2 = await rawInitialize(mcpUrl, access);
    const sid2 = init2.headers.get('mcp-session-id') as string;
    const stream = await fetch(mcpUrl, {
      headers: { authorization: `Bearer ${access}`, 'mcp-session-id': sid2, accept: 'text/event-stream' },
    });
    assert.equal(stream.status, 200);
    const streamEnded = (async () => {
      const reader = stream.body!.getReader();
      try {
        while (!(await reader.read()).done) {}
      } catch {}
    })();
    const clientId = provider.info?.client_id as string;
    const revoke = await fetch(`${s.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: access, client_id: clientId }).toString(),
    });
    assert.equal(revoke.status, 200);
    const refused = await call(access);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_token');

    const renewed = await fetch(`${s.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refresh,
        client_id: clientId,
      }).toString(),
    });
    assert.equal(renewed.status, 200);
    const fresh = (await renewed.json()) as { access_token: string; refresh_token: string };
    secrets['5b renewed access token'] = fresh.access_token;
    secrets['5b renewed refresh token'] = fresh.refresh_token;
    await Promise.race([
      streamEnded,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('GET stream still open 5 s after revocation')), 5000),
      ),
    ]);
    // The sessions that token authenticated are closed; the grant lives on: a new session works.
    assert.equal((await call(fresh.access_token)).status, 404);
    const again = await rawInitialize(mcpUrl, fresh.access_token);
    assert.equal(again.status, 200);
    assert.ok(again.headers.get('mcp-session-id'));
    await transport.terminateSession().catch(() => {});
    await client.close();
  });

  it('no access, refresh or Forgejo token appears in the broker’s log', async () => {
    // The Forgejo credentials as they are now too (a refresh would have replaced the ones seen).
    for (const id of [1001, 1002, 1003]) {
      const cred = await s.broker.store.getCredential(id);
      secrets[`forgejo access ${id} (end)`] = cred?.accessToken;
      secrets[`forgejo refresh ${id} (end)`] = cred?.refreshToken;
    }
    assert.ok(Object.keys(secrets).length === 26, Object.keys(secrets).join(', '));
    assertNotLogged(s.logs.text(), secrets);
  });
});
