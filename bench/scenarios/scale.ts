// 5. Scale: N users active at once, each on their own session and child, one call in flight each.
import { readFileSync } from 'node:fs';
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import type { ScaleLevel, ScaleResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { descendants, rssBytes } from '../support/proc.ts';
import { bearer, withBroker } from './broker-session.ts';

/** A first guess of one stand-in child's RSS, replaced by the measured figure after a level. */
const CHILD_RSS_GUESS = 80 * 1024 * 1024;
const MEMORY_HEADROOM = 1024 * 1024 * 1024;

function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.POSITIVE_INFINITY;
}

export async function scale(config: BenchConfig, server: StdioServer): Promise<ScaleResult> {
  const most = Math.max(...config.scaleUsers);
  return withBroker(config, server, most, async (broker, users) => {
    const levels: ScaleLevel[] = [];
    let perChild = CHILD_RSS_GUESS;
    let running = 0;
    for (const n of config.scaleUsers) {
      const needed = Math.max(0, n - running) * perChild + MEMORY_HEADROOM;
      if (memAvailable() < needed) {
        levels.push({
          users: n,
          skipped: `not enough free memory for ${n - running} more children (${Math.round(memAvailable() / 2 ** 20)} MiB available, ~${Math.round(needed / 2 ** 20)} MiB needed)`,
        });
        continue;
      }
      const result = await runLeanJob(
        {
          mode: 'scale',
          url: broker.mcpUrl,
          pid: broker.pid,
          users: users.slice(0, n).map(bearer),
          tool: server.tool,
          toolArgs: server.toolArgs,
          expectText: server.expectText,
          durationMs: config.scaleDurationMs,
        },
        config.runTimeoutMs,
      );
      if (result.mode !== 'rate') throw new Error('lean driver answered another mode');
      const kids = descendants(broker.pid);
      const childrenRss = kids.reduce((sum, pid) => sum + rssBytes(pid), 0);
      running = Math.max(running, n);
      if (kids.length > 0) perChild = Math.max(perChild, childrenRss / kids.length);
      levels.push({
        users: n,
        run: result.run,
        brokerRss: rssBytes(broker.pid),
        children: kids.length,
        childrenRss,
      });
    }
    return { available: true, levels };
  });
}
