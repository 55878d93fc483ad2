// 4. OAuth: refreshes and code exchanges per second at a fixed concurrency, next to /healthz on the
// same broker (the HTTP framework's own rate: the floor for any route).
import type { BenchConfig } from '../config.ts';
import { runLeanJob } from '../drivers/lean.ts';
import type { LeanJob } from '../drivers/lean-job.ts';
import type { ConcurrencyRun } from '../drivers/result.ts';
import type { OauthRepeat, OauthResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { startBroker } from '../targets/broker.ts';
import { TargetUnavailable } from '../targets/target.ts';
import { signInAll } from './broker-session.ts';

async function rate(job: LeanJob, timeoutMs: number): Promise<ConcurrencyRun> {
  const r = await runLeanJob(job, timeoutMs);
  if (r.mode !== 'rate') throw new Error('lean driver answered another mode');
  return r.run;
}

export async function oauth(config: BenchConfig, server: StdioServer): Promise<OauthResult> {
  const c = config.oauthConcurrency;
  const broker = await startBroker({
    brokerRoot: config.brokerRoot,
    server,
    userCount: 4,
    logLevel: config.brokerLogLevel,
    nodeArgs: config.brokerNodeArgs,
  });
  try {
    const healthz = (): Promise<ConcurrencyRun> =>
      rate(
        {
          mode: 'rate',
          kind: 'get',
          url: `${broker.url}/healthz`,
          pid: broker.pid,
          concurrency: c,
          durationMs: config.oauthDurationMs,
        },
        config.runTimeoutMs,
      );
    let form: Record<string, string>;
    try {
      form = await broker.oauthClient();
    } catch (e) {
      if (!(e instanceof TargetUnavailable)) throw e;
      // Without OAuth the framework floor is still worth having.
      return {
        available: false,
        reason: e.message,
        concurrency: c,
        healthzOnly: true,
        repeats: [{ healthz: await healthz() }],
      };
    }
    const repeats: OauthRepeat[] = [];
    for (let r = 0; r < config.repeats; r++) {
      const h = await healthz();
      // One refresh chain per worker, each from its own sign-in.
      const chains = await signInAll(
        broker,
        Array.from({ length: c }, (_, i) => broker.users[i % broker.users.length]!),
      );
      const refresh = await rate(
        {
          mode: 'rate',
          kind: 'refresh',
          url: broker.tokenUrl,
          pid: broker.pid,
          concurrency: c,
          durationMs: config.oauthDurationMs,
          form: { client_id: form['client_id']!, resource: form['resource']! },
          refreshTokens: chains.map((s) => s.tokens.refreshToken),
        },
        config.runTimeoutMs,
      );
      // Codes live 60 s: make them just before exchanging them.
      const codes: { code: string; verifier: string }[] = [];
      await Promise.all(
        broker.users.map(async (user, u) => {
          for (let i = u; i < config.codeExchanges; i += broker.users.length)
            codes.push(await broker.authorize(user));
        }),
      );
      const exchange = await rate(
        {
          mode: 'rate',
          kind: 'exchange',
          url: broker.tokenUrl,
          pid: broker.pid,
          concurrency: c,
          // Bounded by the codes; a code lives 60 s anyway.
          durationMs: 60_000,
          form,
          codes,
        },
        config.runTimeoutMs,
      );
      repeats.push({ healthz: h, refresh, exchange });
    }
    return { available: true, concurrency: c, repeats };
  } finally {
    await broker.stop();
  }
}
