import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { SpawnError, Supervisor } from '../../src/supervisor/supervisor.ts';
import { activeResources, captureLog, FIXTURES, openFds, ourZombies } from './helpers.ts';

const missingDir = path.join(FIXTURES, 'no-such-dir');

type Case = {
  what: string;
  command: string;
  cwd?: string;
  env?: Record<string, string>;
  code: string;
  reason: RegExp;
};

const cases: Case[] = [
  {
    what: 'missing binary',
    command: path.join(FIXTURES, 'no-such-binary'),
    code: 'ENOENT',
    reason: /: command not found \(ENOENT\)$/,
  },
  {
    what: 'bare name not on PATH',
    command: 'no-such-command-7c1',
    env: { PATH: '/usr/bin:/bin' },
    code: 'ENOENT',
    reason: /command not found in the child's PATH \(ENOENT\)$/,
  },
  {
    what: 'file without execute permission',
    command: path.join(FIXTURES, 'not-executable.sh'),
    code: 'EACCES',
    reason: /permission denied: the command is not executable \(EACCES\)$/,
  },
  {
    what: 'directory as command',
    command: FIXTURES,
    code: 'EACCES',
    reason: /the command is a directory \(EACCES\)$/,
  },
  {
    what: 'missing #! interpreter',
    command: path.join(FIXTURES, 'bad-interpreter.sh'),
    code: 'ENOENT',
    reason: /the interpreter named on its #! line was not found \(ENOENT\)$/,
  },
  {
    what: 'missing working directory',
    command: '/bin/sh',
    cwd: missingDir,
    code: 'ENOENT',
    reason: /the working directory does not exist \(ENOENT\)$/,
  },
  {
    what: 'working directory that is a file',
    command: '/bin/sh',
    cwd: path.join(FIXTURES, 'echo-loop.sh'),
    code: 'ENOTDIR',
    reason: /the working directory is not a directory \(ENOTDIR\)$/,
  },
];

test('spawn failures give clear errors naming command and cwd, and leave nothing behind', async () => {
  const { log, records } = captureLog();
  const sup = new Supervisor({ log });
  // Warm up once so lazily created handles (e.g. the SIGCHLD machinery) are in the baseline.
  await (await sup.start({ name: 'warm', command: '/bin/true', env: {}, cwd: FIXTURES })).exited;
  const fds = openFds();
  const resources = activeResources();

  for (let round = 0; round < 20; round++) {
    for (const c of cases) {
      const cwd = c.cwd ?? FIXTURES;
      const err = await sup.start({ name: 'alice', command: c.command, env: c.env ?? {}, cwd }).then(
        () => assert.fail(`${c.what}: started`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SpawnError, `${c.what}: ${String(err)}`);
      assert.equal(err.code, c.code, c.what);
      assert.equal(err.command, c.command);
      assert.equal(err.cwd, cwd);
      assert.ok(
        err.message.startsWith(`cannot start ${JSON.stringify(c.command)} in ${JSON.stringify(cwd)}: `),
      );
      assert.match(err.message, c.reason, c.what);
      assert.equal(sup.live, 0);
      // Nothing left the moment the error is seen: no pipe, no process handle.
      assert.equal(openFds(), fds, `${c.what}: open fds`);
      assert.deepEqual(activeResources(), resources, c.what);
    }
  }
  assert.ok(
    records.some((r) => r.msg === 'child failed to start' && r.child === 'alice' && r.errno === 'ENOENT'),
  );

  assert.deepEqual(ourZombies(), []);
});

test('a malformed spec is refused before spawning, without echoing secret values', async () => {
  const { log, records } = captureLog();
  const sup = new Supervisor({ log });
  const secret = 'tok-secret-\u0000-value';
  const refusals: [string, Parameters<Supervisor['start']>[0], RegExp][] = [
    [
      'NUL in env value',
      { name: 'a', command: '/bin/sh', env: { FORGEJO_ACCESS_TOKEN: secret }, cwd: FIXTURES },
      /environment variable FORGEJO_ACCESS_TOKEN/,
    ],
    [
      '= in env name',
      { name: 'a', command: '/bin/sh', env: { 'A=B': 'x' }, cwd: FIXTURES },
      /environment name "A=B" is not valid/,
    ],
    [
      'NUL in argument',
      { name: 'a', command: '/bin/sh', args: ['-c', `echo ${secret}`], env: {}, cwd: FIXTURES },
      /argument 2 is not a string/,
    ],
    ['empty command', { name: 'a', command: '', env: {}, cwd: FIXTURES }, /the command is empty/],
    ['empty cwd', { name: 'a', command: '/bin/sh', env: {}, cwd: '' }, /the working directory is empty/],
    ['empty name', { name: '', command: '/bin/sh', env: {}, cwd: FIXTURES }, /needs a name/],
  ];
  for (const [what, spec, reason] of refusals) {
    const err = await sup.start(spec).then(
      () => assert.fail(`${what}: started`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SpawnError, what);
    assert.equal(err.code, 'EINVAL', what);
    assert.match(err.message, reason, what);
    assert.equal(err.message.includes('tok-secret'), false, what);
  }
  assert.equal(JSON.stringify(records).includes('tok-secret'), false);
  assert.equal(sup.live, 0);
});
