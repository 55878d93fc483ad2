// SIGTERM to the real broker process while a call is in flight: the call finishes within the grace,
// every child is stopped, none outlives the broker, and it exits 0.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { type ForgejoEmulator, startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type BrokerProcess, startBroker } from '../support/broker-process.ts';
import { brokerToken, type Connected, connectV1, groupAlive, textOf } from '../support/mcp-oauth-client.ts';
import { FORGEJO_CLIENT_ID, FORGEJO_CLIENT_SECRET, freePort } from '../support/oauth-harness.ts';
import { USERS } from '../support/oauth-stack.ts';

const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');
const GRACE_MS = 5000;

const tmp = mkdtempSync(join(tmpdir(), 'broker-shutdown-'));
let emulator: ForgejoEmulator;
let b: BrokerProcess;
const clients: Connected[] = [];

before(async () => {
  const port = await freePort();
  emulator = await startForgejoEmulator({
    users: USERS,
    apps: [
      {
        clientId: FORGEJO_CLIENT_ID,
        clientSecret: FORGEJO_CLIENT_SECRET,
        name: 'forgejo-mcp-broker',
        redirectUris: [`http://127.0.0.1:${port}/oauth/callback`],
      },
    ],
  });
  b = await startBroker({
    BROKER_LISTEN: `127.0.0.1:${port}`,
    BROKER_PUBLIC_URL: `http://127.0.0.1:${port}`,
    FORGEJO_URL: emulator.url,
    FORGEJO_CLIENT_ID,
    FORGEJO_CLIENT_SECRET,
    BROKER_DB: join(tmp, 'broker.db'),
    BROKER_SECRET_KEY: randomBytes(32).toString('base64'),
    BROKER_RATE_LIMIT: '1000',
    BROKER_CHILD_COMMAND: `"${process.execPath}" "${FAULT_SERVER}"`,
    BROKER_SHUTDOWN_GRACE: `${GRACE_MS}ms`,
  });
});

after(async () => {
  for (const c of clients) await c.client.close().catch(() => {});
  if (b.proc.exitCode === null && b.proc.signalCode === null) {
    b.proc.kill('SIGKILL');
    await b.exited;
  }
  await emulator.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('SIGTERM with a call in flight: the call finishes within the grace, every child stops, exit 0', async () => {
  const alice = await connectV1(b.url, await brokerToken(b.url, 'alice'));
  const bob = await connectV1(b.url, await brokerToken(b.url, 'bob'));
  clients.push(alice, bob);
  const pid = async (c: Connected) => Number(textOf(await c.client.callTool({ name: 'pid', arguments: {} })));
  const pids = [await pid(alice), await pid(bob)];
  assert.notEqual(pids[0], pids[1]);
  for (const p of pids) assert.ok(groupAlive(p));

  let termAt = 0;
  const call = alice.client.callTool({ name: 'slow', arguments: { steps: 10, ms: 150 } }, undefined, {
    onprogress: (p) => {
      if (p.progress === 1) {
        termAt = Date.now();
        b.proc.kill('SIGTERM');
      }
    },
  });
  const r = await call;
  const doneAt = Date.now();
  assert.ok(termAt > 0, 'SIGTERM was sent mid-call');
  assert.equal(textOf(r), 'done after 10 steps');
  assert.ok(doneAt - termAt < GRACE_MS, `the call took ${doneAt - termAt} ms after SIGTERM`);

  const exit = await b.exited;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, b.stderr());
  // Past the grace the broker cuts what is left and exits 1 by a hard stop 400 ms later.
  assert.ok(exit.at - termAt < GRACE_MS + 400, `exited ${exit.at - termAt} ms after SIGTERM`);
  const lines = b
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const stopped = lines.find((l) => l['msg'] === 'broker stopped');
  assert.ok(stopped, b.stderr());
  assert.equal(stopped['failed'], undefined, JSON.stringify(stopped));
  assert.equal(stopped['reason'], 'SIGTERM');
  // Each child was stopped by the broker (not found dead), and none is left once the broker is gone.
  for (const p of pids) {
    assert.ok(
      lines.some((l) => l['msg'] === 'child stopped' && l['pid'] === p),
      `no "child stopped" line for ${p}`,
    );
    assert.equal(groupAlive(p), false, `child ${p} outlived the broker`);
  }
});
