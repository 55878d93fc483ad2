import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { detectIsolation, Supervisor } from '../../src/supervisor/supervisor.ts';
import { eventually } from '../support/wait.ts';
import { captureLog, groupMembers, NODE_CHILD, stdoutLines } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-isolation-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder holding only a `bwrap` that fails the way a host without user namespaces makes it fail. */
function refusingBwrap(): string {
  const dir = mkdtempSync(join(tmp, 'bin-'));
  const path = join(dir, 'bwrap');
  writeFileSync(path, '#!/bin/sh\necho "bwrap: No permissions to creating new namespace" >&2\nexit 1\n');
  chmodSync(path, 0o755);
  return dir;
}

describe('detectIsolation', () => {
  it('none is none, with nothing to explain', () => {
    const d = detectIsolation('none', { hide: [] });
    assert.equal(d.isolation.kind, 'none');
    assert.equal(d.problem, undefined);
  });

  it('auto falls back to none and says why: bubblewrap missing, or refused by the host', () => {
    const missing = detectIsolation('auto', { hide: [], path: join(tmp, 'nothing-here') });
    assert.equal(missing.isolation.kind, 'none');
    assert.match(missing.problem ?? '', /bubblewrap \(bwrap\) is not installed/);
    const refused = detectIsolation('auto', { hide: [], path: refusingBwrap() });
    assert.equal(refused.isolation.kind, 'none');
    assert.match(refused.problem ?? '', /cannot create the sandbox here \(bwrap: No permissions/);
  });

  it('bwrap refuses to go on without the sandbox, naming the way out', () => {
    assert.throws(
      () => detectIsolation('bwrap', { hide: [], path: refusingBwrap() }),
      /BROKER_CHILD_ISOLATION=bwrap: .*No permissions.*BROKER_CHILD_ISOLATION=none/,
    );
  });

  it('auto and bwrap pick bubblewrap where the host allows it (this one does)', () => {
    assert.equal(detectIsolation('auto', { hide: [] }).isolation.kind, 'bwrap');
    assert.equal(detectIsolation('bwrap', { hide: [] }).isolation.kind, 'bwrap');
  });
});

describe('a sandboxed child', () => {
  const { log } = captureLog();
  const hidden = mkdtempSync(join('/var/tmp', 'broker-hidden-'));
  writeFileSync(join(hidden, 'broker.db'), 'secret rows');
  after(() => rmSync(hidden, { recursive: true, force: true }));
  const sup = new Supervisor({ log, isolation: detectIsolation('bwrap', { hide: [hidden] }).isolation });
  after(() => sup.stopAll(500, 0));

  it('gets exactly its environment and sees the hidden folder empty', async () => {
    const child = await sup.start({
      name: 'alice',
      command: process.execPath,
      args: [
        '-e',
        `process.stdout.write(JSON.stringify({ env: process.env, hidden: require('fs').readdirSync(${JSON.stringify(hidden)}) }) + '\\n'); process.stdin.resume()`,
      ],
      env: { FORGEJO_ACCESS_TOKEN: 'tok-alice', PATH: '/usr/bin:/bin' },
      cwd: tmpdir(),
    });
    const out = JSON.parse(await stdoutLines(child).next()) as { env: object; hidden: string[] };
    assert.deepEqual(out.hidden, []);
    // bubblewrap adds PWD, the working directory it changed to: nothing of the broker's.
    assert.deepEqual(out.env, { FORGEJO_ACCESS_TOKEN: 'tok-alice', PATH: '/usr/bin:/bin', PWD: tmpdir() });
    await child.stop(500);
  });

  it('stops like any child: stdin closed, then the group, nothing left behind', async () => {
    const child = await sup.start({
      name: 'bob',
      command: process.execPath,
      args: [NODE_CHILD, 'echo'],
      env: { PATH: '/usr/bin:/bin' },
      cwd: tmpdir(),
    });
    const lines = stdoutLines(child);
    await child.write('ping\n');
    assert.equal(await lines.next(), 'ping');
    const info = await child.stop(2000);
    assert.equal(info.code, 0, 'the child saw stdin close and exited by itself');
    assert.ok(await eventually(() => groupMembers(child.pid).length === 0));
  });
});

describe('bwrap sandbox and programs under /tmp', () => {
  it('a program installed under a temporary folder still runs, and a hidden folder inside it stays hidden', () => {
    const app = mkdtempSync(join(tmpdir(), 'broker-app-'));
    const sibling = mkdtempSync(join(tmpdir(), 'broker-sibling-'));
    try {
      const script = join(app, 'prog.sh');
      writeFileSync(script, '#!/bin/sh\necho ran; ls /tmp | wc -l; ls "$1" | wc -l\n');
      chmodSync(script, 0o755);
      const hidden = join(app, 'state');
      mkdirSync(hidden);
      writeFileSync(join(hidden, 'broker.db'), 'secret');
      const d = detectIsolation('bwrap', { hide: [hidden] });
      const { command, args } = d.isolation.wrap(script, [hidden], '/');
      const r = spawnSync(command, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const [ran, tmpEntries, hiddenEntries] = r.stdout.trim().split('\n');
      assert.equal(ran, 'ran');
      assert.equal(
        Number(tmpEntries),
        1,
        'only the program’s own folder is back under /tmp, not its siblings',
      );
      assert.equal(Number(hiddenEntries), 0, 'the hidden folder is empty inside the sandbox');
    } finally {
      rmSync(app, { recursive: true, force: true });
      rmSync(sibling, { recursive: true, force: true });
    }
  });
});
