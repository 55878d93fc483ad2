// Found by the soak run: a rotation that finishes after the child it replaces was already retired
// (reaped, crashed, evicted) and replaced must not take over the user's slot, or the child started
// meanwhile is forgotten and runs on unmanaged until the broker stops.
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { Pool, type Spawner } from '../../src/pool/pool.ts';
import { type ChildSpec, Supervisor } from '../../src/supervisor/supervisor.ts';
import { captureLogger } from '../support/log-capture.ts';
import { callTool, faultPoolOptions, numberedTokens } from '../support/pool-fixture.ts';
import { eventually, pidAlive, waitFor } from '../support/wait.ts';

const logs = captureLogger('info');
const supervisor = new Supervisor({ log: logs.log });
after(() => supervisor.stopAll(500, 100));

const RACER = { id: 7, login: 'racer' };
const tool = (p: Pool, name: string) => callTool(p, RACER, name);

/** A pool whose second child start (the first rotation's) waits until `release()`. */
function gatedPool(idleMs: number) {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const pids: number[] = [];
  let starts = 0;
  const spawner: Spawner = {
    async start(spec: ChildSpec) {
      if (++starts === 2) await gate;
      const child = await supervisor.start(spec);
      pids.push(child.pid);
      return child;
    },
  };
  const p = new Pool(
    faultPoolOptions({
      idleMs,
      spawner,
      // The first token lives 3 s, so its child is rotated 1 s before expiry; later ones live long.
      tokens: numberedTokens((n) => (n === 1 ? 3000 : 60_000)),
      log: logs.log,
    }),
  );
  return { p, pids, release, starts: () => starts };
}

it('a rotation overtaken by a respawn stops its own child and leaves the respawned one in place', async () => {
  const { p, pids, release, starts } = gatedPool(60_000);
  try {
    const first = Number(await tool(p, 'pid'));
    assert.ok(await eventually(() => starts() === 2, { timeoutMs: 4000 }), 'the rotation started');
    // The old child dies while its replacement is still starting; the next call respawns.
    await assert.rejects(tool(p, 'crash'));
    const respawned = Number(await tool(p, 'pid'));
    assert.notEqual(respawned, first);
    release();
    await waitFor(() => pids.length === 3, { what: 'the rotation’s child to start' });
    const rotated = pids[2] as number;
    assert.ok(
      await eventually(() => !pidAlive(rotated) && !pidAlive(first)),
      `children alive: ${pids.filter(pidAlive)}`,
    );
    assert.equal(Number(await tool(p, 'pid')), respawned, 'the respawned child still serves the user');
    assert.deepEqual(pids.filter(pidAlive), [respawned]);
    assert.equal(p.stats().children, 1);
  } finally {
    release();
    await p.stopAll(Date.now() + 1000);
  }
});

it('a rotation finishing after its user was reaped and came back leaves the new entry alone', async () => {
  const { p, pids, release, starts } = gatedPool(300);
  try {
    // Busy until the rotation (1 s before the 3 s token expires) has begun, then idle: reaped.
    while (starts() < 2) await tool(p, 'pid');
    const first = pids[0] as number;
    assert.ok(await eventually(() => !pidAlive(first) && p.stats().users === 0), 'the idle child was reaped');
    // The user comes back while the rotation is still starting its child.
    const respawned = Number(await tool(p, 'pid'));
    release();
    const busy = async () => {
      const seen = new Set<number>();
      const end = Date.now() + 2000;
      while (Date.now() < end) {
        seen.add(Number(await tool(p, 'pid')));
        await new Promise((r) => setTimeout(r, 50));
      }
      return seen;
    };
    const seen = await busy();
    assert.deepEqual([...seen], [respawned], 'every call went to the respawned child');
    const rotated = pids[2] as number;
    assert.notEqual(rotated, respawned);
    assert.equal(pidAlive(rotated), false, 'the rotation’s own child was stopped');
    assert.equal(p.stats().children, 1, 'the respawned child is still in the pool');
    // Idle again: the pool still knows the respawned child, so it reaps it.
    assert.ok(
      await eventually(() => !pidAlive(respawned), { timeoutMs: 3000 }),
      'the respawned child was reaped',
    );
    assert.deepEqual(pids.filter(pidAlive), []);
  } finally {
    release();
    await p.stopAll(Date.now() + 1000);
  }
});
