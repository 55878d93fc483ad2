// The reference front: bench/relay/bare-relay.ts around the same stdio server (see that file).
import { join } from 'node:path';
import { freePort, spawnGroup, waitForPort } from '../support/processes.ts';
import type { Target } from './target.ts';

const RELAY = join(import.meta.dirname, '..', 'relay', 'bare-relay.ts');

export const bareRelayTarget: Target = {
  name: 'relay',
  label: 'bare relay (reference: node:http, no auth)',
  start: async (server) => {
    const port = await freePort();
    const spawned = spawnGroup(process.execPath, [RELAY, String(port), server.command, ...server.args], {
      env: { ...process.env, ...server.env },
    });
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
