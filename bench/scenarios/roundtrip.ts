// 1. Tool-call round trip: every target around every server, each driver, repeated; target order
// rotates between repeats so drift on a shared machine does not always hit the same path.
import type { BenchConfig } from '../config.ts';
import { runLeanDriver } from '../drivers/lean.ts';
import type { DriverPlan } from '../drivers/result.ts';
import { runSdkDriver } from '../drivers/sdk-driver.ts';
import { runWrkDriver } from '../drivers/wrk.ts';
import type { RoundtripCell, RoundtripResult } from '../results.ts';
import type { StdioServer } from '../servers.ts';
import { type Target, TargetUnavailable } from '../targets/target.ts';

export async function roundtrip(
  config: BenchConfig,
  targets: Target[],
  servers: StdioServer[],
  log: (line: string) => void,
): Promise<RoundtripResult> {
  const plan: DriverPlan = {
    warmupCalls: config.warmupCalls,
    sequentialCalls: config.sequentialCalls,
    concurrencies: config.concurrencies,
    durationMs: config.durationMs,
  };
  const result: RoundtripResult = {
    servers: servers.map((s) => ({
      server: s.name,
      label: s.label,
      tool: s.tool,
      cells: targets.map((t) => ({
        target: t.name,
        label: t.label,
        sdk: [],
        lean: [],
        wrk: [],
        failures: [],
      })),
    })),
  };
  for (let r = 0; r < config.repeats; r++) {
    for (const [si, server] of servers.entries()) {
      const cells = result.servers[si]!.cells;
      for (let k = 0; k < targets.length; k++) {
        const ti = (k + r) % targets.length;
        const target = targets[ti]!;
        const cell: RoundtripCell = cells[ti]!;
        if (cell.unavailable) continue;
        log(`roundtrip ${r + 1}/${config.repeats} ${server.name} via ${target.name}`);
        let running: Awaited<ReturnType<Target['start']>>;
        try {
          running = await target.start(server);
        } catch (e) {
          if (e instanceof TargetUnavailable) {
            cell.unavailable = e.message;
            log(`  ${target.name}: skipped: ${e.message}`);
          } else {
            cell.failures.push(`repeat ${r + 1}: start: ${(e as Error).message.split('\n')[0]}`);
            log(`  ${target.name}: failed to start: ${(e as Error).message}`);
          }
          continue;
        }
        try {
          for (const driver of config.drivers) {
            try {
              const run =
                driver === 'sdk'
                  ? await withTimeout(runSdkDriver(running, server, plan), config.runTimeoutMs, 'SDK driver')
                  : driver === 'lean'
                    ? await runLeanDriver(running, server, plan, config.runTimeoutMs)
                    : await withTimeout(
                        runWrkDriver(running, server, plan),
                        config.runTimeoutMs,
                        'wrk driver',
                      );
              // wrk speaks HTTP only: the stdio floor has no wrk row.
              if (run) {
                cell[driver] ??= [];
                cell[driver].push(run);
              }
            } catch (e) {
              cell.failures.push(`repeat ${r + 1}: ${driver}: ${(e as Error).message.split('\n')[0]}`);
              log(`  ${target.name} ${driver}: ${(e as Error).message}`);
            }
          }
        } finally {
          await running.stop();
        }
      }
    }
  }
  return result;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
