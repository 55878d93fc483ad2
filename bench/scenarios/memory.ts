// 3. Memory: the broker's RSS and live heap (after a full GC) with no sessions, one session per user
// (each user's child running), then many idle sessions over the same users.
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import type { MemoryPoint, MemoryResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { descendants } from '../support/proc.ts';
import type { Broker } from '../targets/broker.ts';
import { bearer, type SignedIn, withBroker } from './broker-session.ts';

async function point(broker: Broker, sessions: number): Promise<MemoryPoint> {
  // Let timers and sockets settle before reading.
  await new Promise((r) => setTimeout(r, 500));
  const m = await broker.memory();
  return {
    sessions,
    children: descendants(broker.pid).length,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
  };
}

async function open(broker: Broker, users: SignedIn[], count: number, offset: number, timeoutMs: number) {
  const headers = Array.from({ length: count }, (_, i) => bearer(users[(offset + i) % users.length]!));
  const r = await runLeanJob({ mode: 'initialize', url: broker.mcpUrl, headers, keep: true }, timeoutMs);
  if (r.mode !== 'initialize') throw new Error('lean driver answered another mode');
  if (r.errors > 0) throw new Error(`${r.errors} of ${count} initializes failed: ${r.firstError}`);
}

export async function memory(config: BenchConfig, server: StdioServer): Promise<MemoryResult> {
  return withBroker(config, server, config.memoryUsers, async (broker, users) => {
    const points: MemoryPoint[] = [await point(broker, 0)];
    await open(broker, users, users.length, 0, config.runTimeoutMs);
    let sessions = users.length;
    points.push(await point(broker, sessions));
    for (const level of config.memorySessions) {
      if (level <= sessions) continue;
      await open(broker, users, level - sessions, sessions, config.runTimeoutMs);
      sessions = level;
      points.push(await point(broker, sessions));
    }
    return { available: true, users: users.length, points };
  });
}
