// The real broker as a process, with the Forgejo emulator for sign-ins and fault-server children:
// for the tests that attack or stop the whole process. `cleanups` gets the way to tear both down.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrokerProcess, startBroker } from './broker-process.ts';
import { freePort, testBrokerEnv } from './oauth-harness.ts';
import { startEmulatorFor } from './oauth-stack.ts';

const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');

export async function startFaultBroker(
  env: Record<string, string>,
  cleanups: (() => Promise<void>)[],
): Promise<BrokerProcess> {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-faults-'));
  const port = await freePort();
  const emulator = await startEmulatorFor(`http://127.0.0.1:${port}`);
  let b: BrokerProcess | undefined;
  cleanups.push(async () => {
    if (b && b.proc.exitCode === null && b.proc.signalCode === null) {
      b.proc.kill('SIGKILL');
      await b.exited;
    }
    await emulator.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  b = await startBroker({
    BROKER_LISTEN: `127.0.0.1:${port}`,
    ...testBrokerEnv({ publicUrl: `http://127.0.0.1:${port}`, forgejoUrl: emulator.url, dir: tmp }),
    BROKER_RATE_LIMIT: '1000',
    BROKER_CHILD_COMMAND: `"${process.execPath}" "${FAULT_SERVER}"`,
    ...env,
  });
  return b;
}
