// SIGTERM to the real broker process while a call is in flight: the call finishes within the grace,
// every child is stopped, none outlives the broker, and it exits 0.
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { type BrokerProcess, logLines } from '../support/broker-process.ts';
import { startFaultBroker } from '../support/fault-broker.ts';
import { brokerToken, type Connected, connectV1, textOf } from '../support/mcp-oauth-client.ts';
import { groupAlive } from '../support/wait.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The broker process with fault-server children and this grace for SIGTERM. */
const startShutdownBroker = (graceMs: number) =>
  startFaultBroker(
    {
      BROKER_SHUTDOWN_GRACE: `${graceMs}ms`,
      // The children's self-reported pids are host pids only outside a sandbox; the sandboxed stop
      // is covered by test/e2e/child-isolation.test.ts.
      BROKER_CHILD_ISOLATION: 'none',
    },
    cleanups,
  );

function assertStoppedCleanly(b: BrokerProcess): void {
  const stopped = logLines(b).find((l) => l['msg'] === 'broker stopped');
  assert.ok(stopped, b.stderr());
  assert.equal(stopped['failed'], undefined, JSON.stringify(stopped));
  assert.equal(stopped['reason'], 'SIGTERM');
}

it('SIGTERM with a call in flight: the call finishes within the grace, every child stops, exit 0', async () => {
  const GRACE_MS = 5000;
  const b = await startShutdownBroker(GRACE_MS);
  const alice = await connectV1(b.url, await brokerToken(b.url, 'alice'));
  const bob = await connectV1(b.url, await brokerToken(b.url, 'bob'));
  cleanups.push(async () => {
    await alice.client.close().catch(() => {});
    await bob.client.close().catch(() => {});
  });
  const pid = async (c: Connected) => Number(textOf(await c.client.callTool({ name: 'pid', arguments: {} })));
  const pids = [await pid(alice), await pid(bob)];
  assert.notEqual(pids[0], pids[1]);
  for (const p of pids) assert.ok(groupAlive(p));

  let termAt = 0;
  const r = await alice.client.callTool({ name: 'slow', arguments: { steps: 10, ms: 150 } }, undefined, {
    onprogress: (p) => {
      if (p.progress === 1) {
        termAt = Date.now();
        b.proc.kill('SIGTERM');
      }
    },
  });
  const doneAt = Date.now();
  assert.ok(termAt > 0, 'SIGTERM was sent mid-call');
  assert.equal(textOf(r), 'done after 10 steps');
  assert.ok(doneAt - termAt < GRACE_MS, `the call took ${doneAt - termAt} ms after SIGTERM`);

  const exit = await b.exited;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, b.stderr());
  // Past the grace the broker cuts what is left and exits 1 by a hard stop 400 ms later.
  assert.ok(exit.at - termAt < GRACE_MS + 400, `exited ${exit.at - termAt} ms after SIGTERM`);
  assertStoppedCleanly(b);
  // Each child was stopped by the broker (not found dead), and none is left once the broker is gone.
  for (const p of pids) {
    assert.ok(
      logLines(b).some((l) => l['msg'] === 'child stopped' && l['childPid'] === p),
      `no "child stopped" line for ${p}`,
    );
    assert.equal(groupAlive(p), false, `child ${p} outlived the broker`);
  }
});

it('SIGTERM: once the in-flight call has answered, an idle keep-alive connection does not hold the exit to the grace', async () => {
  // A long grace that only a connection left open could use up: the exit must come well before it.
  const GRACE_MS = 20_000;
  const b = await startShutdownBroker(GRACE_MS);
  const token = await brokerToken(b.url, 'alice');
  // fetch keeps its connections alive: after the response, the socket stays open and idle.
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${token}`,
  };
  const init = await fetch(`${b.url}/mcp`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    }),
  });
  assert.equal(init.status, 200);
  await init.text();
  const session = { 'mcp-session-id': init.headers.get('mcp-session-id') as string };
  const pidRes = await fetch(`${b.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, ...session },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'pid', arguments: {} },
    }),
  });
  const childPid = Number(textOf(((await pidRes.json()) as { result: unknown }).result));
  const call = fetch(`${b.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, ...session },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'slow', arguments: { steps: 4, ms: 100 } },
    }),
  }).then((r) => r.json() as Promise<{ result: unknown }>);
  await new Promise((r) => setTimeout(r, 150));
  const termAt = Date.now();
  b.proc.kill('SIGTERM');
  assert.equal(textOf((await call).result), 'done after 4 steps');
  const exit = await b.exited;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, b.stderr());
  assert.ok(exit.at - termAt < GRACE_MS / 2, `exited ${exit.at - termAt} ms after SIGTERM`);
  assertStoppedCleanly(b);
  assert.equal(groupAlive(childPid), false, `child ${childPid} outlived the broker`);
});

it('SIGTERM with a call that never answers: cut at the grace, the child told to cancel and stopped, exit 0', async () => {
  const GRACE_MS = 1000;
  const b = await startShutdownBroker(GRACE_MS);
  const alice = await connectV1(b.url, await brokerToken(b.url, 'alice'));
  cleanups.push(() => alice.client.close().catch(() => {}));
  const childPid = Number(textOf(await alice.client.callTool({ name: 'pid', arguments: {} })));
  let endedAt = 0;
  const call = alice.client
    .callTool({ name: 'hang', arguments: {} })
    .then(
      () => 'answered',
      (e: Error) => e.message,
    )
    .finally(() => {
      endedAt = Date.now();
    });
  await new Promise((r) => setTimeout(r, 200));
  const termAt = Date.now();
  b.proc.kill('SIGTERM');
  const [outcome, exit] = await Promise.all([call, b.exited]);
  assert.notEqual(outcome, 'answered');
  // The client is not left waiting: its call ends no later than the broker does.
  assert.ok(endedAt <= exit.at + 100, `the call ended ${endedAt - exit.at} ms after the exit`);
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, b.stderr());
  assert.ok(exit.at - termAt < GRACE_MS + 400, `exited ${exit.at - termAt} ms after SIGTERM`);
  assertStoppedCleanly(b);
  const lines = logLines(b);
  assert.ok(
    lines.some((l) => l['msg'] === 'child stderr' && String(l['line']).startsWith('fault-server: cancelled')),
    'the child received notifications/cancelled',
  );
  assert.ok(lines.some((l) => l['msg'] === 'child stopped' && l['childPid'] === childPid));
  assert.equal(groupAlive(childPid), false, `child ${childPid} outlived the broker`);
});
