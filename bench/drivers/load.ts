// The load shapes both drivers share: sequential latency and fixed-duration concurrency, with the
// target's CPU read from /proc around each window. A call throws on any error or wrong result.
import { summarize } from '../stats.ts';
import { cpuBetween, cpuSnapshot } from '../support/proc.ts';
import type { ConcurrencyRun, DriverPlan, DriverRun } from './result.ts';

/** One call; `worker` is the index of the concurrent worker making it. */
export type Call = (worker: number) => Promise<void>;

/** True when a tools/call result is a success whose first text content contains the expected text. */
export function resultOk(result: unknown, expected: string): boolean {
  const r = result as { isError?: boolean; content?: { type?: string; text?: string }[] } | null;
  if (!r || r.isError === true || !Array.isArray(r.content)) return false;
  const first = r.content[0];
  return first?.type === 'text' && typeof first.text === 'string' && first.text.includes(expected);
}

export async function sequential(call: Call, count: number): Promise<DriverRun['sequential']> {
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      await call(0);
      samples.push(performance.now() - t0);
    } catch (e) {
      errors++;
      firstError ??= (e as Error).message;
    }
  }
  return { ...summarize(samples), errors, ...(firstError ? { firstError } : {}) };
}

/** Warm-up calls (errors abort: a path that cannot serve them is broken, not slow). */
export async function warmUp(call: Call, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await call(0);
}

/** c workers keep one call each in flight until the duration is up; calls still running then finish. */
export async function concurrencyRun(
  call: Call,
  pid: number,
  c: number,
  durationMs: number,
  hasWork: () => boolean = () => true,
): Promise<ConcurrencyRun> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const before = cpuSnapshot(pid);
  const driverBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + durationMs;
  const worker = async (_: unknown, index: number) => {
    while (performance.now() < end && hasWork()) {
      const t0 = performance.now();
      try {
        await call(index);
        latencies.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  const wallMs = performance.now() - start;
  const cpu = cpuBetween(before, cpuSnapshot(pid));
  const driverUsage = process.cpuUsage(driverBefore);
  const calls = latencies.length + errors;
  const per = (ms: number) => (calls === 0 ? Number.NaN : ms / calls);
  return {
    concurrency: c,
    calls,
    errors,
    wallMs,
    callsPerSec: (latencies.length * 1000) / wallMs,
    latency: summarize(latencies),
    cpu: {
      targetMs: per(cpu.targetCpuMs),
      childrenMs: per(cpu.childrenCpuMs),
      driverMs: per((driverUsage.user + driverUsage.system) / 1000),
      targetCores: cpu.targetCpuMs / cpu.wallMs,
      machineCores: cpu.machineCpuMs / cpu.wallMs,
    },
    ...(firstError ? { firstError } : {}),
  };
}

export async function runPlan(
  call: Call,
  pid: number,
  plan: DriverPlan,
  driver: DriverRun['driver'],
): Promise<DriverRun> {
  await warmUp(call, plan.warmupCalls);
  const seq = await sequential(call, plan.sequentialCalls);
  const runs: ConcurrencyRun[] = [];
  for (const c of plan.concurrencies) runs.push(await concurrencyRun(call, pid, c, plan.durationMs));
  return { driver, sequential: seq, runs };
}
