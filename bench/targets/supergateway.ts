// supergateway 4 in stateful Streamable HTTP mode wrapping the stdio server.
import { join } from 'node:path';
import { REPO_ROOT, shellCommand } from '../servers.ts';
import { startSpawnedFront } from './spawned-front.ts';
import type { Target } from './target.ts';

const BIN = join(REPO_ROOT, 'node_modules/supergateway/dist/index.js');

export const supergatewayTarget: Target = {
  name: 'supergateway',
  label: 'supergateway --stateful',
  start: (server) =>
    startSpawnedFront((port) => [
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
    ]),
};
