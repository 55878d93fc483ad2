// Load from Debian's wrk: a C load generator in its own process, so neither a Node client nor its
// garbage collector is part of the figure. A Lua script (wrk-mcp.lua) sends pre-built tools/call
// requests with a unique id each and checks every response; latency percentiles come from wrk's raw
// histogram with its coordinated-omission correction undone (wrk 4.1 adds synthetic samples for slow
// responses before the script's done() sees them), so they are the latencies actually observed.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StdioServer } from '../servers.ts';
import { type Histogram, summarizeHistogram, uncorrectWrkHistogram } from '../stats.ts';
import { cpuBetween, cpuSnapshot } from '../support/proc.ts';
import type { Running } from '../targets/target.ts';
import { closeSession, keepAliveAgent, openSession } from './mcp-http.ts';
import type { ConcurrencyRun, DriverPlan, DriverRun } from './result.ts';

const SCRIPT = join(import.meta.dirname, 'wrk-mcp.lua');

/** Why wrk cannot run here, or undefined when it can. */
export function wrkMissing(): string | undefined {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (r.error) return 'wrk is not installed (Debian package wrk; make bench installs it when run as root)';
  return /wrk (\S+)/.exec(`${r.stdout}${r.stderr}`) ? undefined : 'wrk --version printed no version';
}

type WrkOut = {
  durationUs: number;
  requests: number;
  ok: number;
  bad: number;
  firstBad: string;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  histogram: Histogram;
};

function runWrk(
  url: string,
  headers: Record<string, string>,
  body: { head: string; tail: string },
  expect: string,
  connections: number,
  durationMs: number,
): Promise<WrkOut> {
  const dir = mkdtempSync(join(tmpdir(), 'fmb-wrk-'));
  const out = join(dir, 'out.json');
  // One thread: on 2 cores a second wrk thread only takes CPU from the path being measured.
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${Math.max(1, Math.round(durationMs / 1000))}s`,
    '--timeout',
    '10s',
  ];
  for (const [k, v] of Object.entries({ ...headers, 'content-type': 'application/json' }))
    args.push('-H', `${k}: ${v}`);
  args.push('-s', SCRIPT, url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, {
      env: {
        ...process.env,
        WRK_BODY_HEAD: body.head,
        WRK_BODY_TAIL: body.tail,
        WRK_EXPECT: expect,
        WRK_OUT: out,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-4096);
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`wrk exited ${code}: ${err.trim()}`);
        resolve(JSON.parse(readFileSync(out, 'utf8')) as WrkOut);
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

async function wrkRun(
  running: Extract<Running, { kind: 'http' }>,
  headers: Record<string, string>,
  body: { head: string; tail: string },
  expect: string,
  connections: number,
  durationMs: number,
): Promise<ConcurrencyRun> {
  const before = cpuSnapshot(running.pid);
  const o = await runWrk(running.url, headers, body, expect, connections, durationMs);
  const cpu = cpuBetween(before, cpuSnapshot(running.pid));
  const socketErrors = o.errors.connect + o.errors.read + o.errors.write + o.errors.timeout;
  const errors = o.bad + socketErrors;
  const calls = o.ok + errors;
  const per = (ms: number) => (calls === 0 ? Number.NaN : ms / calls);
  const histogram = uncorrectWrkHistogram(o.histogram, o.durationUs, o.requests, connections);
  const firstError = o.firstBad || (socketErrors > 0 ? `socket errors ${JSON.stringify(o.errors)}` : '');
  return {
    concurrency: connections,
    calls,
    errors,
    wallMs: o.durationUs / 1000,
    callsPerSec: (o.ok * 1e6) / o.durationUs,
    latency: summarizeHistogram(histogram),
    cpu: {
      targetMs: per(cpu.targetCpuMs),
      childrenMs: per(cpu.childrenCpuMs),
      // wrk's own CPU is not read (it is not a child of the target); it is C, and the same for every path.
      driverMs: Number.NaN,
      targetCores: cpu.targetCpuMs / cpu.wallMs,
      machineCores: cpu.machineCpuMs / cpu.wallMs,
    },
    ...(firstError ? { firstError } : {}),
  };
}

/**
 * wrk against an HTTP front: a session opened the ordinary way, a warm-up run, then one run per
 * concurrency. The sequential latency is the c=1 run's (a duration, not a count of calls).
 */
export async function runWrkDriver(
  running: Running,
  server: StdioServer,
  plan: DriverPlan,
): Promise<DriverRun | undefined> {
  if (running.kind !== 'http') return undefined;
  const missing = wrkMissing();
  if (missing) throw new Error(missing);
  const agent = keepAliveAgent(1);
  const url = new URL(running.url);
  const session = await openSession(agent, url, running.headers);
  const body = {
    head: '{"jsonrpc":"2.0","id":',
    tail: `,"method":"tools/call","params":${JSON.stringify({ name: server.tool, arguments: server.toolArgs })}}`,
  };
  try {
    const warm = await wrkRun(running, session.headers, body, server.expectText, 8, 1000);
    if (warm.errors > 0) throw new Error(`wrk warm-up: ${warm.errors} errors: ${warm.firstError}`);
    const runs: ConcurrencyRun[] = [];
    for (const c of plan.concurrencies)
      runs.push(await wrkRun(running, session.headers, body, server.expectText, c, plan.durationMs));
    const one = runs.find((r) => r.concurrency === 1) ?? runs[0]!;
    return {
      driver: 'wrk',
      sequential: {
        ...one.latency,
        errors: one.errors,
        ...(one.firstError ? { firstError: one.firstError } : {}),
      },
      runs,
    };
  } finally {
    await closeSession(agent, url, session);
    agent.destroy();
  }
}
