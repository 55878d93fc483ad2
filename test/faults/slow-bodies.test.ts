// The outside review's slow-body attack, against the real broker process: a hundred connections
// that each push 4 MiB − 1 bytes at /mcp without a token and then idle, and bodies dripped at
// /oauth/token and /oauth/register. Each is refused or cut within its deadline, the broker's memory
// stays bounded, and a signed-in user keeps being served throughout.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, it } from 'node:test';
import { MCP_BODY_LIMIT } from '../../src/gateway/routes.ts';
import { startFaultBroker } from '../support/fault-broker.ts';
import { brokerToken, connectV1, textOf } from '../support/mcp-oauth-client.ts';
import { type SlowOutcome, slowRequest } from '../support/slow-client.ts';

const BODY_MS = 2000;
const UPLOADS = 100;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

it('100 stalled 4 MiB uploads and dripped OAuth bodies: refused or cut in time, memory bounded, users served', async () => {
  const b = await startFaultBroker({ BROKER_BODY_TIMEOUT: `${BODY_MS}ms` }, cleanups);
  const pid = b.proc.pid as number;
  const alice = await connectV1(b.url, await brokerToken(b.url, 'alice'));
  cleanups.push(() => alice.client.close().catch(() => {}));
  assert.equal(textOf(await alice.client.callTool({ name: 'echo', arguments: { text: 'warm' } })), 'warm');
  const before = rssMb(pid);

  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 50);
  const uploads = Array.from({ length: UPLOADS }, () =>
    slowRequest(b.url, {
      path: '/mcp',
      headers: { accept: 'application/json, text/event-stream' },
      contentLength: MCP_BODY_LIMIT,
      sendAtOnce: MCP_BODY_LIMIT - 1,
      giveUpMs: 4 * BODY_MS,
    }),
  );
  const drips = ['/oauth/token', '/oauth/register'].flatMap((path) =>
    Array.from({ length: 10 }, () =>
      slowRequest(b.url, {
        path,
        contentLength: 2000,
        sendAtOnce: 1,
        dripEveryMs: 200,
        giveUpMs: 4 * BODY_MS,
      }),
    ),
  );
  // Served while the strangers hold their connections.
  assert.equal(
    textOf(await alice.client.callTool({ name: 'echo', arguments: { text: 'served' } })),
    'served',
  );
  const refused: SlowOutcome[] = await Promise.all(uploads);
  const cut: SlowOutcome[] = await Promise.all(drips);
  clearInterval(sampler);
  const afterAll = rssMb(pid);

  const slowest = Math.max(...refused.map((r) => r.closedAfterMs ?? Infinity));
  const slowestDrip = Math.max(...cut.map((r) => r.closedAfterMs ?? Infinity));
  const answered = refused.filter((r) => r.status === 401).length;
  const figures = `${answered}/${UPLOADS} uploads saw the 401 before the reset; RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB peak, ${afterAll.toFixed(0)} MB after; uploads refused within ${slowest} ms, drips cut within ${slowestDrip} ms`;
  process.stdout.write(`# slow bodies: ${figures}\n`);
  // A 401 sent while the client is still pushing its body may be lost to the connection's reset,
  // which is the refusal too: either way the connection is gone within the deadline.
  for (const r of refused) {
    assert.ok(r.status === 401 || r.status === undefined, r.head);
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS,
      `upload closed after ${r.closedAfterMs} ms`,
    );
  }
  for (const r of cut) {
    assert.equal(r.status, 408, r.head);
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS + 1000,
      `drip closed after ${r.closedAfterMs} ms`,
    );
  }
  assert.equal(textOf(await alice.client.callTool({ name: 'echo', arguments: { text: 'after' } })), 'after');
  // Before the gate moved ahead of the body, these uploads alone added about 4 MiB each (+400 MB).
  assert.ok(peak - before < 60, figures);
});
