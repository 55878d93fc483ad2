import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Pool, PoolFullError, type PoolOptions } from '../../src/pool/pool.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { captureLogger } from '../support/log-capture.ts';
import { callTool, faultPoolOptions, numberedTokens } from '../support/pool-fixture.ts';
import { pidAlive, waitFor } from '../support/wait.ts';

const logs = captureLogger('info');
const supervisor = new Supervisor({ log: logs.log });
after(() => supervisor.stopAll(500, 100));

function pool(over: Partial<PoolOptions> = {}): Pool {
  return new Pool(faultPoolOptions({ spawner: supervisor, log: logs.log, ...over }));
}

function tool(p: Pool, userId: number, name: string, args: Record<string, unknown> = {}): Promise<string> {
  return callTool(p, { id: userId, login: `user${userId}` }, name, args);
}

describe('pool', () => {
  it('starts one child per user, once, even for concurrent first requests', async () => {
    const p = pool();
    const user = { id: 1, login: 'alice' };
    const [a, b, c] = await Promise.all([p.acquire(user), p.acquire(user), p.acquire(user)]);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(p.stats().starts, 1);
    const other = await p.acquire({ id: 2, login: 'bob' });
    assert.notEqual(other, a);
    assert.equal(p.stats().children, 2);
    assert.notEqual(await tool(p, 1, 'pid'), await tool(p, 2, 'pid'));
    await p.stopAll(Date.now() + 1000);
    assert.equal(p.liveChildren, 0);
  });

  it('gives the child only FORGEJO_URL, its own token, PATH and HOME', async () => {
    process.env['BROKER_TEST_SECRET'] = 'must-not-leak';
    const p = pool();
    const env = JSON.parse(await tool(p, 3, 'env')) as Record<string, string>;
    delete process.env['BROKER_TEST_SECRET'];
    assert.deepEqual(Object.keys(env).sort(), ['FORGEJO_ACCESS_TOKEN', 'FORGEJO_URL', 'HOME', 'PATH']);
    assert.equal(env['FORGEJO_ACCESS_TOKEN'], 'tok-3-1');
    assert.equal(env['FORGEJO_URL'], 'http://127.0.0.1:9');
    await p.stopAll(Date.now() + 1000);
  });

  it('reaps an idle child and transparently starts a new one on the next call', async () => {
    const p = pool({ idleMs: 300 });
    const first = Number(await tool(p, 4, 'pid'));
    await waitFor(() => !pidAlive(first) && p.liveChildren === 0, { what: 'the idle child to be reaped' });
    const second = Number(await tool(p, 4, 'pid'));
    assert.notEqual(second, first);
    await p.stopAll(Date.now() + 1000);
  });

  it('respawns after the child dies mid-call; only that call fails', async () => {
    const p = pool();
    await assert.rejects(tool(p, 5, 'crash'), /^Error: the MCP server exited with status 3$/);
    assert.match(await tool(p, 5, 'echo', { text: 'back' }), /back/);
    assert.equal(p.stats().starts, 2);
    await p.stopAll(Date.now() + 1000);
  });

  it('evicts the longest-idle child at the cap, and refuses when every child is busy', async () => {
    const p = pool({ maxChildren: 2 });
    const pid10 = Number(await tool(p, 10, 'pid'));
    await new Promise((r) => setTimeout(r, 20));
    await tool(p, 11, 'pid');
    await tool(p, 12, 'pid'); // evicts user 10, the longest idle
    await waitFor(() => !pidAlive(pid10), { what: 'the evicted child to stop' });
    assert.equal(p.liveChildren, 2);
    // Both remaining children busy: nothing can be evicted.
    const hung = [tool(p, 11, 'hang'), tool(p, 12, 'hang')].map((h) => h.catch((e: Error) => e));
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(
      p.acquire({ id: 13, login: 'u13' }),
      (e: unknown) => e instanceof PoolFullError && e.retryAfterSeconds > 0,
    );
    await p.stopAll(Date.now() + 500);
    for (const e of await Promise.all(hung)) assert.match(String(e), /shutting down/);
  });

  it('prewarms a signed-in user once, and never evicts anyone to do it', async () => {
    const p = pool({ maxChildren: 2 });
    const alice = { id: 20, login: 'alice' };
    assert.equal(p.prewarm(alice), true);
    assert.equal(p.prewarm(alice), false, 'already starting');
    await waitFor(() => p.liveChildren === 1, { what: 'the prewarmed child' });
    assert.equal(p.prewarm(alice), false, 'already running');
    const pid = Number(await tool(p, 20, 'pid'));
    assert.equal(p.stats().starts, 1, 'the first call used the prewarmed child');
    assert.ok(pidAlive(pid));
    await tool(p, 21, 'pid');
    // At the cap: a prewarm is a guess, so it does not push out bob's or alice's child.
    assert.equal(p.prewarm({ id: 22, login: 'carol' }), false);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.liveChildren, 2);
    assert.ok(pidAlive(pid));
    await p.stopAll(Date.now() + 1000);
    assert.equal(p.prewarm(alice), false, 'not while stopping');
  });

  it('rotates to a new child before the token expires; the old one finishes its call first', async () => {
    const src = numberedTokens(2500);
    const p = pool({ tokens: src, rotateMarginMs: 1000 });
    const oldPid = Number(await tool(p, 20, 'pid'));
    // 3.6 s on the old child: well past the rotation at about 1.7 s plus a spawn.
    const slow = tool(p, 20, 'slow', { steps: 24, ms: 150 });
    await waitFor(() => p.stats().rotations === 1, { timeoutMs: 4000, what: 'the first rotation' });
    const newPid = Number(await tool(p, 20, 'pid'));
    assert.notEqual(newPid, oldPid);
    assert.equal(pidAlive(oldPid), true, 'the old child is still finishing its call');
    assert.equal(await slow, 'done after 24 steps');
    await waitFor(() => !pidAlive(oldPid), { what: 'the rotated-out child to stop' });
    // Tokens live 2.5 s, so by now the new child may itself be rotating: one or two live, never more.
    assert.ok(src.issued >= 2);
    assert.ok(p.liveChildren >= 1 && p.liveChildren <= 2, `live children: ${p.liveChildren}`);
    await p.stopAll(Date.now() + 1000);
  });

  it('reports a child that cannot start, and keeps no entry for it', async () => {
    const p = pool({ command: '/nonexistent/forgejo-mcp', args: [] });
    await assert.rejects(p.acquire({ id: 30, login: 'u30' }), /\/nonexistent\/forgejo-mcp/);
    assert.equal(p.stats().users, 0);
    assert.equal(p.liveChildren, 0);
  });

  it('stopUser fails in-flight calls with the reason and stops the child', async () => {
    const p = pool();
    const pid = Number(await tool(p, 40, 'pid'));
    const hung = tool(p, 40, 'hang').catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    await p.stopUser(40, 'access was revoked');
    assert.match(String(await hung), /access was revoked/);
    assert.equal(pidAlive(pid), false);
  });
});
