import { type ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STANDIN_COMMAND } from './standin.ts';
import { eventually } from './wait.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main', 'main.ts');

export type BrokerProcess = {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
  /** Resolves with the exit code (or signal) and how long after `since` it came. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
};

/** Runs the real broker entry point as a child process, with exactly the environment given. */
export function spawnBroker(
  env: Record<string, string>,
  args: string[] = [],
  cwd = tmpdir(),
): Omit<BrokerProcess, 'url'> {
  // cwd is a temp folder so a default ./data/broker.db never lands in the checkout.
  const proc = spawn(process.execPath, [MAIN, ...args], {
    cwd,
    // Prewarm off unless asked: see testBrokerEnv in oauth-harness.ts.
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      BROKER_CHILD_COMMAND: STANDIN_COMMAND,
      BROKER_CHILD_PREWARM: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  proc.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
    },
  );
  return { proc, stderr: () => err, exited };
}

/** Starts the broker on a free loopback port and waits for its startup line. */
export async function startBroker(env: Record<string, string>, timeoutMs = 15_000): Promise<BrokerProcess> {
  const b = spawnBroker({ BROKER_LISTEN: '127.0.0.1:0', ...env });
  const startedLine = () =>
    b
      .stderr()
      .split('\n')
      .find((l) => l.includes('"msg":"broker started"'));
  await eventually(() => startedLine() !== undefined || b.proc.exitCode !== null, {
    timeoutMs,
    intervalMs: 50,
  });
  const line = startedLine();
  if (line) {
    const { address } = JSON.parse(line) as { address: string };
    return { ...b, url: `http://${address}` };
  }
  b.proc.kill('SIGKILL');
  throw new Error(`broker did not start:\n${b.stderr()}`);
}

/** The broker's JSON log lines so far (call it once the broker has exited: a line may be half written). */
export function logLines(b: Pick<BrokerProcess, 'stderr'>): Record<string, unknown>[] {
  return b
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
