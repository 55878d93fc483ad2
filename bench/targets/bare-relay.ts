// The reference front: bench/relay/bare-relay.ts around the same stdio server (see that file).
import { join } from 'node:path';
import { startSpawnedFront } from './spawned-front.ts';
import type { Target } from './target.ts';

const RELAY = join(import.meta.dirname, '..', 'relay', 'bare-relay.ts');

export const bareRelayTarget: Target = {
  name: 'relay',
  label: 'bare relay (reference: node:http, no auth)',
  start: (server) =>
    startSpawnedFront((port) => [RELAY, String(port), server.command, ...server.args], {
      ...process.env,
      ...server.env,
    }),
};
