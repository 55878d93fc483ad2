// Soak run: the real broker process (stand-in children, Forgejo emulator) under SOAK_USERS ×
// SOAK_SESSIONS concurrent MCP sessions (SDK v1 clients, OAuth bearer tokens) calling tools for
// SOAK_SECONDS. Fails (exit 1) on any call error, wrong answer, broker error log line, or when the
// broker's open fds, children or zombies are not back to the idle baseline once the children are reaped.
//   SOAK_SECONDS=600 node scripts/soak.ts      (make soak)
// The broker's memory (RSS, V8 heap, external) is sampled every SOAK_MEMORY_EVERY seconds and printed
// as a timeline; the samples marked +gc (idle before and after, and at a quarter and nine tenths of
// the run under load) follow a forced full GC, so their heap figures are live data.
// For diagnosis: SOAK_BROKER_NODE_ARGS (extra node flags for the broker, e.g. --max-semi-space-size=1)
// SOAK_BROKER_ENV (extra environment for the broker, `K=V K=V`, e.g. MALLOC_ARENA_MAX=2)
// and SOAK_HEAP_SNAPSHOTS=<dir> (heap snapshots after a full GC: idle before, at a quarter and at nine
// tenths of the run under load, idle after; making one allocates outside the heap, so a run with
// snapshots is for comparing heaps, not for RSS figures; scripts/heap-diff.ts compares two).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type EmulatorUser, startForgejoEmulator } from '../emulator/forgejo/emulator.ts';
import {
  FORGEJO_CLIENT_ID,
  FORGEJO_CLIENT_SECRET,
  freePort,
  registerClient,
} from '../test/support/oauth-harness.ts';
import { fullFlow } from '../test/support/oauth-stack.ts';
import { STANDIN_COMMAND } from '../test/support/standin.ts';
import { askMemory, type BrokerMemory } from './memory-ask.ts';

function intEnv(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not ${raw}`);
  return n;
}

const SECONDS = intEnv('SOAK_SECONDS', 600);
const USER_COUNT = intEnv('SOAK_USERS', 5);
const SESSIONS_PER_USER = intEnv('SOAK_SESSIONS', 4);
/** Forgejo access token life: short enough that every user's child is replaced during the run. */
const TOKEN_TTL_S = intEnv('SOAK_TOKEN_TTL', 60);
const CHILD_IDLE_S = 3;
/** For diagnosis: the broker's log lines (but the one per request) appended to this file, at SOAK_LOG_LEVEL. */
const BROKER_LOG = process.env['SOAK_BROKER_LOG'];
const MEMORY_EVERY_S = intEnv('SOAK_MEMORY_EVERY', 30);
const BROKER_NODE_ARGS = (process.env['SOAK_BROKER_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);
const BROKER_ENV = Object.fromEntries(
  (process.env['SOAK_BROKER_ENV'] ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const at = kv.indexOf('=');
      if (at < 1) throw new Error(`SOAK_BROKER_ENV takes K=V pairs, not ${kv}`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
);
const SNAPSHOT_DIR = process.env['SOAK_HEAP_SNAPSHOTS'] || undefined;
const PROBE = join(import.meta.dirname, 'memory-probe.ts');
/** The last user pauses longer than the idle limit now and then, so reaping happens under load. */
const PAUSER_ACTIVE_MS = 20_000;
const PAUSER_IDLE_MS = (CHILD_IDLE_S + 3) * 1000;
const SETTLE_MS = 30_000;
const CB = 'http://127.0.0.1:7/cb';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- what /proc says about the broker ----

type ProcEntry = { pid: number; ppid: number; state: string };

function processes(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), state: rest[0] ?? '?', ppid: Number(rest[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

type Sample = { fds: number; children: number; zombies: number; rssKb: number };

function sample(pid: number): Sample {
  const kids = processes().filter((p) => p.ppid === pid);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return {
    fds: readdirSync(`/proc/${pid}/fd`).length,
    children: kids.filter((p) => p.state !== 'Z').length,
    zombies: kids.filter((p) => p.state === 'Z').length,
    rssKb: Number(rss?.[1] ?? 0),
  };
}

// ---- what the broker says about its memory (scripts/memory-probe.ts) ----

/** One timeline row: seconds into the run (0 before it), what was happening, the figures. */
type MemoryRow = { at: number; phase: string } & BrokerMemory;

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function memoryTable(rows: MemoryRow[]): string[] {
  const head =
    'soak memory:   at phase        rss  anon   brk  file  heapUsed heapTotal  phys  new  old  code  lo  external  malloced (MB)';
  return [
    head,
    ...rows.map((r) => {
      const sp = (name: string) => mb(r.spaces[name]?.size ?? 0);
      return `soak memory: ${String(r.at).padStart(4)} ${`${r.phase}${r.gc ? '+gc' : ''}`.padEnd(11)} ${[
        mb(r.rss).padStart(6),
        mb(r.anon).padStart(5),
        mb(r.brk).padStart(5),
        mb(r.file).padStart(5),
        mb(r.heapUsed).padStart(9),
        mb(r.heapTotal).padStart(9),
        mb(r.heapPhysical).padStart(5),
        sp('new_space').padStart(4),
        sp('old_space').padStart(5),
        sp('code_space').padStart(5),
        sp('large_object_space').padStart(4),
        mb(r.external).padStart(9),
        mb(r.mallocedMemory).padStart(9),
      ].join(' ')}`;
    }),
  ];
}

// ---- the broker process ----

type BrokerRun = {
  proc: ChildProcess;
  url: string;
  errorLines: string[];
  /** Child lifecycle lines (a few per child), printed when something is left over. */
  lifecycle: string[];
  counts: Map<string, number>;
  exited: Promise<number | null>;
};

async function startBroker(env: Record<string, string>): Promise<BrokerRun> {
  const main = join(import.meta.dirname, '..', 'src', 'main', 'main.ts');
  const proc = spawn(process.execPath, [...BROKER_NODE_ARGS, '--expose-gc', '--import', PROBE, main], {
    cwd: env['BROKER_TMP'],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...BROKER_ENV, ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const errorLines: string[] = [];
  const lifecycle: string[] = [];
  const counts = new Map<string, number>();
  let started: (url: string) => void = () => {};
  const url = new Promise<string>((r) => {
    started = r;
  });
  // Only counts and error lines are kept: a long run logs a line per request.
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    let rec: { level?: number; msg?: string; address?: string };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      errorLines.push(`not JSON: ${line.slice(0, 300)}`);
      return;
    }
    const msg = rec.msg ?? '';
    if (BROKER_LOG && msg !== 'request') appendFileSync(BROKER_LOG, `${line}\n`);
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
    if (msg === 'broker started' && rec.address) started(`http://${rec.address}`);
    if (msg !== 'request' && msg !== 'child stderr' && lifecycle.length < 5000)
      lifecycle.push(line.slice(0, 300));
    if ((rec.level ?? 0) >= 50 && errorLines.length < 50) errorLines.push(line.slice(0, 500));
  });
  const early = await Promise.race([url, exited.then((c) => ({ exit: c })), sleep(20_000)]);
  if (typeof early !== 'string') {
    proc.kill('SIGKILL');
    throw new Error(`broker did not start (${JSON.stringify(early)}): ${errorLines.join('\n')}`);
  }
  return { proc, url: early, errorLines, lifecycle, counts, exited };
}

// ---- clients ----

type Session = { user: EmulatorUser; client: Client; transport: StreamableHTTPClientTransport };

const latencies: number[] = [];
const errors: string[] = [];
let errorCount = 0;
function fail(what: string): void {
  errorCount++;
  if (errors.length < 20) errors.push(what);
}

async function openSession(base: string, user: EmulatorUser, clientId: string): Promise<Session> {
  const { tokens } = await fullFlow(base, {
    clientId,
    redirectUri: CB,
    login: user.login,
    password: user.password,
  });
  const client = new Client({ name: `soak-${user.login}`, version: '0' });
  client.onerror = (e) => fail(`${user.login} transport: ${e.message}`);
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
  });
  await client.connect(transport);
  return { user, client, transport };
}

async function closeSession(s: Session): Promise<void> {
  await s.transport.terminateSession();
  await s.client.close();
}

type CallResult = { isError?: boolean; content?: { type: string; text?: string }[] };

/** One call of a rotating set of tools; each answer must be the caller's own data. */
async function callOnce(s: Session, n: number): Promise<void> {
  const login = s.user.login;
  const calls: [string, Record<string, unknown>, string][] = [
    ['list_my_repos', {}, `"name":"${login}-repo"`],
    ['get_my_user_info', {}, `"login":"${login}"`],
    ['list_repo_issues', { owner: login, repo: `${login}-repo` }, `"title":"${login} issue"`],
    ['get_forgejo_mcp_server_version', {}, 'Forgejo MCP Server version'],
  ];
  const [name, args, expect] = calls[n % calls.length]!;
  const t0 = performance.now();
  try {
    const r = (await s.client.callTool({ name, arguments: args })) as CallResult;
    latencies.push(performance.now() - t0);
    const text = r.content?.[0]?.text ?? '';
    if (r.isError || !text.includes(expect))
      fail(`${login} ${name}: unexpected answer ${text.slice(0, 200)}`);
  } catch (e) {
    latencies.push(performance.now() - t0);
    fail(`${login} ${name}: ${(e as Error).message}`);
  }
}

async function drive(s: Session, until: number, pauses: boolean): Promise<void> {
  let n = Math.floor(Math.random() * 4);
  let activeUntil = Date.now() + PAUSER_ACTIVE_MS;
  do {
    if (pauses && Date.now() >= activeUntil) {
      await sleep(Math.min(PAUSER_IDLE_MS, Math.max(0, until - Date.now())));
      activeUntil = Date.now() + PAUSER_ACTIVE_MS;
      continue;
    }
    await callOnce(s, n++);
    // A little think time, so 20 sessions are busy without being a benchmark.
    await sleep(Math.random() * 10);
  } while (Date.now() < until);
}

const pct = (sorted: number[], p: number): number =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);

// ---- the clients run in a worker: when it ends, every connection it held is closed, so the
// broker's fds can be compared with the baseline without waiting out HTTP keep-alive (72 s) ----

type ClientJob = { base: string; users: EmulatorUser[]; sessionsPerUser: number; seconds: number };
type ClientReport = {
  calls: number;
  errors: number;
  messages: string[];
  p50ms: number;
  p99ms: number;
  maxms: number;
  seconds: number;
};

async function runClients(job: ClientJob): Promise<ClientReport> {
  const client = await registerClient(job.base, { redirect_uris: [CB], token_endpoint_auth_method: 'none' });
  const sessions: Session[] = [];
  for (const u of job.users)
    for (let i = 0; i < job.sessionsPerUser; i++)
      sessions.push(await openSession(job.base, u, client.client_id));
  parentPort?.postMessage({ kind: 'running' });
  const started = Date.now();
  const until = started + job.seconds * 1000;
  const pauser = job.users.length > 1 ? job.users[job.users.length - 1] : undefined;
  await Promise.all(sessions.map((s) => drive(s, until, s.user === pauser)));
  const seconds = (Date.now() - started) / 1000;
  for (const s of sessions) await closeSession(s);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    calls: sorted.length,
    errors: errorCount,
    messages: errors,
    p50ms: Number(pct(sorted, 50).toFixed(1)),
    p99ms: Number(pct(sorted, 99).toFixed(1)),
    maxms: Number((sorted[sorted.length - 1] ?? 0).toFixed(1)),
    seconds: Math.round(seconds),
  };
}

/** Runs `job` in a worker; `onRunning` fires once every session is open. */
function clientsInWorker(job: ClientJob, onRunning: () => void = () => {}): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    let report: ClientReport | undefined;
    w.on('message', (m: { kind: 'running' } | { kind: 'done'; report: ClientReport }) => {
      if (m.kind === 'running') onRunning();
      else report = m.report;
    });
    w.once('error', reject);
    w.once('exit', (code) => (report ? resolve(report) : reject(new Error(`client worker exited ${code}`))));
  });
}

/** Polls until the broker is back to `base` (no children, no zombies, no extra fds) or time runs out. */
async function settle(pid: number, base: Sample): Promise<Sample> {
  const end = Date.now() + SETTLE_MS;
  let s = sample(pid);
  while (Date.now() < end && (s.children > 0 || s.zombies > 0 || s.fds > base.fds)) {
    await sleep(250);
    s = sample(pid);
  }
  return s;
}

async function main(): Promise<number> {
  const users: EmulatorUser[] = Array.from({ length: USER_COUNT }, (_, i) => {
    const login = `soak${i + 1}`;
    return {
      id: 2001 + i,
      login,
      password: `${login}-pw`,
      repos: [{ name: `${login}-repo`, issues: [{ title: `${login} issue` }] }],
    };
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const emulator = await startForgejoEmulator({
    users,
    apps: [
      {
        clientId: FORGEJO_CLIENT_ID,
        clientSecret: FORGEJO_CLIENT_SECRET,
        name: 'forgejo-mcp-broker',
        redirectUris: [`${base}/oauth/callback`],
      },
    ],
    accessTokenTtlSeconds: TOKEN_TTL_S,
  });
  const tmp = mkdtempSync(join(tmpdir(), 'broker-soak-'));
  let broker: BrokerRun | undefined;
  try {
    broker = await startBroker({
      BROKER_TMP: tmp,
      BROKER_LISTEN: `127.0.0.1:${port}`,
      BROKER_PUBLIC_URL: base,
      FORGEJO_URL: emulator.url,
      FORGEJO_CLIENT_ID,
      FORGEJO_CLIENT_SECRET,
      FORGEJO_REFRESH_MARGIN: `${Math.max(1, Math.floor(TOKEN_TTL_S / 6))}s`,
      BROKER_DB: join(tmp, 'broker.db'),
      BROKER_SECRET_KEY: randomBytes(32).toString('base64'),
      BROKER_CHILD_COMMAND: STANDIN_COMMAND,
      BROKER_CHILD_IDLE: `${CHILD_IDLE_S}s`,
      BROKER_RATE_LIMIT: '1000',
      LOG_LEVEL: process.env['SOAK_LOG_LEVEL'] || 'info',
    });
    const pid = broker.proc.pid!;
    const atStart = sample(pid);
    // Warm-up: the first child spawn and request set up things that stay for the process's life
    // (libuv's signal pipe, the HTTP client pool), so the baseline is an idle broker that has served.
    const warm = await clientsInWorker({ base, users: users.slice(0, 1), sessionsPerUser: 1, seconds: 0 });
    if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.messages.join('; ')}`);
    await settle(pid, { ...atStart, fds: Number.POSITIVE_INFINITY });
    // Past the broker's own keep-alive to the emulator (undici keeps idle sockets about 4 s).
    await sleep(5_000);
    const baseline = sample(pid);
    const proc = broker.proc;
    const memory: MemoryRow[] = [];
    let started = Date.now();
    const snapshotPath = (name: string) =>
      SNAPSHOT_DIR ? join(SNAPSHOT_DIR, `broker-${name}.heapsnapshot`) : undefined;
    /** Records a timeline row; a failed probe is reported, not fatal: memory is not what the soak checks. */
    const remember = async (phase: string, opts: { gc?: boolean; snapshot?: string } = {}) => {
      const at = Math.round((Date.now() - started) / 1000);
      try {
        memory.push({ at, phase, ...(await askMemory(proc, opts)) });
      } catch (e) {
        console.log(`soak: memory probe at ${at}s: ${(e as Error).message}`);
      }
    };
    await remember('idle before', {
      gc: true,
      ...(SNAPSHOT_DIR ? { snapshot: snapshotPath('before') } : {}),
    });

    let peak = sample(pid);
    const sampler = setInterval(() => {
      const s = sample(pid);
      peak = {
        fds: Math.max(peak.fds, s.fds),
        children: Math.max(peak.children, s.children),
        zombies: Math.max(peak.zombies, s.zombies),
        rssKb: Math.max(peak.rssKb, s.rssKb),
      };
    }, 1000);
    const progress = setInterval(() => {
      const s = sample(pid);
      console.log(
        `soak: ${Math.round((Date.now() - started) / 1000)}s fds=${s.fds} children=${s.children} zombies=${s.zombies} rss=${Math.round(s.rssKb / 1024)}MB`,
      );
    }, 60_000);
    const timers: NodeJS.Timeout[] = [];
    const run = await clientsInWorker(
      { base, users, sessionsPerUser: SESSIONS_PER_USER, seconds: SECONDS },
      () => {
        started = Date.now();
        timers.push(setInterval(() => void remember('load'), MEMORY_EVERY_S * 1000));
        // Live data under load, early and late: what a leak would make grow.
        for (const [name, share] of [
          ['early', 0.25],
          ['late', 0.9],
        ] as const) {
          const snapshot = snapshotPath(name);
          timers.push(
            setTimeout(
              () => void remember(`load ${name}`, { gc: true, ...(snapshot ? { snapshot } : {}) }),
              SECONDS * share * 1000,
            ),
          );
        }
      },
    );
    clearInterval(sampler);
    clearInterval(progress);
    for (const t of timers) clearTimeout(t);
    await remember('closed');
    const after = await settle(pid, baseline);
    await remember('idle after', { gc: true, ...(SNAPSHOT_DIR ? { snapshot: snapshotPath('after') } : {}) });

    const c = (m: string) => broker?.counts.get(m) ?? 0;
    const leaks: string[] = [];
    if (after.fds > baseline.fds) leaks.push(`fds ${baseline.fds} → ${after.fds}`);
    if (after.children > baseline.children) leaks.push(`children ${baseline.children} → ${after.children}`);
    if (after.zombies > 0) leaks.push(`${after.zombies} zombies`);
    const summary = {
      seconds: run.seconds,
      sessions: USER_COUNT * SESSIONS_PER_USER,
      users: USER_COUNT,
      calls: run.calls,
      errors: run.errors,
      brokerErrorLines: broker.errorLines.length,
      p50ms: run.p50ms,
      p99ms: run.p99ms,
      maxms: run.maxms,
      fds: { atStart: atStart.fds, before: baseline.fds, peak: peak.fds, after: after.fds },
      children: { before: baseline.children, peak: peak.children, after: after.children },
      zombies: { peak: peak.zombies, after: after.zombies },
      rssMb: {
        before: Math.round(baseline.rssKb / 1024),
        peak: Math.round(peak.rssKb / 1024),
        after: Math.round(after.rssKb / 1024),
      },
      memory: memory.map((r) => ({
        at: r.at,
        phase: r.phase,
        gc: r.gc,
        rssMb: Number(mb(r.rss)),
        brkMb: Number(mb(r.brk)),
        heapUsedMb: Number(mb(r.heapUsed)),
        heapTotalMb: Number(mb(r.heapTotal)),
        heapPhysicalMb: Number(mb(r.heapPhysical)),
        newSpaceMb: Number(mb(r.spaces['new_space']?.size ?? 0)),
        externalMb: Number(mb(r.external)),
      })),
      reaps: c('reaping an idle MCP server'),
      messages: Object.fromEntries(broker.counts),
      tokenRefreshes: c('Forgejo token refreshed'),
      leaks,
    };
    console.log(
      [
        `soak: ${summary.calls} calls in ${summary.seconds}s over ${summary.sessions} sessions (${USER_COUNT} users), ${summary.errors} errors, ${summary.brokerErrorLines} broker error lines`,
        `soak: latency p50 ${summary.p50ms} ms, p99 ${summary.p99ms} ms, max ${summary.maxms} ms`,
        `soak: fds start ${atStart.fds}, before ${baseline.fds}, peak ${peak.fds}, after ${after.fds}; children before ${baseline.children}, peak ${peak.children}, after ${after.children}; zombies ${after.zombies}`,
        `soak: broker RSS ${summary.rssMb.before} → peak ${summary.rssMb.peak} → ${summary.rssMb.after} MB; ${summary.reaps} idle reaps, ${summary.tokenRefreshes} Forgejo token refreshes`,
        ...memoryTable(memory),
      ].join('\n'),
    );
    for (const e of run.messages) console.log(`soak error: ${e}`);
    for (const e of broker.errorLines.slice(0, 10)) console.log(`soak broker error: ${e}`);
    for (const l of leaks) console.log(`soak leak: ${l}`);
    if (leaks.length > 0) {
      const left = processes().filter((p) => p.ppid === pid);
      console.log(`soak: left over: ${left.map((p) => `${p.pid} ${p.state}`).join(', ')}`);
      for (const l of broker.lifecycle) console.log(`soak broker: ${l}`);
    }
    console.log(`SOAK_RESULT ${JSON.stringify(summary)}`);
    return summary.errors === 0 && summary.brokerErrorLines === 0 && leaks.length === 0 ? 0 : 1;
  } finally {
    if (broker && broker.proc.exitCode === null) {
      broker.proc.kill('SIGTERM');
      const code = await Promise.race([broker.exited, sleep(10_000).then(() => 'timeout')]);
      if (code === 'timeout') broker.proc.kill('SIGKILL');
    }
    await emulator.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`soak: ${(e as Error).stack ?? e}`);
      process.exit(2);
    },
  );
} else {
  runClients(workerData as ClientJob).then(
    (report) => parentPort?.postMessage({ kind: 'done', report }),
    (e: unknown) => {
      throw e;
    },
  );
}
