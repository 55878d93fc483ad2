// Issue 12, child isolation, with the real broker process: bob's child plays a compromised
// forgejo-mcp and takes what it can — alice's Forgejo token from her child's /proc/<pid>/environ,
// the broker's FORGEJO_CLIENT_SECRET from the broker's environ, the database and the key file.
// With the sandbox nothing is within reach; without it everything is, and the broker says so.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type BrokerProcess, logLines, startBroker } from '../support/broker-process.ts';
import { FAULT_SERVER } from '../support/gateway-stack.ts';
import { brokerToken, connectV1, textOf } from '../support/mcp-oauth-client.ts';
import { FORGEJO_CLIENT_SECRET, freePort, testBrokerEnv } from '../support/oauth-harness.ts';
import { startEmulatorFor } from '../support/oauth-stack.ts';
import { eventually } from '../support/wait.ts';

/** Live processes (bubblewrap or the child it runs) whose command line names the fault server. */
function childProcesses(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(FAULT_SERVER);
      } catch {
        return false;
      }
    })
    .map(Number);
}

type Peek = { processes: number; otherTokens: number; found: string[]; readable: string[] };

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A broker whose children are the fault server, with its key in a file beside the database. */
async function brokerWith(isolation: string): Promise<{ broker: BrokerProcess; dir: string }> {
  // Outside the temp folder, which every sandboxed child gets empty anyway: the database folder
  // itself must be what is hidden.
  const dir = mkdtempSync(join('/var/tmp', 'broker-isolation-'));
  assert.ok(!dir.startsWith(tmpdir()));
  const port = await freePort();
  const emulator = await startEmulatorFor(`http://127.0.0.1:${port}`);
  // Cleaned up even when the broker refuses to start, so a failure cannot hold the test file open.
  let broker: BrokerProcess | undefined;
  cleanup.push(async () => {
    if (broker && broker.proc.exitCode === null) {
      broker.proc.kill('SIGTERM');
      await broker.exited;
    }
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  });
  broker = await startBroker({
    BROKER_LISTEN: `127.0.0.1:${port}`,
    ...testBrokerEnv({ publicUrl: `http://127.0.0.1:${port}`, forgejoUrl: emulator.url, dir }),
    BROKER_SECRET_KEY: '',
    BROKER_CHILD_COMMAND: `"${process.execPath}" "${FAULT_SERVER}"`,
    BROKER_CHILD_ISOLATION: isolation,
  });
  return { broker, dir };
}

/** Alice's child runs; bob's child then looks for everything it should not see. */
async function attack(broker: BrokerProcess, dir: string): Promise<Peek> {
  const base = broker.url;
  const alice = await connectV1(base, await brokerToken(base, 'alice'));
  await alice.client.callTool({ name: 'pid', arguments: {} });
  const bob = await connectV1(base, await brokerToken(base, 'bob'));
  const r = await bob.client.callTool({
    name: 'peek',
    arguments: {
      markers: [`FORGEJO_CLIENT_SECRET=${FORGEJO_CLIENT_SECRET}`],
      paths: [join(dir, 'broker.db'), join(dir, 'broker.db-wal'), join(dir, 'secret.key')],
    },
  });
  await alice.client.close();
  await bob.client.close();
  return JSON.parse(textOf(r)) as Peek;
}

describe('child isolation', () => {
  it('bwrap: a child sees no sibling, not the broker, and neither the database nor the key file', async () => {
    const { broker, dir } = await brokerWith('bwrap');
    const started = logLines(broker).find((l) => l['msg'] === 'broker started');
    assert.equal(started?.['isolation'], 'bwrap');
    const said = logLines(broker).find((l) => String(l['msg']).startsWith('child isolation:'));
    assert.equal(said?.['level'], 'info');
    assert.match(String(said?.['msg']), /own PID namespace/);
    const peek = await attack(broker, dir);
    assert.deepEqual(peek, { processes: 1, otherTokens: 0, found: [], readable: [] });
    // On SIGTERM the sandboxed children stop with the broker, and nothing of theirs is left.
    assert.ok(childProcesses().length >= 2, 'both children run');
    broker.proc.kill('SIGTERM');
    assert.equal((await broker.exited).code, 0);
    assert.ok(logLines(broker).filter((l) => l['msg'] === 'child stopped').length >= 2);
    assert.ok(await eventually(() => childProcesses().length === 0), `left: ${childProcesses()}`);
  });

  it('none: the same child takes a sibling’s token, the broker’s secret and both files; the broker warns at startup', async () => {
    const { broker, dir } = await brokerWith('none');
    const warning = logLines(broker).find((l) => String(l['msg']).startsWith('child isolation is off'));
    assert.equal(warning?.['level'], 'warn');
    assert.equal(logLines(broker).find((l) => l['msg'] === 'broker started')?.['isolation'], 'none');
    const peek = await attack(broker, dir);
    assert.ok(peek.otherTokens >= 1, JSON.stringify(peek));
    assert.deepEqual(peek.found, [`FORGEJO_CLIENT_SECRET=${FORGEJO_CLIENT_SECRET}`]);
    assert.deepEqual(peek.readable, [
      join(dir, 'broker.db'),
      join(dir, 'broker.db-wal'),
      join(dir, 'secret.key'),
    ]);
  });
});
