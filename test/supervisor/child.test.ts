import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ChildExitError,
  ChildGoneError,
  SpawnError,
  StdinFullError,
  Supervisor,
} from '../../src/supervisor/supervisor.ts';
import { eventually } from '../support/wait.ts';
import {
  captureLog,
  FIXTURES,
  groupMembers,
  isDead,
  NODE_CHILD,
  ourZombies,
  procStat,
  stdoutLines,
} from './helpers.ts';

const node = process.execPath;
const sh = '/bin/sh';
const cwd = FIXTURES;

// Every supervisor made here is stopped at the end, so even a failed test leaves nothing running.
const { log, records } = captureLog();
const supervisors: Supervisor[] = [];
function supervisor(opts: ConstructorParameters<typeof Supervisor>[0]): Supervisor {
  const s = new Supervisor(opts);
  supervisors.push(s);
  return s;
}
// A wide early-exit window, so "exited at start" holds even when Node starts slowly on a busy
// machine; the tests about a child outliving the window make their own, narrower supervisor.
const sup = supervisor({ log, limits: { earlyExitMs: 10_000 } });
after(async () => {
  await Promise.all(supervisors.map((s) => s.stopAll(200, 0)));
  for (const s of supervisors) assert.equal(s.live, 0);
  assert.deepEqual(ourZombies(), []);
});

describe('Child', () => {
  test('spawn, write a line, read it back, stop gracefully through stdin', async () => {
    for (const [command, args] of [
      [node, [NODE_CHILD, 'echo']],
      [sh, [path.join(FIXTURES, 'echo-loop.sh')]],
    ] as const) {
      const child = await sup.start({ name: 'alice', command, args, env: {}, cwd });
      assert.ok(child.pid > 0);
      assert.equal(procStat(child.pid)?.pgrp, child.pid, 'the child leads its own process group');
      const lines = stdoutLines(child);
      await child.write('hello wörld\n');
      assert.equal(await lines.next(), 'hello wörld');
      await child.write('second\n');
      assert.equal(await lines.next(), 'second');
      assert.equal(sup.live, 1);

      const started = Date.now();
      const info = await child.stop(10_000, 10_000);
      // Closing stdin was enough: no signal, and long before either wait ran out.
      assert.equal(info.code, 0);
      assert.equal(info.signal, null);
      assert.equal(info.stopped, true);
      assert.equal(info.early, false);
      assert.ok(Date.now() - started < 10_000);
      assert.equal(child.alive, false);
      assert.equal(sup.live, 0);
      assert.equal(procStat(child.pid), undefined, 'reaped');
    }
  });

  test('a child that ignores SIGTERM is killed after the grace', async () => {
    const child = await sup.start({
      name: 'deaf',
      command: node,
      args: [NODE_CHILD, 'ignore-term'],
      env: {},
      cwd,
    });
    const lines = stdoutLines(child);
    assert.equal(await lines.next(), 'ready');
    const started = Date.now();
    const info = await child.stop(400, 100);
    const took = Date.now() - started;
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(info.code, null);
    assert.equal(info.stopped, true);
    // It was asked with SIGTERM first (and said so), and SIGKILL waited for the grace.
    assert.equal(await lines.next(), 'got SIGTERM');
    assert.ok(took >= 100 + 400 - 20, `killed after ${took} ms`);
    assert.ok(took < 100 + 400 + 3000, `killed after ${took} ms`);
    assert.ok(records.some((r) => r.msg === 'child stopped' && r.child === 'deaf' && r.signal === 'SIGKILL'));
  });

  test('a second stop() can bring the signals forward', async () => {
    const child = await sup.start({
      name: 'deaf2',
      command: node,
      args: [NODE_CHILD, 'ignore-term'],
      env: {},
      cwd,
    });
    assert.equal(await stdoutLines(child).next(), 'ready');
    const started = Date.now();
    void child.stop(60_000, 60_000);
    const info = await child.stop(100, 0);
    assert.equal(info.signal, 'SIGKILL');
    assert.ok(Date.now() - started < 5000);
  });

  test('a child that exits by itself settles the exit promise with its code', async () => {
    const narrow = supervisor({ log, limits: { earlyExitMs: 300 } });
    const child = await narrow.start({
      name: 'bob',
      command: node,
      args: [NODE_CHILD, 'exit-after', '700', '7'],
      env: {},
      cwd,
    });
    const info = await child.exited;
    assert.equal(info.code, 7);
    assert.equal(info.signal, null);
    assert.equal(info.stopped, false);
    assert.equal(info.early, false, 'lived past the 300 ms window');
    assert.equal(narrow.live, 0);
    // Settled once: stop() on a gone child returns the same result.
    assert.equal(await child.stop(), info);
    assert.ok(records.some((r) => r.msg === 'child exited' && r.child === 'bob' && r.exitCode === 7));
  });

  test('a child that crashes (killed by a signal nobody here sent) is reaped with that signal', async () => {
    const child = await sup.start({
      name: 'crash',
      command: sh,
      args: ['-c', 'echo dying >&2; kill -KILL $$'],
      env: {},
      cwd,
    });
    const info = await child.exited;
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(info.code, null);
    assert.equal(info.stopped, false);
    assert.equal(info.early, true);
    assert.deepEqual(info.stderrTail, ['dying']);
    assert.equal(procStat(child.pid), undefined, 'reaped');
    assert.ok(
      records.some((r) => r.msg === 'child exited at start' && r.child === 'crash' && r.signal === 'SIGKILL'),
    );
    await assert.rejects(
      child.whenStable(),
      /child "crash" \(\/bin\/sh\) killed by SIGKILL \d+ ms after start/,
    );
  });

  test('an early exit is a startup failure with exit code and last stderr lines', async () => {
    const child = await sup.start({
      name: 'carol',
      command: node,
      args: [NODE_CHILD, 'fail', '3'],
      env: {},
      cwd,
    });
    const err = await child.whenStable().then(
      () => assert.fail('whenStable resolved for a child that died'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ChildExitError);
    assert.equal(err.info.code, 3);
    assert.equal(err.info.early, true);
    assert.match(err.message, /"carol".*exited with code 3 \d+ ms after start/);
    // ANSI colour codes stripped.
    assert.deepEqual(err.info.stderrTail, ['starting', 'error: cannot reach forgejo']);
    const logged = records.filter((r) => r.child === 'carol' && r.msg === 'child stderr').map((r) => r.line);
    assert.deepEqual(logged, ['starting', 'error: cannot reach forgejo']);
    assert.ok(records.some((r) => r.msg === 'child exited at start' && r.child === 'carol'));
    // Asking again after the fact gives the same answer.
    await assert.rejects(child.whenStable(), ChildExitError);
  });

  test('whenStable resolves for a child alive past the window', async () => {
    const narrow = supervisor({ log, limits: { earlyExitMs: 500 } });
    const child = await narrow.start({
      name: 'dave',
      command: node,
      args: [NODE_CHILD, 'echo'],
      env: {},
      cwd,
    });
    const started = Date.now();
    await child.whenStable();
    assert.ok(Date.now() - started >= 400);
    assert.equal(child.alive, true);
    const info = await child.stop(1000, 1000);
    assert.equal(info.early, false);
    assert.equal(info.code, 0);
  });

  test('a wrapper script leaves no grandchild behind (stopped by SIGTERM)', async () => {
    for (const variant of ['plain', 'trap']) {
      const child = await sup.start({
        name: `wrap-${variant}`,
        command: path.join(FIXTURES, 'wrapper.sh'),
        args: [variant],
        env: {},
        cwd,
      });
      const grandchild = Number(await stdoutLines(child).next());
      assert.ok(grandchild > 0);
      assert.equal(procStat(grandchild)?.pgrp, child.pid, 'grandchild is in the group');
      const info = await child.stop(2000, 50);
      assert.ok(info.signal === 'SIGTERM', `wrapper ended by ${info.signal}`);
      assert.ok(
        await eventually(() => isDead(grandchild), { timeoutMs: 2000 }),
        `grandchild ${grandchild} survived`,
      );
      assert.ok(
        await eventually(() => groupMembers(child.pid).length === 0, { timeoutMs: 2000 }),
        'group emptied',
      );
    }
  });

  test('a leader that exits by itself takes its orphaned grandchild along', async () => {
    const child = await sup.start({
      name: 'orphaner',
      command: sh,
      args: ['-c', 'sleep 1000 & echo $!; exit 5'],
      env: {},
      cwd,
    });
    const grandchild = Number(await stdoutLines(child).next());
    const info = await child.exited;
    assert.equal(info.code, 5);
    assert.ok(
      await eventually(() => isDead(grandchild), { timeoutMs: 2000 }),
      `grandchild ${grandchild} survived`,
    );

    // Same through stop(): the leader exits on stdin EOF, leaving its background job.
    const child2 = await sup.start({
      name: 'orphaner2',
      command: path.join(FIXTURES, 'orphaner.sh'),
      env: {},
      cwd,
    });
    const grandchild2 = Number(await stdoutLines(child2).next());
    const info2 = await child2.stop(10_000, 10_000);
    assert.equal(info2.code, 0);
    assert.ok(
      await eventually(() => isDead(grandchild2), { timeoutMs: 2000 }),
      `grandchild ${grandchild2} survived`,
    );
  });

  test('a grandchild that escaped the group (setsid) cannot hold the exit open', async () => {
    // Killing it is out of scope (it left our process group), but it holds our stdout and stderr
    // pipes: the child must still settle once drainAfterExitMs has passed, with its pipes closed.
    const own = supervisor({ log, limits: { drainAfterExitMs: 300 } });
    const child = await own.start({
      name: 'escaper',
      command: sh,
      args: ['-c', 'setsid sleep 1000 & echo $!; read -r _; exit 0'],
      env: { PATH: '/usr/bin:/bin' },
      cwd,
    });
    const escaped = Number(await stdoutLines(child).next());
    try {
      // $! is known before the background job has run setsid(): wait for it to lead its own group.
      assert.ok(
        await eventually(() => procStat(escaped)?.pgrp === escaped, { timeoutMs: 2000 }),
        'it left the group',
      );
      const started = Date.now();
      const info = await child.stop(5000, 5000);
      const took = Date.now() - started;
      assert.equal(info.code, 0);
      assert.ok(took >= 250 && took < 5000, `settled after ${took} ms`);
      assert.equal(own.live, 0);
      assert.equal(isDead(escaped), false, 'the escaped process is still there, as documented');
    } finally {
      await own.stopAll(0, 0);
      process.kill(escaped, 'SIGKILL');
    }
    assert.ok(await eventually(() => isDead(escaped), { timeoutMs: 2000 }));
  });

  test("the child's environment holds only what was passed", async () => {
    process.env['SUPERVISOR_TEST_SECRET'] = 'do-not-leak-7f3a';
    process.env['SUPERVISOR_TEST_PASSED'] = 'asked-for';
    try {
      const child = await sup.start({
        name: 'env',
        command: node,
        args: [NODE_CHILD, 'env'],
        env: { FORGEJO_ACCESS_TOKEN: 'tok-123', ONLY: 'this' },
        inheritEnv: ['SUPERVISOR_TEST_PASSED', 'SUPERVISOR_TEST_UNSET'],
        cwd,
      });
      const env = JSON.parse(await stdoutLines(child).next()) as Record<string, string>;
      await child.stop(1000, 1000);
      assert.deepEqual(env, {
        SUPERVISOR_TEST_PASSED: 'asked-for',
        FORGEJO_ACCESS_TOKEN: 'tok-123',
        ONLY: 'this',
      });
      assert.equal(JSON.stringify(env).includes('do-not-leak'), false);
      // The token went nowhere near the log.
      assert.equal(JSON.stringify(records).includes('tok-123'), false);
    } finally {
      delete process.env['SUPERVISOR_TEST_SECRET'];
      delete process.env['SUPERVISOR_TEST_PASSED'];
    }
  });

  test('an over-long stdout line is reported by size and skipped, the next line still arrives', async () => {
    const small = supervisor({ log, limits: { stdoutMaxLineBytes: 1000 } });
    const child = await small.start({
      name: 'big',
      command: node,
      args: [NODE_CHILD, 'big-line', '300000'],
      env: {},
      cwd,
    });
    const lines = stdoutLines(child);
    assert.equal(await lines.next(), 'after');
    assert.deepEqual(lines.oversizes, [300000]);
    await child.write('still framed\n');
    assert.equal(await lines.next(), 'still framed');
    await small.stopAll(1000, 1000);
    assert.equal(small.live, 0);
  });

  test('stdin writes respect back-pressure and a bound, and fail clearly once the child is gone', async () => {
    const limit = 256 * 1024;
    const small = supervisor({ log, limits: { stdinMaxQueuedBytes: limit } });
    const child = await small.start({
      name: 'slow',
      command: node,
      args: [NODE_CHILD, 'no-read'],
      env: {},
      cwd,
    });
    assert.equal(await stdoutLines(child).next(), 'ready');
    const chunk = Buffer.alloc(32 * 1024, 0x61);
    const pending: Promise<'written' | Error>[] = [];
    let full: unknown;
    for (let i = 0; i < 100 && full === undefined; i++) {
      // Let the pipe take what it can before queueing more.
      await new Promise((r) => setImmediate(r));
      const p = child.write(chunk).then(
        () => 'written' as const,
        (e: Error) => e,
      );
      pending.push(p);
      const settled = await Promise.race([p, new Promise((r) => setImmediate(() => r('pending')))]);
      if (settled instanceof StdinFullError) full = settled;
    }
    assert.ok(full instanceof StdinFullError, 'a write past the bound is refused');
    assert.equal(full.limitBytes, limit);
    assert.ok(child.queuedBytes <= limit, `queued ${child.queuedBytes}`);
    assert.ok(child.queuedBytes > 0, 'some writes wait for the child');

    // The child never reads: stopping it fails the queued writes with ChildGoneError, none hangs.
    const info = await child.stop(1000, 0);
    assert.equal(info.signal, 'SIGTERM');
    const results = await Promise.all(pending);
    const gone = results.filter((r) => r instanceof ChildGoneError);
    assert.ok(gone.length > 0, 'queued writes were failed');
    assert.ok(
      results.every((r) => r === 'written' || r instanceof ChildGoneError || r instanceof StdinFullError),
    );
    await assert.rejects(child.write('late\n'), (e: unknown) => {
      assert.ok(e instanceof ChildGoneError);
      assert.match(e.message, /cannot write to child "slow": it was killed by SIGTERM/);
      return true;
    });
    assert.equal(small.live, 0);
  });

  test('writing to a child that is stopping is refused', async () => {
    const child = await sup.start({ name: 'eve', command: node, args: [NODE_CHILD, 'echo'], env: {}, cwd });
    const stopped = child.stop(1000, 1000);
    await assert.rejects(child.write('x\n'), /cannot write to child "eve": it is stopping/);
    assert.equal((await stopped).code, 0);
    await assert.rejects(child.write('x\n'), /cannot write to child "eve": it exited with code 0/);
  });

  test('stderr is logged with the prefix, rate-limited, and the tail survives the limit', async () => {
    const { log: flog, records: frecords } = captureLog();
    const chatty = supervisor({
      log: flog,
      limits: { stderr: { burst: 10, linesPerSecond: 1, tailLines: 5 } },
    });
    const child = await chatty.start({
      name: 'frank',
      command: node,
      args: [NODE_CHILD, 'stderr-flood', '1000'],
      env: {},
      cwd,
    });
    const lines = stdoutLines(child);
    await child.write('sync\n');
    assert.equal(await lines.next(), 'sync'); // the flood was written before echo started
    const info = await child.stop(1000, 1000);
    const logged = frecords.filter((r) => r.msg === 'child stderr');
    const suppressed = frecords.filter((r) => r.msg === 'child stderr lines suppressed');
    assert.ok(logged.length >= 10 && logged.length < 20, `logged ${logged.length}`);
    assert.ok(logged.every((r) => r.child === 'frank' && r.level === 'info'));
    assert.deepEqual(
      logged.slice(0, 3).map((r) => r.line),
      ['noise line 0', 'noise line 1', 'noise line 2'],
    );
    assert.ok(suppressed.length >= 1);
    const total = logged.length + suppressed.reduce((n, r) => n + (r.suppressed as number), 0);
    assert.equal(total, 1000, 'every line is either logged or counted');
    assert.deepEqual(
      info.stderrTail,
      [995, 996, 997, 998, 999].map((i) => `noise line ${i}`),
    );
  });

  test('stopAll stops every child, and no child starts afterwards', async () => {
    const { log: slog } = captureLog();
    const own = supervisor({ log: slog });
    const kids = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        own.start({ name, command: node, args: [NODE_CHILD, 'ignore-term'], env: {}, cwd }),
      ),
    );
    assert.equal(own.live, 3);
    const started = Date.now();
    await own.stopAll(200, 0);
    assert.ok(Date.now() - started < 5000);
    assert.equal(own.live, 0);
    for (const k of kids) assert.equal(k.alive, false);
    await assert.rejects(
      own.start({ name: 'late', command: node, args: [NODE_CHILD, 'echo'], env: {}, cwd }),
      (e) => {
        assert.ok(e instanceof SpawnError);
        assert.equal(e.code, 'ESHUTDOWN');
        return true;
      },
    );
    assert.equal(own.live, 0);
  });
});
