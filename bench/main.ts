#!/usr/bin/env node
// make bench: every part in turn, raw numbers to bench/results/latest.json and docs/performance.json, the table to stdout and
// docs/performance.md. A part the checkout cannot run yet (the broker before its OAuth and /mcp
// land) is reported as skipped with the reason; any other failure makes the exit status 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { type ForgejoEmulator, startForgejoEmulator } from '../emulator/forgejo/emulator.ts';
import { type BenchConfig, loadBenchConfig } from './config.ts';
import { writeReports } from './report.ts';
import type { Availability, BenchResults } from './results.ts';
import { initialize } from './scenarios/initialize.ts';
import { memory } from './scenarios/memory.ts';
import { oauth } from './scenarios/oauth.ts';
import { roundtrip } from './scenarios/roundtrip.ts';
import { scale } from './scenarios/scale.ts';
import { everythingServer, REPO_ROOT, standinServer } from './servers.ts';
import { describeMachine } from './support/machine.ts';
import { killAllOnExit } from './support/processes.ts';
import { bareRelayTarget } from './targets/bare-relay.ts';
import { brokerBaselineTarget, brokerPostgresTarget, brokerTarget } from './targets/broker.ts';
import { floorTarget } from './targets/floor.ts';
import { mcpProxyTarget } from './targets/mcp-proxy.ts';
import { supergatewayTarget } from './targets/supergateway.ts';
import { TargetUnavailable } from './targets/target.ts';

/** The commit of a checkout, marked when it has uncommitted changes; "not a git checkout" otherwise. */
function commitOf(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', root, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === ''
      ? head
      : `${head} (with uncommitted changes)`;
  } catch {
    return `${root} (not a git checkout)`;
  }
}

const log = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** Runs a broker part; "not available on this checkout" becomes a skip, anything else a failure. */
async function part<T extends Availability>(
  name: string,
  config: BenchConfig,
  failures: string[],
  fn: () => Promise<T>,
): Promise<T | Availability | undefined> {
  if (!config.parts.has(name)) return undefined;
  log(`${name}`);
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TargetUnavailable) {
      log(`${name}: skipped: ${e.message}`);
      return { available: false, reason: e.message };
    }
    failures.push(`${name}: ${(e as Error).message}`);
    log(`${name} failed: ${(e as Error).stack ?? e}`);
    return { available: false, reason: `failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** The named ones (BENCH_TARGETS, BENCH_SERVERS), in their usual order; all when none is named. */
function pick<T extends { name: string }>(names: string[], all: T[]): T[] {
  if (names.length === 0) return all;
  const unknown = names.filter((n) => !all.some((t) => t.name === n));
  if (unknown.length > 0)
    throw new Error(`unknown ${unknown.join(', ')}; known: ${all.map((t) => t.name).join(', ')}`);
  return all.filter((t) => names.includes(t.name));
}

async function main(): Promise<number> {
  killAllOnExit();
  const config = loadBenchConfig(process.env, REPO_ROOT);
  const machine = describeMachine();
  const started = performance.now();
  log(
    `${config.quick ? 'quick' : 'full'} run on ${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAvgAtStart.join(' ')}`,
  );
  // The stand-in checks its Forgejo at start; the floor and the peers share this one.
  const forgejo: ForgejoEmulator = await startForgejoEmulator({ users: [], apps: [] });
  const failures: string[] = [];
  const { parts, brokerRoot: _root, ...rest } = config;
  const results: BenchResults = {
    version: 1,
    machine,
    config: { ...rest, parts: [...parts] },
    startedAt: machine.date,
    finishedAt: '',
    durationS: 0,
    loadAvgAtEnd: [],
    code: {
      bench: commitOf(REPO_ROOT),
      broker: config.brokerRoot === REPO_ROOT ? 'this checkout' : commitOf(config.brokerRoot),
    },
  };
  try {
    const everything = everythingServer();
    const standin = standinServer(forgejo.url);
    if (config.parts.has('roundtrip')) {
      log('roundtrip');
      results.roundtrip = await roundtrip(
        config,
        pick(config.targets, [
          floorTarget,
          brokerTarget({
            brokerRoot: config.brokerRoot,
            logLevel: config.brokerLogLevel,
            nodeArgs: config.brokerNodeArgs,
          }),
          ...(process.env['BENCH_BASELINE_ROOT']
            ? [
                brokerBaselineTarget(
                  {
                    brokerRoot: process.env['BENCH_BASELINE_ROOT'],
                    logLevel: config.brokerLogLevel,
                    nodeArgs: config.brokerNodeArgs,
                  },
                  commitOf(process.env['BENCH_BASELINE_ROOT']),
                ),
              ]
            : []),
          brokerPostgresTarget({
            brokerRoot: config.brokerRoot,
            logLevel: config.brokerLogLevel,
            nodeArgs: config.brokerNodeArgs,
          }),
          supergatewayTarget,
          bareRelayTarget,
          mcpProxyTarget,
        ]),
        pick(config.servers, [everything, standin]),
        log,
      );
    }
    // Broker-only parts run the stand-in: the child a real deployment runs, spawn cost included.
    results.initialize = await part('initialize', config, failures, () => initialize(config, standin));
    results.memory = await part('memory', config, failures, () => memory(config, standin));
    results.oauth = await part('oauth', config, failures, () => oauth(config, standin));
    results.scale = await part('scale', config, failures, () => scale(config, standin));
  } finally {
    await forgejo.close();
  }
  results.finishedAt = new Date().toISOString();
  results.durationS = (performance.now() - started) / 1000;
  results.loadAvgAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  const dir = join(REPO_ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const text = writeReports(results, join(dir, 'latest.json'), join(REPO_ROOT, 'docs/performance.md'));
  process.stdout.write(text);
  log(
    `wrote bench/results/latest.json, docs/performance.json and docs/performance.md in ${Math.round(results.durationS)} s`,
  );
  for (const f of failures) log(`FAILED ${f}`);
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`bench failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
