// 2. Initialize: a user whose child already runs (no spawn) vs a cold user (spawn + handshake); and
// a user's first tool call right after signing in, with and without the child started at sign-in.
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import { resultOk } from '../drivers/load.ts';
import {
  closeSession,
  keepAliveAgent,
  openSession,
  rpcResult,
  send,
  toolCallBody,
} from '../drivers/mcp-http.ts';
import type { InitializeResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { type LatencySummary, summarize } from '../stats.ts';
import { bearer, withBroker } from './broker-session.ts';

async function initializes(url: string, headers: Record<string, string>[], keep: boolean, timeoutMs: number) {
  const r = await runLeanJob({ mode: 'initialize', url, headers, keep }, timeoutMs);
  if (r.mode !== 'initialize') throw new Error('lean driver answered another mode');
  return { ...summarize(r.samples), errors: r.errors, ...(r.firstError ? { firstError: r.firstError } : {}) };
}

/** What a client does first once it holds a token: initialize, initialized, one tools/call. */
async function firstCall(mcpUrl: string, accessToken: string, server: StdioServer): Promise<void> {
  const agent = keepAliveAgent(1);
  const url = new URL(mcpUrl);
  try {
    const session = await openSession(agent, url, { authorization: `Bearer ${accessToken}` });
    const result = rpcResult(
      await send(agent, url, 'POST', session.headers, toolCallBody(server.tool, server.toolArgs)(1)),
      1,
    );
    if (!resultOk(result, server.expectText))
      throw new Error(`unexpected result ${JSON.stringify(result).slice(0, 200)}`);
    await closeSession(agent, url, session);
  } finally {
    agent.destroy();
  }
}

/** Each user signs in and, BENCH_FIRST_CALL_DELAY_MS later, makes a first call: timed until its result. */
async function firstCalls(
  config: BenchConfig,
  server: StdioServer,
  prewarm: boolean,
): Promise<LatencySummary & { errors: number; firstError?: string }> {
  return withBroker(
    config,
    server,
    config.coldUsers,
    async (broker) => {
      const samples: number[] = [];
      let errors = 0;
      let firstError: string | undefined;
      for (const user of broker.users) {
        const tokens = await broker.signIn(user);
        // A client's redirect, discovery and connection after the callback take about this long.
        await new Promise((r) => setTimeout(r, config.firstCallDelayMs));
        const t0 = performance.now();
        try {
          await firstCall(broker.mcpUrl, tokens.accessToken, server);
          samples.push(performance.now() - t0);
        } catch (e) {
          errors++;
          firstError ??= (e as Error).message;
        }
      }
      return { ...summarize(samples), errors, ...(firstError ? { firstError } : {}) };
    },
    { signIn: false, prewarm },
  );
}

export async function initialize(config: BenchConfig, server: StdioServer): Promise<InitializeResult> {
  const base = await withBroker(config, server, config.coldUsers + 1, async (broker, users) => {
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
    return { available: true as const, server: server.name, warm, cold };
  });
  const firstCallCold = await firstCalls(config, server, false);
  const firstCallPrewarmed = await firstCalls(config, server, true);
  return { ...base, firstCallCold, firstCallPrewarmed };
}
