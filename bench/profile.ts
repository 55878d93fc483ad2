// Profiles the broker on the round-trip path: starts the broker target with the given node flags
// (default --cpu-prof into BENCH_PROFILE_DIR), drives it with wrk (BENCH_PROFILE_DRIVER=lean: the
// lean driver), prints the run.
// Usage: node bench/profile.ts [concurrency] [durationMs]
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runLeanDriver } from './drivers/lean.ts';
import { runWrkDriver } from './drivers/wrk.ts';
import { everythingServer, REPO_ROOT } from './servers.ts';
import { summarizeProfile } from './support/profile-summary.ts';
import { brokerPostgresTarget, brokerTarget } from './targets/broker.ts';

const concurrency = Number(process.argv[2] ?? 64);
const durationMs = Number(process.argv[3] ?? 10_000);
const dir = process.env['BENCH_PROFILE_DIR'] ?? join(REPO_ROOT, 'bench/results/profiles');
mkdirSync(dir, { recursive: true });
const profiles = () => readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
const earlier = new Set(profiles());
const nodeArgs = (process.env['BENCH_BROKER_NODE_ARGS'] ?? `--cpu-prof --cpu-prof-dir=${dir}`)
  .split(' ')
  .filter(Boolean);
const server = everythingServer();
// BENCH_PROFILE_TARGET=broker-pg: the broker on a throwaway PostgreSQL instead of SQLite.
const target = process.env['BENCH_PROFILE_TARGET'] === 'broker-pg' ? brokerPostgresTarget : brokerTarget;
const running = await target({
  brokerRoot: process.env['BENCH_BROKER_ROOT'] ?? REPO_ROOT,
  logLevel: process.env['BENCH_BROKER_LOG_LEVEL'] ?? 'info',
  nodeArgs,
}).start(server);
try {
  const plan = {
    warmupCalls: 500,
    sequentialCalls: concurrency === 1 ? Math.round(durationMs * 2) : 0,
    concurrencies: concurrency === 1 ? [] : [concurrency],
    durationMs,
  };
  const run =
    process.env['BENCH_PROFILE_DRIVER'] === 'lean'
      ? await runLeanDriver(running, server, plan, durationMs * 4 + 60_000)
      : await runWrkDriver(running, server, { ...plan, concurrencies: [concurrency] });
  console.log(JSON.stringify(run, null, 1).slice(0, 3000));
} finally {
  await running.stop();
}
for (const f of profiles()) if (!earlier.has(f)) console.log(summarizeProfile(join(dir, f)));
console.log(`profiles in ${dir} (open them in Chrome DevTools, Performance tab)`);
