// How every spawned HTTP front (a peer gateway, the bare relay) is started: a Node program on a
// free loopback port, in its own process group, serving Streamable HTTP on /mcp.
import { freePort, spawnGroup, waitForPort } from '../support/processes.ts';
import type { HttpRunning } from './target.ts';

export async function startSpawnedFront(
  args: (port: number) => string[],
  env?: NodeJS.ProcessEnv,
): Promise<HttpRunning> {
  const port = await freePort();
  const spawned = spawnGroup(process.execPath, args(port), env ? { env } : {});
  await waitForPort(port, spawned);
  return {
    kind: 'http',
    url: `http://127.0.0.1:${port}/mcp`,
    headers: {},
    pid: spawned.pid,
    stop: spawned.stop,
  };
}
