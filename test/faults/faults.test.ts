// Children that fail in every way a real one can, behind the real broker (OAuth token from the real
// flow, SDK v1 client on /mcp): each fault reaches the client as a clear JSON-RPC error and leaves
// no process, pool entry or supervisor slot behind.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import {
  brokerToken,
  type Connected,
  connectV1,
  rawInitialize,
  rawPost,
  recordChildPids,
  textOf,
} from '../support/mcp-oauth-client.ts';
import { FORGEJO_CLIENT_ID } from '../support/oauth-harness.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { eventually, groupAlive } from '../support/wait.ts';

const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');
const ALICE = 1001;
const BOB = 1002;

/** Child stderr lines the supervisor logged that start with `prefix`. */
function childLines(s: Stack, prefix: string): string[] {
  return s.logs
    .lines()
    .filter((l) => l['msg'] === 'child stderr' && String(l['line']).startsWith(prefix))
    .map((l) => String(l['line']));
}

async function rejection(p: Promise<unknown>): Promise<McpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McpError, `not a JSON-RPC error: ${String(e)}`);
    return e;
  }
  assert.fail('the call succeeded');
}

async function assertNoneLeft(s: Stack, pids: number[]): Promise<void> {
  assert.ok(
    await eventually(() => s.broker.supervisor.live === 0 && s.broker.pool.liveChildren === 0),
    `supervisor ${s.broker.supervisor.live}, pool ${s.broker.pool.liveChildren}`,
  );
  for (const pid of pids) assert.equal(groupAlive(pid), false, `child ${pid} is still running`);
}

describe('a child that exits at startup (Forgejo rejects its token)', () => {
  let s: Stack;
  let pids: number[];
  before(async () => {
    s = await startStack(); // the forgejo-mcp stand-in: it tests its token before serving
    pids = recordChildPids(s.broker.supervisor);
  });
  after(() => s.closeAll());

  it('the user revoked the app in Forgejo: 401 invalid_token, so the client signs in again; one child, nothing left', async () => {
    const token = await brokerToken(s.url);
    const forgejoToken = (await s.broker.auth.credentials.accessToken(ALICE)).token;
    // The user revoked the broker's app in Forgejo: the stored token is dead, the broker cannot know yet.
    s.emulator.revokeGrant('alice', FORGEJO_CLIENT_ID);
    const res = await rawInitialize(`${s.url}/mcp`, token);
    const body = await res.text();
    assert.equal(res.status, 401, body);
    assert.match(
      res.headers.get('www-authenticate') ?? '',
      /^Bearer resource_metadata="[^"]+", error="invalid_token"/,
    );
    assert.deepEqual(JSON.parse(body), {
      error: 'invalid_token',
      error_description: 'Forgejo no longer accepts this sign-in; sign in again',
    });
    assert.ok(!body.includes(forgejoToken), 'the Forgejo token is not in the answer');
    assert.equal(pids.length, 1, 'one child was started');
    // Its last words are in the broker's log, for the operator.
    assert.ok(
      s.logs
        .lines()
        .some((l) => l['msg'] === 'child stderr' && /connection test failed: 401/.test(String(l['line']))),
      'the child’s connection-test failure is logged',
    );
    await assertNoneLeft(s, pids);

    // The broker's grant went with the Forgejo one: the next request is refused before any child.
    const again = await rawInitialize(`${s.url}/mcp`, token);
    assert.equal(again.status, 401);
    assert.equal(
      ((await again.json()) as { error_description: string }).error_description,
      'the token is unknown or revoked',
    );
    assert.equal(pids.length, 1, 'no child is started for a signed-out user');
    assert.equal(await s.broker.store.getCredential(ALICE), undefined, 'the dead Forgejo credential is gone');
  });

  it('Forgejo refuses an access token it issued but still refreshes: the token is refreshed and the start retried', async () => {
    const token = await brokerToken(s.url, 'bob');
    const cred = await s.broker.store.getCredential(BOB);
    assert.ok(cred);
    // A token Forgejo no longer honours although it has not expired by the broker's clock.
    await s.broker.store.putCredential({
      ...cred,
      accessToken: 'not-a-token-forgejo-knows',
      updatedAt: Date.now(),
    });
    const before = pids.length;
    const c = await connectV1(s.url, token);
    try {
      const me = await c.client.callTool({ name: 'get_my_user_info', arguments: {} });
      assert.match(textOf(me), /"login":"bob"/);
      assert.equal(pids.length - before, 2, 'the first child failed its connection test, the second runs');
      const now = await s.broker.store.getCredential(BOB);
      assert.notEqual(now?.accessToken, 'not-a-token-forgejo-knows', 'the credential was refreshed');
      assert.equal(now?.refreshToken === cred.refreshToken, false, 'with a new refresh token');
    } finally {
      await c.client.close();
    }
  });
});

describe('fault-server behind the broker (BROKER_CALL_TIMEOUT=1s)', () => {
  let s: Stack;
  let c: Connected;
  let token: string;
  let pids: number[];
  const notifications: string[] = [];

  before(async () => {
    s = await startStack({
      env: {
        BROKER_CHILD_COMMAND: `"${process.execPath}" "${FAULT_SERVER}"`,
        BROKER_CALL_TIMEOUT: '1s',
        // These tests signal the child by the pid it reports: its host pid only outside a sandbox
        // (test/e2e/child-isolation.test.ts covers the sandboxed child).
        BROKER_CHILD_ISOLATION: 'none',
      },
    });
    pids = recordChildPids(s.broker.supervisor);
    token = await brokerToken(s.url);
    c = await connectV1(s.url, token);
    c.client.fallbackNotificationHandler = async (n) => {
      notifications.push(JSON.stringify(n));
    };
  });
  after(async () => {
    await c.client.close();
    await s.closeAll();
    for (const pid of pids) assert.equal(groupAlive(pid), false, `child ${pid} outlived the broker`);
  });

  const pidOfChild = async () => Number(textOf(await c.client.callTool({ name: 'pid', arguments: {} })));

  it('a child killed mid-call fails that call clearly; the next call gets a new child', async () => {
    const first = await pidOfChild();
    const [child] = s.broker.supervisor.children();
    assert.equal(child?.pid, first);
    const call = c.client.callTool({ name: 'slow', arguments: { steps: 100, ms: 100 } }, undefined, {
      onprogress: (p) => {
        if (p.progress === 1) process.kill(first, 'SIGKILL');
      },
    });
    const e = await rejection(call);
    assert.equal(e.code, -32000);
    assert.match(e.message, /the MCP server was killed by SIGKILL/);
    assert.ok(await eventually(() => !groupAlive(first)), 'the killed child is gone');

    const second = await pidOfChild();
    assert.notEqual(second, first);
    assert.equal(textOf(await c.client.callTool({ name: 'echo', arguments: { text: 'back' } })), 'back');
    assert.ok(
      await eventually(() => s.broker.supervisor.live === 1),
      `supervisor ${s.broker.supervisor.live}`,
    );
    assert.equal(s.broker.pool.liveChildren, 1);
    assert.deepEqual(
      s.broker.supervisor.children().map((ch) => ch.pid),
      [second],
    );
  });

  it('garbage on the child’s stdout is skipped and logged; the call still succeeds', async () => {
    const skipped = () =>
      s.logs.lines().filter((l) => l['msg'] === 'skipped a stdout line that is not JSON-RPC');
    const before = skipped().length;
    const r = await c.client.callTool({ name: 'garbage', arguments: {} });
    assert.equal(textOf(r), 'after garbage');
    assert.equal(r.isError, undefined);
    assert.ok(
      await eventually(() => skipped().length === before + 3),
      `${skipped().length - before} lines logged`,
    );
    for (const l of skipped().slice(before)) {
      assert.equal(l['child'], 'alice');
      assert.equal(l['reason'], 'not JSON');
      assert.equal(typeof l['bytes'], 'number');
    }
    const logged = s.logs.text();
    assert.ok(!logged.includes('this is not json') && !logged.includes('colour noise'), 'garbage not logged');
    assert.ok(
      notifications.every((n) => !n.includes('not json') && !n.includes('colour noise')),
      notifications.join('\n'),
    );
    assert.equal(s.broker.pool.liveChildren, 1);
  });

  it('a child that never answers: the client gets a timeout error and the child is told to cancel', async () => {
    const child = s.broker.supervisor.children()[0];
    const before = childLines(s, 'fault-server: cancelled').length;
    const e = await rejection(c.client.callTool({ name: 'hang', arguments: {} }));
    assert.equal(e.code, -32001);
    assert.match(e.message, /request timed out after 1000 ms/);
    assert.ok(
      await eventually(() => childLines(s, 'fault-server: cancelled').length === before + 1),
      'the child received notifications/cancelled',
    );
    const [bridge] = s.broker.pool.bridgesOf(ALICE);
    assert.equal(bridge?.inFlight, 0);
    // The child itself is fine and still the one serving.
    assert.equal(
      textOf(await c.client.callTool({ name: 'echo', arguments: { text: 'still here' } })),
      'still here',
    );
    assert.deepEqual(
      s.broker.supervisor.children().map((ch) => ch.pid),
      [child?.pid],
    );
    assert.equal(s.broker.pool.liveChildren, 1);
  });

  it('a client that disconnects mid-stream gets its call cancelled in the child', async () => {
    const child = s.broker.supervisor.children()[0];
    const before = childLines(s, 'fault-server: cancelled').length;
    const ctrl = new AbortController();
    const res = await rawPost(
      `${s.url}/mcp`,
      token,
      {
        jsonrpc: '2.0',
        id: 'cut-me',
        method: 'tools/call',
        params: { name: 'slow', arguments: { steps: 100, ms: 100 }, _meta: { progressToken: 'p' } },
      },
      { sessionId: c.transport.sessionId as string, signal: ctrl.signal },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let seen = '';
    while (!seen.includes('notifications/progress')) {
      const { value, done } = await reader.read();
      assert.ok(!done, `stream ended before any progress: ${seen}`);
      seen += Buffer.from(value).toString('utf8');
    }
    const [bridge] = s.broker.pool.bridgesOf(ALICE);
    assert.equal(bridge?.inFlight, 1);
    ctrl.abort();
    await reader.closed.catch(() => {});
    assert.ok(
      await eventually(() => childLines(s, 'fault-server: cancelled').length === before + 1),
      'the child received notifications/cancelled',
    );
    assert.equal(bridge?.inFlight, 0);
    assert.deepEqual(
      s.broker.supervisor.children().map((ch) => ch.pid),
      [child?.pid],
    );
    assert.equal(s.broker.pool.liveChildren, 1);
  });

  describe('the same faults for a 2026-07-28 client (SDK v2, stateless)', () => {
    let v2: ClientV2;
    before(async () => {
      v2 = new ClientV2(
        { name: 'faults-v2', version: '0' },
        { versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      await v2.connect(
        new TransportV2(new URL(`${s.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
    });
    after(() => v2.close());

    const v2Rejection = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        return e as Error & { code?: number };
      }
      assert.fail('the call succeeded');
    };

    it('a child killed mid-call fails that call clearly; the next call gets a new child', async () => {
      const first = Number(textOf(await v2.callTool({ name: 'pid', arguments: {} })));
      const e = await v2Rejection(
        v2.callTool(
          { name: 'slow', arguments: { steps: 100, ms: 100 } },
          {
            onprogress: (p) => {
              if (p.progress === 1) process.kill(first, 'SIGKILL');
            },
          },
        ),
      );
      assert.equal(e.code, -32000);
      assert.match(e.message, /the MCP server was killed by SIGKILL/);
      const second = Number(textOf(await v2.callTool({ name: 'pid', arguments: {} })));
      assert.notEqual(second, first);
      assert.ok(
        await eventually(() => s.broker.supervisor.live === 1),
        `supervisor ${s.broker.supervisor.live}`,
      );
      assert.equal(s.broker.pool.liveChildren, 1);
      assert.equal(groupAlive(first), false);
    });

    it('a child that never answers: a timeout error, and the child is told to cancel', async () => {
      const before = childLines(s, 'fault-server: cancelled').length;
      const e = await v2Rejection(v2.callTool({ name: 'hang', arguments: {} }));
      assert.equal(e.code, -32001);
      assert.match(e.message, /request timed out after 1000 ms/);
      assert.ok(await eventually(() => childLines(s, 'fault-server: cancelled').length === before + 1));
      assert.equal(s.broker.pool.bridgesOf(ALICE)[0]?.inFlight, 0);
    });

    it('closing the stream mid-call (abort) cancels the call in the child', async () => {
      const before = childLines(s, 'fault-server: cancelled').length;
      const ctrl = new AbortController();
      const e = await v2Rejection(
        v2.callTool(
          { name: 'slow', arguments: { steps: 100, ms: 100 } },
          {
            signal: ctrl.signal,
            onprogress: (p) => {
              if (p.progress === 1) ctrl.abort();
            },
          },
        ),
      );
      assert.ok(ctrl.signal.aborted, e.message);
      assert.ok(
        await eventually(() => childLines(s, 'fault-server: cancelled').length === before + 1),
        'the child received notifications/cancelled',
      );
      assert.equal(s.broker.pool.bridgesOf(ALICE)[0]?.inFlight, 0);
      assert.equal(s.broker.pool.liveChildren, 1);
    });
  });

  it('after everything, closing the broker leaves no child and no pool entry', async () => {
    await c.client.close();
    await s.broker.pool.stopAll(Date.now() + 1000);
    await assertNoneLeft(s, pids);
    assert.equal(s.broker.pool.stats().users, 0);
  });
});
