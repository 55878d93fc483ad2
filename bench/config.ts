// Every duration and count of a run, from the environment: BENCH_QUICK=1 is a ~1-minute smoke run,
// the default a full run sized for ~12 minutes on 2 cores. Any single figure can be overridden.

export type BenchConfig = {
  quick: boolean;
  /** repeats of each round-trip cell; medians are taken over them */
  repeats: number;
  warmupCalls: number;
  sequentialCalls: number;
  concurrencies: number[];
  /** duration of each fixed-duration concurrency run */
  durationMs: number;
  /** hard bound for any one driver run (counts and durations are bounded anyway) */
  runTimeoutMs: number;
  /** which parts run: roundtrip,initialize,memory,oauth,scale,replicas */
  parts: Set<string>;
  /** load drivers of the round trip: sdk,lean,wrk (BENCH_DRIVERS) */
  drivers: ('sdk' | 'lean' | 'wrk')[];
  /** round-trip paths measured, by name (BENCH_TARGETS; all when empty) */
  targets: string[];
  /** round-trip servers, by name (BENCH_SERVERS; all when empty) */
  servers: string[];
  initializeSamples: number;
  coldUsers: number;
  /** between a sign-in and that user's first call (BENCH_FIRST_CALL_DELAY_MS) */
  firstCallDelayMs: number;
  memorySessions: number[];
  memoryUsers: number;
  oauthConcurrency: number;
  oauthDurationMs: number;
  codeExchanges: number;
  scaleUsers: number[];
  scaleDurationMs: number;
  /** users of the replicas part, each one call in flight (BENCH_REPLICAS_USERS) */
  replicasUsers: number;
  replicasDurationMs: number;
  /** root of the checkout whose broker is measured (src/main/main.ts under it) */
  brokerRoot: string;
  brokerLogLevel: string;
  /** extra node flags for every broker process, space-separated (profiling: --cpu-prof --cpu-prof-dir=…) */
  brokerNodeArgs: string[];
};

const ALL_PARTS = ['roundtrip', 'initialize', 'memory', 'oauth', 'scale', 'replicas'];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return v;
}

function ints(env: NodeJS.ProcessEnv, name: string, fallback: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((v) => !Number.isInteger(v) || v <= 0))
    throw new Error(`${name} must be a comma-separated list of positive integers, got ${raw}`);
  return list;
}

function list(env: NodeJS.ProcessEnv, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function loadBenchConfig(env: NodeJS.ProcessEnv, repoRoot: string): BenchConfig {
  const quick = env['BENCH_QUICK'] === '1';
  const parts = new Set(
    (env['BENCH_PARTS'] ?? ALL_PARTS.join(','))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const p of parts) if (!ALL_PARTS.includes(p)) throw new Error(`BENCH_PARTS: unknown part ${p}`);
  const drivers = list(env, 'BENCH_DRIVERS', ['sdk', 'lean', 'wrk']);
  for (const d of drivers)
    if (d !== 'sdk' && d !== 'lean' && d !== 'wrk') throw new Error(`BENCH_DRIVERS: unknown driver ${d}`);
  return {
    quick,
    drivers: drivers as BenchConfig['drivers'],
    targets: list(env, 'BENCH_TARGETS', []),
    servers: list(env, 'BENCH_SERVERS', []),
    repeats: int(env, 'BENCH_REPEATS', quick ? 1 : 2),
    warmupCalls: int(env, 'BENCH_WARMUP', quick ? 50 : 200),
    sequentialCalls: int(env, 'BENCH_SEQUENTIAL', quick ? 200 : 1000),
    concurrencies: ints(env, 'BENCH_CONCURRENCY', [1, 8, 64]),
    durationMs: int(env, 'BENCH_DURATION_MS', quick ? 600 : 2500),
    runTimeoutMs: int(env, 'BENCH_RUN_TIMEOUT_MS', 120_000),
    parts,
    initializeSamples: int(env, 'BENCH_INIT_SAMPLES', quick ? 50 : 300),
    coldUsers: int(env, 'BENCH_COLD_USERS', quick ? 5 : 20),
    firstCallDelayMs: int(env, 'BENCH_FIRST_CALL_DELAY_MS', 1000),
    memorySessions: ints(env, 'BENCH_MEMORY_SESSIONS', quick ? [100] : [100, 1000]),
    memoryUsers: int(env, 'BENCH_MEMORY_USERS', 10),
    oauthConcurrency: int(env, 'BENCH_OAUTH_CONCURRENCY', 16),
    oauthDurationMs: int(env, 'BENCH_OAUTH_DURATION_MS', quick ? 1000 : 4000),
    codeExchanges: int(env, 'BENCH_CODE_EXCHANGES', quick ? 64 : 400),
    scaleUsers: ints(env, 'BENCH_SCALE_USERS', quick ? [5, 10] : [50, 100, 200]),
    scaleDurationMs: int(env, 'BENCH_SCALE_DURATION_MS', quick ? 1000 : 5000),
    replicasUsers: int(env, 'BENCH_REPLICAS_USERS', quick ? 4 : 16),
    replicasDurationMs: int(env, 'BENCH_REPLICAS_DURATION_MS', quick ? 1000 : 5000),
    brokerRoot: env['BENCH_BROKER_ROOT'] ?? repoRoot,
    brokerLogLevel: env['BENCH_BROKER_LOG_LEVEL'] ?? 'info',
    brokerNodeArgs: (env['BENCH_BROKER_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
  };
}
