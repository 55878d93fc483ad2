// mcp-proxy (punkpeye) serving the stdio server on its stateful Streamable HTTP endpoint only.
import { join } from 'node:path';
import { REPO_ROOT } from '../servers.ts';
import { freePort, spawnGroup, waitForPort } from '../support/processes.ts';
import type { Target } from './target.ts';

const BIN = join(REPO_ROOT, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');

export const mcpProxyTarget: Target = {
  name: 'mcp-proxy',
  label: 'mcp-proxy (stream, stateful)',
  start: async (server) => {
    const port = await freePort();
    const spawned = spawnGroup(
      process.execPath,
      [
        BIN,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--server',
        'stream',
        '--',
        server.command,
        ...server.args,
      ],
      { env: { ...process.env, ...server.env } },
    );
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
