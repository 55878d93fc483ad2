// mcp-proxy (punkpeye) serving the stdio server on its stateful Streamable HTTP endpoint only.
import { join } from 'node:path';
import { REPO_ROOT } from '../servers.ts';
import { startSpawnedFront } from './spawned-front.ts';
import type { Target } from './target.ts';

const BIN = join(REPO_ROOT, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');

export const mcpProxyTarget: Target = {
  name: 'mcp-proxy',
  label: 'mcp-proxy (stream, stateful)',
  start: (server) =>
    startSpawnedFront(
      (port) => [
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
      { ...process.env, ...server.env },
    ),
};
