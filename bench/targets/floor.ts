// The floor: the stdio server reached directly, no HTTP at all.
import type { Target } from './target.ts';

export const floorTarget: Target = {
  name: 'floor',
  label: 'stdio directly (floor)',
  start: async (server) => ({ kind: 'stdio', server, stop: async () => {} }),
};
