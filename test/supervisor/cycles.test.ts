import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { SpawnError, Supervisor } from '../../src/supervisor/supervisor.ts';
import { eventually } from '../support/wait.ts';
import {
  activeResources,
  captureLog,
  FIXTURES,
  isDead,
  NODE_CHILD,
  openFds,
  ourZombies,
  stdoutLines,
} from './helpers.ts';

const CYCLES = 1000;

test(`${CYCLES} spawn/stop cycles leave no fd, zombie, handle or grandchild behind`, async (t) => {
  const { log, records } = captureLog();
  const sup = new Supervisor({ log });
  const echo = path.join(FIXTURES, 'echo-loop.sh');
  const wrapper = path.join(FIXTURES, 'wrapper.sh');
  const missing = path.join(FIXTURES, 'no-such-binary');

  const fdsBefore = openFds();
  const resourcesBefore = activeResources();
  const grandchildren: number[] = [];
  const started = performance.now();

  for (let i = 0; i < CYCLES; i++) {
    if (i % 100 === 48) {
      // A spawn failure now and then: it must leave nothing either.
      await assert.rejects(
        sup.start({ name: `user${i}`, command: missing, env: {}, cwd: FIXTURES }),
        SpawnError,
      );
    } else if (i % 100 === 49) {
      // A Node child deaf to SIGTERM: the SIGKILL path.
      const child = await sup.start({
        name: `user${i}`,
        command: process.execPath,
        args: [NODE_CHILD, 'ignore-term'],
        env: {},
        cwd: FIXTURES,
      });
      assert.equal(await stdoutLines(child).next(), 'ready');
      const info = await child.stop(50, 0);
      assert.equal(info.signal, 'SIGKILL', `cycle ${i}`);
    } else if (i % 10 === 9) {
      // Every tenth: a wrapper with a grandchild that only a SIGTERM to the group ends.
      const child = await sup.start({ name: `user${i}`, command: wrapper, env: {}, cwd: FIXTURES });
      grandchildren.push(Number(await stdoutLines(child).next()));
      const info = await child.stop(2000, 0);
      assert.equal(info.signal, 'SIGTERM', `cycle ${i}`);
    } else {
      const child = await sup.start({ name: `user${i}`, command: echo, env: {}, cwd: FIXTURES });
      const lines = stdoutLines(child);
      await child.write(`ping ${i}\n`);
      assert.equal(await lines.next(), `ping ${i}`);
      const info = await child.stop(2000, 2000);
      assert.equal(info.code, 0, `cycle ${i}`);
    }
    assert.equal(sup.live, 0, `cycle ${i}`);
  }
  const seconds = (performance.now() - started) / 1000;

  const fdsAfter = openFds();
  const zombies = ourZombies();
  const resourcesAfter = activeResources();
  const survivors = grandchildren.filter((pid) => !isDead(pid));
  t.diagnostic(
    `${CYCLES} cycles in ${seconds.toFixed(1)} s; fds ${fdsBefore} -> ${fdsAfter}; zombies ${zombies.length}; ` +
      `grandchildren ${grandchildren.length}, alive ${survivors.length}; resources [${resourcesAfter.join(', ')}]`,
  );
  assert.equal(fdsAfter, fdsBefore, 'open file descriptors back at the start');
  assert.deepEqual(zombies, [], 'no unreaped child');
  assert.deepEqual(resourcesAfter, resourcesBefore, 'active resources back at baseline');
  // Grandchildren are reaped by init, not by us, which may take a moment.
  assert.ok(
    await eventually(() => grandchildren.every(isDead), { timeoutMs: 2000 }),
    `grandchildren alive: ${grandchildren.filter((pid) => !isDead(pid))}`,
  );
  assert.equal(records.filter((r) => r.msg === 'child stopped').length, CYCLES - CYCLES / 100);
  assert.equal(records.filter((r) => r.msg === 'child failed to start').length, CYCLES / 100);
});
