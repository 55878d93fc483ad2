// The shape of bench/results/latest.json: raw runs only; every summary is derived from them.
import type { BenchConfig } from './config.ts';
import type { ConcurrencyRun, DriverRun } from './drivers/result.ts';
import type { LatencySummary } from './stats.ts';
import type { Machine } from './support/machine.ts';

export type Availability = { available: true } | { available: false; reason: string };

export type RoundtripCell = {
  target: string;
  label: string;
  /** set when the target could not run on this checkout (the broker before its /mcp lands) */
  unavailable?: string;
  sdk: DriverRun[];
  lean: DriverRun[];
  /** Debian's wrk (HTTP paths only; absent in results written before it existed) */
  wrk?: DriverRun[];
  /** failures of single repeats (start-up or driver), kept for the report */
  failures: string[];
};

export type RoundtripResult = {
  servers: { server: string; label: string; tool: string; cells: RoundtripCell[] }[];
};

export type InitializeResult = Availability & {
  server?: string;
  warm?: LatencySummary & { errors: number; firstError?: string };
  cold?: LatencySummary & { errors: number; firstError?: string };
  /** sign-in, then at once initialize + one tools/call; the child started by that call */
  firstCallCold?: LatencySummary & { errors: number; firstError?: string };
  /** the same with BROKER_CHILD_PREWARM: the child started when the sign-in finished */
  firstCallPrewarmed?: LatencySummary & { errors: number; firstError?: string };
};

export type MemoryPoint = {
  sessions: number;
  children: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
};

export type MemoryResult = Availability & { users?: number; points?: MemoryPoint[] };

export type OauthRepeat = { healthz: ConcurrencyRun; refresh?: ConcurrencyRun; exchange?: ConcurrencyRun };

export type OauthResult = Availability & {
  concurrency?: number;
  repeats?: OauthRepeat[];
  healthzOnly?: boolean;
};

export type ScaleLevel = {
  users: number;
  skipped?: string;
  run?: ConcurrencyRun;
  /** the broker's RSS after the level, and its live children */
  brokerRss?: number;
  children?: number;
  childrenRss?: number;
};

export type ScaleResult = Availability & { levels?: ScaleLevel[] };

export type ReplicasLevel = {
  replicas: number;
  run: ConcurrencyRun;
  /** users whose calls each replica served (the Authorization hash's split) */
  usersOn: number[];
};

export type ReplicasResult = Availability & { users?: number; levels?: ReplicasLevel[] };

export type BenchResults = {
  version: 1;
  machine: Machine;
  config: Omit<BenchConfig, 'parts' | 'brokerRoot'> & { parts: string[] };
  startedAt: string;
  finishedAt: string;
  durationS: number;
  loadAvgAtEnd: number[];
  /** git commits of the bench and of the broker checkout measured (BENCH_BROKER_ROOT) */
  code?: { bench: string; broker: string };
  roundtrip?: RoundtripResult;
  initialize?: InitializeResult;
  memory?: MemoryResult;
  oauth?: OauthResult;
  scale?: ScaleResult;
  replicas?: ReplicasResult;
};
