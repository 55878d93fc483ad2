// Design decision 5 end to end: with Forgejo access tokens living 5 s, a client calling a tool
// without pause for 30 s sees no error while the broker replaces the user's child again and again,
// and at the end only the current child is still running.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { registerClient } from '../support/oauth-harness.ts';
import { fullFlow, type Stack, startStack, USERS } from '../support/oauth-stack.ts';
import { eventually, pidAlive } from '../support/wait.ts';

const CB = 'http://127.0.0.1:7/cb';
const RUN_MS = 30_000;

describe('token rotation under continuous use', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      emulator: {
        accessTokenTtlSeconds: 5,
        users: USERS.map((u) =>
          u.login === 'alice' ? { ...u, repos: [{ name: 'rotating', description: 'r' }] } : u,
        ),
      },
      env: { FORGEJO_REFRESH_MARGIN: '2s' },
    });
  });
  after(() => s.closeAll());

  it('30 s of list_my_repos with 5 s Forgejo tokens: no error, ≥5 children replaced, only the last one left', async (t) => {
    const client = await registerClient(s.url, { redirect_uris: [CB], token_endpoint_auth_method: 'none' });
    const { tokens } = await fullFlow(s.url, { clientId: client.client_id, redirectUri: CB });
    const mcp = new Client({ name: 'rotation-test', version: '0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
    });
    await mcp.connect(transport);

    const { pool, supervisor } = s.broker;
    const pids = new Set<number>();
    const watch = setInterval(() => {
      for (const c of supervisor.children()) pids.add(c.pid);
    }, 20);
    const before = pool.stats();
    const errors: string[] = [];
    let calls = 0;
    const end = Date.now() + RUN_MS;
    // Two callers, so a call is usually in flight on the old child at the moment it is replaced.
    const caller = async () => {
      while (Date.now() < end) {
        try {
          const r = (await mcp.callTool({ name: 'list_my_repos', arguments: {} })) as {
            isError?: boolean;
            content: { type: string; text?: string }[];
          };
          const text = r.content[0]?.text ?? '';
          if (r.isError || !text.includes('"name":"rotating"'))
            errors.push(`bad result: ${text.slice(0, 200)}`);
        } catch (e) {
          errors.push((e as Error).message);
        }
        calls++;
      }
    };
    await Promise.all([caller(), caller()]);
    for (const c of supervisor.children()) pids.add(c.pid);
    const rotations = pool.stats().rotations - before.rotations;

    await transport.terminateSession();
    await mcp.close();
    // Retired children stop once their in-flight calls are done (stop grace 3 s).
    const gone = await eventually(() => [...pids].filter(pidAlive).length <= 1, { timeoutMs: 8_000 });
    clearInterval(watch);
    const stillAlive = [...pids].filter(pidAlive);

    t.diagnostic(
      `${calls} calls, ${errors.length} errors, ${rotations} rotations, ${pids.size} children seen`,
    );
    const kinds = [...new Set(errors)].map((m) => `${errors.filter((x) => x === m).length}× ${m}`);
    assert.deepEqual(
      kinds,
      [],
      `${errors.length} of ${calls} calls failed (${rotations} rotations, ${pids.size} children)`,
    );
    assert.ok(calls > 100, `only ${calls} calls`);
    assert.ok(rotations >= 5, `only ${rotations} rotations in ${RUN_MS} ms`);
    assert.ok(pids.size >= 6, `only ${pids.size} distinct children seen`);
    assert.ok(gone, `old children still running: ${stillAlive.join(' ')} of ${[...pids].join(' ')}`);
    assert.equal(stillAlive.length, 1, 'the current child is still there until reaped');
    assert.deepEqual(
      supervisor.children().map((c) => c.pid),
      stillAlive,
      'the one left is the pool’s current child',
    );
    assert.equal(pool.stats().children, 1);
  });
});
