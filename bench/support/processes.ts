// Spawning and stopping the processes under test. Each gets its own process group so stopping it
// also stops whatever it spawned (a peer's stdio child, a shell), and nothing is left behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Spawned = {
  proc: ChildProcess;
  pid: number;
  /** the last 64 KiB of stdout and stderr, for error messages */
  stderr: () => string;
  stop: () => Promise<void>;
};

const STDERR_KEEP = 64 * 1024;

/** Process groups started and not yet stopped: killed if the bench itself is interrupted. */
const live = new Set<number>();

/** On SIGINT/SIGTERM/SIGHUP and at exit, no target or peer outlives the bench. */
export function killAllOnExit(): void {
  const killAll = () => {
    for (const pid of live) signalGroup(pid, 'SIGKILL');
    live.clear();
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export function spawnGroup(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; ipc?: boolean } = {},
): Spawned {
  // Output goes to a file, not a pipe: reading a chatty target's logs would cost the bench process
  // (where the SDK driver runs) CPU in the middle of a measurement.
  const logDir = mkdtempSync(join(tmpdir(), 'bench-log-'));
  const logPath = join(logDir, 'output.log');
  const fd = openSync(logPath, 'a');
  const proc = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: opts.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
  });
  closeSync(fd);
  const tail = (): string => {
    try {
      const f = openSync(logPath, 'r');
      try {
        const size = fstatSync(f).size;
        const length = Math.min(size, STDERR_KEEP);
        const buf = Buffer.alloc(length);
        readSync(f, buf, 0, length, size - length);
        return buf.toString('utf8');
      } finally {
        closeSync(f);
      }
    } catch {
      return '';
    }
  };
  if (proc.pid === undefined) {
    rmSync(logDir, { recursive: true, force: true });
    throw new Error(`cannot spawn ${command}`);
  }
  const pid = proc.pid;
  live.add(pid);
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  return {
    proc,
    pid,
    stderr: tail,
    stop: async () => {
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      // The leader may exit before its children: make sure the group is gone.
      signalGroup(pid, 'SIGKILL');
      live.delete(pid);
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** A free loopback port (bound then released; the race with other users of the machine is small). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  server.close();
  await once(server, 'close');
  return addr.port;
}

/** Waits until something accepts TCP connections on the port, or the process exits, or time is up. */
export async function waitForPort(port: number, spawned: Spawned, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawned.proc.exitCode !== null || spawned.proc.signalCode !== null) {
      throw new Error(`process exited before listening on ${port}:\n${spawned.stderr()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  await spawned.stop();
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms:\n${spawned.stderr()}`);
}
