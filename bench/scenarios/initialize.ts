// 2. Initialize: a user whose child already runs (no spawn) vs a cold user (spawn + handshake).
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import type { InitializeResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { summarize } from '../stats.ts';
import { bearer, withBroker } from './broker-session.ts';

async function initializes(url: string, headers: Record<string, string>[], keep: boolean, timeoutMs: number) {
  const r = await runLeanJob({ mode: 'initialize', url, headers, keep }, timeoutMs);
  if (r.mode !== 'initialize') throw new Error('lean driver answered another mode');
  return { ...summarize(r.samples), errors: r.errors, ...(r.firstError ? { firstError: r.firstError } : {}) };
}

export async function initialize(config: BenchConfig, server: StdioServer): Promise<InitializeResult> {
  return withBroker(config, server, config.coldUsers + 1, async (broker, users) => {
    const [warmUser, ...coldUsers] = users;
    const warmHeaders = bearer(warmUser!);
    // One kept session starts the warm user's child and keeps it from being reaped.
    const first = await initializes(broker.mcpUrl, [warmHeaders], true, config.runTimeoutMs);
    if (first.errors > 0) throw new Error(`first initialize failed: ${first.firstError}`);
    const warm = await initializes(
      broker.mcpUrl,
      Array.from({ length: config.initializeSamples }, () => warmHeaders),
      false,
      config.runTimeoutMs,
    );
    const cold = await initializes(broker.mcpUrl, coldUsers.map(bearer), true, config.runTimeoutMs);
    return { available: true, server: server.name, warm, cold };
  });
}
