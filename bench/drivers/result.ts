// What a load driver reports for one path: sequential latency, then fixed-duration concurrency runs.
import type { LatencySummary } from '../stats.ts';

export type CpuPerCall = {
  /** CPU ms per call of the front process (the server itself for the floor) */
  targetMs: number;
  /** CPU ms per call of the front's descendants (the wrapped server); 0 for the floor */
  childrenMs: number;
  /** CPU ms per call of the load driver itself */
  driverMs: number;
  /** the front's CPU use over the window, in cores (1.0 = one core busy) */
  targetCores: number;
  /** the whole machine's busy CPU over the window, in cores: target, driver and everybody else */
  machineCores: number;
};

export type ConcurrencyRun = {
  concurrency: number;
  calls: number;
  errors: number;
  wallMs: number;
  callsPerSec: number;
  latency: LatencySummary;
  cpu: CpuPerCall;
  /** first error message seen, for the report */
  firstError?: string;
};

export type DriverRun = {
  driver: 'sdk' | 'lean' | 'wrk';
  sequential: LatencySummary & { errors: number; firstError?: string };
  runs: ConcurrencyRun[];
};

export type DriverPlan = {
  warmupCalls: number;
  sequentialCalls: number;
  concurrencies: number[];
  durationMs: number;
};
