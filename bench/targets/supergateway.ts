// supergateway 4 in stateful Streamable HTTP mode wrapping the stdio server.
import { join } from 'node:path';
import { REPO_ROOT, shellCommand } from '../servers.ts';
import { freePort, spawnGroup, waitForPort } from '../support/processes.ts';
import type { Target } from './target.ts';

const BIN = join(REPO_ROOT, 'node_modules/supergateway/dist/index.js');

export const supergatewayTarget: Target = {
  name: 'supergateway',
  label: 'supergateway --stateful',
  start: async (server) => {
    const port = await freePort();
    const spawned = spawnGroup(process.execPath, [
      BIN,
      '--stdio',
      shellCommand(server),
      '--outputTransport',
      'streamableHttp',
      '--stateful',
      '--port',
      String(port),
      '--logLevel',
      'none',
    ]);
    await waitForPort(port, spawned);
    return {
      kind: 'http',
      url: `http://127.0.0.1:${port}/mcp`,
      headers: {},
      pid: spawned.pid,
      stop: spawned.stop,
    };
  },
};
