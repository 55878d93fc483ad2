#!/usr/bin/env node
// Renders a run: the stdout table and docs/performance.md, both from the raw JSON alone, so the page
// can be regenerated from a saved run: node bench/report.ts [bench/results/latest.json].
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConcurrencyRun } from './drivers/result.ts';
import { replicasMarkdown, replicasText } from './replicas-report.ts';
import type { BenchResults } from './results.ts';
import { REPO_ROOT } from './servers.ts';
import { type LatencySummary, median } from './stats.ts';
import {
  type ConcSummary,
  DRIVERS,
  type DriverName,
  type PathSummary,
  type Summary,
  summarize,
} from './summary.ts';

const ms = (v: number) =>
  Number.isFinite(v) ? (v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)) : '–';
const rate = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
const kib = (v: number) => (Number.isFinite(v) ? `${(v / 1024).toFixed(1)} KB` : '–');
const mib = (v: number) => (Number.isFinite(v) ? `${(v / 2 ** 20).toFixed(1)} MiB` : '–');
const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '–');

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** A Markdown table; figures align right unless `textColumns` says the columns hold words. */
function mdTable(head: string[], rows: string[][], textColumns = false): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 || textColumns ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

function concAt(p: PathSummary, c: number): ConcSummary | undefined {
  return p.conc.find((k) => k.concurrency === c);
}

function pathRows(paths: PathSummary[], concurrencies: number[]): { head: string[]; rows: string[][] } {
  const top = Math.max(...concurrencies);
  const head = [
    'path',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    ...concurrencies.map((c) => `c=${c} calls/s`),
    `c=${top} p99 ms`,
    `front CPU ms/call c=${top}`,
    `server CPU ms/call c=${top}`,
    'errors',
  ];
  // A path a driver cannot speak to (wrk and the stdio floor) has neither runs nor failures: no row.
  const shown = paths.filter((p) => p.unavailable || p.repeats > 0 || p.failures.length > 0);
  const rows = shown.map((p) => {
    // The reason goes under the table (pathNotes): a long cell would stretch every column.
    if (p.unavailable) return [`${p.label} (skipped)`, ...head.slice(1).map(() => '–')];
    if (p.repeats === 0) return [`${p.label} (failed)`, ...head.slice(1).map(() => '–')];
    const t = concAt(p, top);
    const errors = p.seq.errors + p.conc.reduce((s, c) => s + c.errors, 0);
    const front = p.target === 'floor' ? '–' : ms(t?.targetCpuMs ?? Number.NaN);
    const server =
      p.target === 'floor' ? ms(t?.targetCpuMs ?? Number.NaN) : ms(t?.childrenCpuMs ?? Number.NaN);
    return [
      p.label,
      ms(p.seq.p50),
      ms(p.seq.p95),
      ms(p.seq.p99),
      ...concurrencies.map((c) => rate(concAt(p, c)?.callsPerSec ?? Number.NaN)),
      ms(t?.p99 ?? Number.NaN),
      front,
      server,
      String(errors),
    ];
  });
  return { head, rows };
}

function allWindows(results: BenchResults): ConcurrencyRun[] {
  const out: ConcurrencyRun[] = [];
  for (const srv of results.roundtrip?.servers ?? [])
    for (const cell of srv.cells)
      for (const run of [...cell.sdk, ...cell.lean, ...(cell.wrk ?? [])]) out.push(...run.runs);
  for (const r of results.oauth?.repeats ?? [])
    out.push(...[r.healthz, r.refresh, r.exchange].filter((x) => x !== undefined));
  for (const l of results.scale?.levels ?? []) if (l.run) out.push(l.run);
  return out;
}

/** How much CPU other work on the machine took while the bench measured: the noise to expect. */
export function noiseLine(results: BenchResults): string {
  // wrk's own CPU is not read, so its windows cannot tell the bench's share from other work's.
  const windows = allWindows(results).filter(
    (w) => Number.isFinite(w.cpu.machineCores) && Number.isFinite(w.cpu.driverMs) && w.calls > 0,
  );
  if (windows.length === 0) return '';
  const others = windows.map((w) => {
    const perCall = w.cpu.targetMs + w.cpu.childrenMs + w.cpu.driverMs;
    return Math.max(0, w.cpu.machineCores - (perCall * w.calls) / w.wallMs);
  });
  return `Other work on the machine during the ${windows.length} measured windows: median ${median(others).toFixed(2)} cores busy (max ${Math.max(...others).toFixed(2)}) of ${results.machine.cores}, besides the bench's own processes.`;
}

/** Why a path has no figures, or lost repeats: one line each, under the table. */
function pathNotes(paths: PathSummary[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (p.unavailable) out.push(`${p.target} skipped: ${p.unavailable}`);
    for (const f of p.failures) out.push(`${p.target} ${p.repeats === 0 ? 'failed' : 'lost a repeat'}: ${f}`);
  }
  return out;
}

/** Rows of latency summaries (ms) with their sample counts and errors. */
function latencyTable(what: string, rows: [string, LatencySummary & { errors: number }][]): string[] {
  return mdTable(
    [what, 'n', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'],
    rows.map(([name, l]) => [name, String(l.n), ms(l.p50), ms(l.p95), ms(l.p99), String(l.errors)]),
  );
}

function ratioLines(s: Summary['servers'][number], d: DriverName): string[] {
  const r = s.ratios[d];
  if (!Number.isFinite(r.brokerOverFloorP50) && !Number.isFinite(r.brokerOverBetterPeerRate)) return [];
  return [
    ...(Number.isFinite(r.brokerOverFloorP50)
      ? [
          `broker/floor p50 (c=1): ${x(r.brokerOverFloorP50)} (+${ms(r.brokerAddedP50Ms)} ms); broker/floor calls/s at c=${r.topConcurrency}: ${x(r.brokerOverFloorRate)}`,
        ]
      : []),
    ...(Number.isFinite(r.relayAddedP50Ms)
      ? [
          `bare relay (no logic of its own) over the floor p50 (c=1): +${ms(r.relayAddedP50Ms)} ms; broker/relay calls/s at c=${r.topConcurrency}: ${x(r.brokerOverRelayRate)}`,
        ]
      : []),
    ...(Number.isFinite(r.brokerOverRelayCpu)
      ? [
          `broker over the bare relay: p50 (c=1) ${r.brokerOverRelayP50Ms < 0 ? '−' : '+'}${ms(Math.abs(r.brokerOverRelayP50Ms))} ms; calls/s at c=${r.topConcurrency} ${x(r.brokerOverRelayRate)}; front CPU ms per call at c=${r.topConcurrency} ${x(r.brokerOverRelayCpu)}`,
        ]
      : []),
    ...(Number.isFinite(r.postgresOverSqliteCpu)
      ? [
          `broker on PostgreSQL over the broker on SQLite at c=${r.topConcurrency}: front CPU ms per call ${x(r.postgresOverSqliteCpu)}, calls/s ${x(r.postgresOverSqliteRate)}`,
        ]
      : []),
    `broker/peer calls/s at c=${r.topConcurrency}: ${Object.entries(r.brokerOverPeerRate)
      .map(([k, v]) => `${k} ${x(v)}`)
      .join(', ')}; over the better peer ${x(r.brokerOverBetterPeerRate)}`,
    `broker/peer front CPU ms per call at c=${r.topConcurrency} (lower is better; steadier than rates on a busy machine): ${Object.entries(
      r.brokerOverPeerCpu,
    )
      .map(([k, v]) => `${k} ${x(v)}`)
      .join(', ')}`,
  ];
}

const DRIVER_TITLE = {
  sdk: 'SDK v1 client in the bench process',
  lean: 'lean driver (separate process, pre-built JSON-RPC over keep-alive HTTP / raw stdio lines)',
  wrk: "Debian's wrk (C, separate process, Lua-checked responses, uncorrected percentiles; HTTP paths only)",
};

export function renderText(results: BenchResults, s: Summary): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(
    `forgejo-mcp-broker bench — ${m.date} — ${m.cpuModel}, ${m.cores} cores, ${m.memTotalMiB} MiB, Node ${m.node}${results.config.quick ? ' — QUICK (smoke) run' : ''}`,
  );
  const noise = noiseLine(results);
  if (noise) out.push(noise);
  for (const srv of s.servers) {
    for (const d of DRIVERS) {
      out.push('', `Round trip: ${srv.label} (${srv.tool}) — ${DRIVER_TITLE[d]}`);
      const { head, rows } = pathRows(srv.drivers[d], results.config.concurrencies);
      out.push(
        ...table(head, rows),
        ...[...pathNotes(srv.drivers[d]), ...ratioLines(srv, d)].map((l) => `  ${l}`),
      );
    }
  }
  if (results.initialize) {
    const i = results.initialize;
    out.push(
      '',
      i.available && i.warm && i.cold
        ? `Initialize: warm p50 ${ms(i.warm.p50)} ms p95 ${ms(i.warm.p95)} ms (n=${i.warm.n}); cold p50 ${ms(i.cold.p50)} ms p95 ${ms(i.cold.p95)} ms (n=${i.cold.n})${i.firstCallCold && i.firstCallPrewarmed ? `; first call after sign-in: cold p50 ${ms(i.firstCallCold.p50)} ms, prewarmed p50 ${ms(i.firstCallPrewarmed.p50)} ms` : ''}`
        : `Initialize: skipped: ${i.available ? 'no data' : i.reason}`,
    );
  }
  if (results.memory) {
    out.push(
      '',
      s.memory
        ? `Memory: ${s.memory.points.map((p) => `${p.sessions} sessions/${p.children} children: RSS ${mib(p.rss)} heap ${mib(p.heapUsed)}`).join('; ')}; per idle session ${kib(s.memory.perIdleSessionHeap)} heap (${kib(s.memory.perIdleSessionRss)} RSS); per live child ${kib(s.memory.perChildHeap)} heap (${kib(s.memory.perChildRss)} RSS)`
        : `Memory: skipped: ${results.memory.available ? 'no data' : results.memory.reason}`,
    );
  }
  if (results.oauth) {
    const o = s.oauth;
    const parts = o ? [`/healthz ${rate(o.healthz.callsPerSec)}/s`] : [];
    if (o?.refresh)
      parts.push(
        `refresh ${rate(o.refresh.callsPerSec)}/s (p99 ${ms(o.refresh.p99)} ms, ${ms(o.refresh.targetCpuMs)} CPU ms each)`,
      );
    if (o?.exchange)
      parts.push(`code exchange ${rate(o.exchange.callsPerSec)}/s (p99 ${ms(o.exchange.p99)} ms)`);
    out.push(
      '',
      `OAuth at c=${results.oauth.concurrency ?? '?'}: ${parts.join('; ') || 'no data'}${results.oauth.available ? '' : ` — token endpoints skipped: ${results.oauth.reason}`}`,
    );
  }
  if (results.scale) {
    const sc = results.scale;
    if (!sc.available) out.push('', `Scale: skipped: ${sc.reason}`);
    else {
      out.push('', 'Scale (each user one call in flight on their own session and child):');
      out.push(
        ...table(
          ['users', 'calls/s', 'errors', 'p50 ms', 'p99 ms', 'broker CPU', 'children CPU', 'broker RSS'],
          scaleRows(results),
        ),
        ...scaleNotes(results).map((l) => `  ${l}`),
      );
    }
  }
  out.push(...replicasText(results));
  out.push('', 'Targets:');
  for (const v of s.verdicts)
    out.push(`  [${v.status}] ${v.target}: ${v.figure}${v.note ? ` (${v.note})` : ''}`);
  return `${out.join('\n')}\n`;
}

function scaleNotes(results: BenchResults): string[] {
  return (results.scale?.levels ?? []).flatMap((l) =>
    l.skipped ? [`${l.users} users skipped: ${l.skipped}`] : [],
  );
}

function scaleRows(results: BenchResults): string[][] {
  return (results.scale?.levels ?? []).map((l) => {
    if (!l.run) return [`${l.users} (skipped)`, '–', '–', '–', '–', '–', '–', '–'];
    const r = l.run;
    const childCores = (r.cpu.childrenMs * r.calls) / r.wallMs;
    return [
      String(l.users),
      rate(r.callsPerSec),
      `${r.errors} (${pct(r.calls ? r.errors / r.calls : 0)})`,
      ms(r.latency.p50),
      ms(r.latency.p99),
      `${r.cpu.targetCores.toFixed(2)} cores`,
      `${childCores.toFixed(2)} cores`,
      mib(l.brokerRss ?? Number.NaN),
    ];
  });
}

/** Why added users stopped adding throughput, as far as CPU accounting can tell. */
function bendCause(busy: number, machine: number, driver: number, cores: number): string {
  const others = Math.max(0, machine - busy - driver);
  if (busy > cores * 0.85) return ': broker and children use the cores, so added users queue for CPU';
  if (machine > cores * 0.85 && others > cores * 0.15)
    return ': the machine was saturated by work outside the bench, so this bend says more about the machine than the broker';
  if (machine > cores * 0.85)
    return ': the cores were full (broker, children and the load driver together), so calls/s stays at what the CPU allows and each added user waits in line, which is what p99 grows with';
  if (busy < cores * 0.5)
    return ': CPU was not the limit, so the wait is elsewhere (the broker’s queueing or the children’s I/O): worth a profile';
  return '';
}

/** Where the scale curve bends, read off the levels: throughput stops growing or p99 jumps. */
function scaleReading(results: BenchResults): string {
  const levels = (results.scale?.levels ?? []).filter((l) => l.run);
  if (levels.length < 2) return '';
  const cores = results.machine.cores;
  const lines: string[] = [];
  for (let i = 1; i < levels.length; i++) {
    const a = levels[i - 1]!;
    const b = levels[i]!;
    const ra = a.run!;
    const rb = b.run!;
    const growth = rb.callsPerSec / ra.callsPerSec;
    const usersGrowth = b.users / a.users;
    const busy = rb.cpu.targetCores + (rb.cpu.childrenMs * rb.calls) / rb.wallMs;
    const machine = rb.cpu.machineCores;
    const driver = (rb.cpu.driverMs * rb.calls) / rb.wallMs;
    if (growth < usersGrowth * 0.8 || rb.latency.p99 > 2 * ra.latency.p99) {
      lines.push(
        `From ${a.users} to ${b.users} users calls/s grew ${growth.toFixed(2)}× (users ${usersGrowth.toFixed(1)}×) and p99 went ${ms(ra.latency.p99)} → ${ms(rb.latency.p99)} ms, with broker + children using ${busy.toFixed(2)} of ${cores} cores (broker ${rb.cpu.targetCores.toFixed(2)}) and the whole machine ${machine.toFixed(2)} (the load driver ${driver.toFixed(2)}, other processes ${Math.max(0, machine - busy - driver).toFixed(2)})${bendCause(busy, machine, driver, cores)}. Per call the broker spent ${((rb.cpu.targetCores * rb.wallMs) / rb.calls).toFixed(2)} ms of CPU and the children ${rb.cpu.childrenMs.toFixed(2)} ms.`,
      );
    }
  }
  return lines.length > 0
    ? lines.join(' ')
    : 'No bend within the levels measured: calls/s grew with users and p99 stayed within 2×.';
}

export function renderMarkdown(results: BenchResults, s: Summary): string {
  const m = results.machine;
  const c = results.config;
  const out: string[] = [
    '# Performance',
    '',
    '<!-- Generated by `make bench` (bench/report.ts) from docs/performance.json and bench/analysis.md. Do not edit by hand. -->',
    '',
    `Measured ${m.date} in ${Math.round(results.durationS)} s${c.quick ? ' — **quick smoke run (BENCH_QUICK=1): short windows, one repeat; do not quote these figures**' : ''}.`,
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpuModel}, ${m.cores} cores available to Node`,
    `- Memory: ${m.memTotalMiB} MiB`,
    `- Kernel ${m.kernel}, Node ${m.node}`,
    `- Code: bench at ${results.code?.bench ?? 'unknown'}, broker measured: ${results.code?.broker ?? 'unknown'}`,
    `- Load average at start ${m.loadAvgAtStart.join(' / ')}, at end ${results.loadAvgAtEnd.join(' / ')} (1/5/15 min)`,
    '',
    'This is a shared machine: other work runs beside the bench. Every comparison below was measured',
    'side by side in the same run, on 127.0.0.1, and is quoted as medians over repeats and ratios of',
    'those medians; absolute figures move from run to run, ratios much less.',
    ...(noiseLine(results) ? ['', noiseLine(results)] : []),
    '',
    '## How to reproduce',
    '',
    '```sh',
    'make bench                 # full run, ~12 minutes on 2 cores',
    'BENCH_QUICK=1 make bench   # ~1-minute smoke run',
    'node bench/report.ts       # re-render this page and the table from docs/performance.json',
    '```',
    '',
    'Settings (environment): `BENCH_REPEATS`, `BENCH_WARMUP`, `BENCH_SEQUENTIAL`, `BENCH_CONCURRENCY`,',
    '`BENCH_DURATION_MS`, `BENCH_PARTS` (roundtrip,initialize,memory,oauth,scale,replicas), `BENCH_INIT_SAMPLES`,',
    '`BENCH_COLD_USERS`, `BENCH_FIRST_CALL_DELAY_MS`, `BENCH_MEMORY_SESSIONS`, `BENCH_MEMORY_USERS`, `BENCH_OAUTH_CONCURRENCY`,',
    '`BENCH_OAUTH_DURATION_MS`, `BENCH_CODE_EXCHANGES`, `BENCH_SCALE_USERS`, `BENCH_SCALE_DURATION_MS`,',
    '`BENCH_REPLICAS_USERS`, `BENCH_REPLICAS_DURATION_MS`,',
    "`BENCH_BROKER_LOG_LEVEL` (default info), `BENCH_BROKER_ROOT` (measure another checkout's broker),",
    '`BENCH_BROKER_NODE_ARGS` (extra node flags for the broker, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),',
    "`BENCH_BASELINE_ROOT` (another checkout's broker measured beside this one, as `broker-baseline`), `BENCH_DRIVERS` (sdk,lean,wrk), `BENCH_TARGETS` (floor,broker,broker-pg,supergateway,relay,mcp-proxy), `BENCH_SERVERS` (everything,standin).",
    "The wrk driver needs Debian's `wrk` (`make bench` installs it when run as root); `node bench/profile.ts 64 8000`",
    'profiles the broker under wrk (`BENCH_PROFILE_DRIVER=lean` for the lean driver).',
    '',
    `This run: ${c.repeats} repeat(s); ${c.warmupCalls} warm-up calls, ${c.sequentialCalls} sequential calls for latency, then ${c.durationMs / 1000} s at each concurrency of ${c.concurrencies.join(', ')}.`,
    '',
    '## Targets',
    '',
    ...mdTable(
      ['target', 'measured', 'status', 'note'],
      s.verdicts.map((v) => [v.target, v.figure, v.status, v.note ?? '']),
      true,
    ),
    '',
    '## 1. Tool-call round trip',
    '',
    'One stdio MCP server reached four ways: directly over stdio (the floor, no HTTP), through the broker',
    '(bearer auth and all), through `supergateway --stateful` and through `mcp-proxy`, each wrapping the',
    'same server. Two load drivers: the official SDK v1 client inside the bench process (what an SDK',
    'client sees, its own cost included), and a lean driver in its own process sending pre-built',
    'JSON-RPC `tools/call` requests over keep-alive HTTP (raw JSON lines on stdio for the floor), which',
    'reads every response whole and checks it is the expected result. p50/p95/p99 are from the',
    'sequential calls (concurrency 1); calls/s from the fixed-duration runs; CPU per call from',
    '`/proc/<pid>/stat` of the front process (the gateway) and of its children (the wrapped server).',
    '',
  ];
  for (const srv of s.servers) {
    for (const d of DRIVERS) {
      out.push(`### ${srv.label} (\`${srv.tool}\`) — ${DRIVER_TITLE[d]}`, '');
      const { head, rows } = pathRows(srv.drivers[d], c.concurrencies);
      out.push(...mdTable(head, rows), '');
      for (const l of ratioLines(srv, d)) out.push(`- ${l}`);
      const noisy = srv.drivers[d].flatMap((p) =>
        p.conc
          .filter((k) => k.callsPerSecSpread > 0.2)
          .map((k) => `${p.target} c=${k.concurrency} (${pct(k.callsPerSecSpread)})`),
      );
      if (noisy.length > 0) out.push(`- Spread between repeats above 20%: ${noisy.join(', ')}.`);
      const failures = srv.drivers[d].flatMap((p) =>
        p.failures.filter((f) => f.includes(`${d}:`) || f.includes('start:')).map((f) => `${p.target} ${f}`),
      );
      if (failures.length > 0) out.push(`- Failed repeats: ${failures.join('; ')}.`);
      out.push('');
    }
  }
  out.push('## 2. Initialize', '');
  const i = results.initialize;
  if (!i) out.push('Not run.', '');
  else if (!i.available || !i.warm || !i.cold)
    out.push(`Skipped: ${i.available ? 'no data' : i.reason}.`, '');
  else
    out.push(
      'One `initialize` round trip through the broker for a user whose child is already running (no spawn),',
      'and for users with no child yet (spawn of the stand-in + its handshake), lean driver.',
      '',
      ...latencyTable('user', [
        ['warm (child running)', i.warm],
        ['cold (spawn + handshake)', i.cold],
      ]),
      '',
    );
  if (i?.available && i.firstCallCold && i.firstCallPrewarmed)
    out.push(
      `A user's first tool call after signing in: ${results.config.firstCallDelayMs} ms after the token response (a client's`,
      'redirect, discovery and connection take about that long; `BENCH_FIRST_CALL_DELAY_MS`), timed from',
      '`initialize` to the result of `notifications/initialized` + one `tools/call`, each user once.',
      'Cold: the call starts the child. Prewarmed (`BROKER_CHILD_PREWARM`, the default): the child was',
      "started when the sign-in finished at the broker's callback. The child is the forgejo-mcp stand-in",
      '(a Node process); the real forgejo-mcp could not be built on this machine (issue 11).',
      '',
      ...latencyTable('first call after sign-in', [
        ['cold (the call starts the child)', i.firstCallCold],
        ['prewarmed at sign-in', i.firstCallPrewarmed],
      ]),
      '',
    );
  out.push('## 3. Memory', '');
  if (!results.memory) out.push('Not run.', '');
  else if (!s.memory)
    out.push(`Skipped: ${results.memory.available ? 'no data' : results.memory.reason}.`, '');
  else
    out.push(
      `The broker process only (its children excluded), ${results.memory.users} users; heap is live heap after a full GC`,
      '(the broker runs with `--expose-gc` and a preloaded probe that answers over IPC).',
      '',
      ...mdTable(
        ['idle sessions', 'live children', 'RSS', 'heap used', 'heap total', 'external'],
        s.memory.points.map((p) => [
          String(p.sessions),
          String(p.children),
          mib(p.rss),
          mib(p.heapUsed),
          mib(p.heapTotal),
          mib(p.external),
        ]),
      ),
      '',
      `- Per idle session: ${kib(s.memory.perIdleSessionHeap)} heap, ${kib(s.memory.perIdleSessionRss)} RSS.`,
      `- Per live child, in the broker (the child's own memory excluded): ${kib(s.memory.perChildHeap)} heap, ${kib(s.memory.perChildRss)} RSS.`,
      '',
    );
  out.push('## 4. OAuth', '');
  const o = results.oauth;
  if (!o) out.push('Not run.', '');
  else {
    const rows: string[][] = [];
    const add = (name: string, k?: ConcSummary) => {
      if (k)
        rows.push([
          name,
          rate(k.callsPerSec),
          ms(k.p50),
          ms(k.p99),
          ms(k.targetCpuMs),
          rate(1000 / k.targetCpuMs),
          `${k.targetCores.toFixed(2)} / ${k.machineCores.toFixed(2)}`,
          String(k.errors),
        ]);
    };
    add('`GET /healthz` (framework floor)', s.oauth?.healthz);
    add('refresh_token grant', s.oauth?.refresh);
    add('authorization_code grant', s.oauth?.exchange);
    out.push(
      `Lean driver at concurrency ${o.concurrency}, ${c.oauthDurationMs / 1000} s windows; each refresh worker follows its own rotation chain; codes are made through the full browser flow just before the exchange run.`,
      '',
      ...mdTable(
        [
          'request',
          'per second',
          'p50 ms',
          'p99 ms',
          'broker CPU ms each',
          'one-core ceiling/s',
          'cores: broker / machine',
          'errors',
        ],
        rows,
      ),
      '',
      'The one-core ceiling (1000 / broker CPU ms per request) is the rate one fully available core would',
      'give the broker’s event loop; it moves far less with the machine’s other load than the measured rate.',
      '',
    );
    if (!o.available) out.push(`Token endpoints skipped: ${o.reason}.`, '');
  }
  out.push('## 5. Scale', '');
  const sc = results.scale;
  if (!sc) out.push('Not run.', '');
  else if (!sc.available) out.push(`Skipped: ${sc.reason}.`, '');
  else
    out.push(
      'N users at once, each on their own session with their own stand-in child, one call in flight each, lean driver.',
      '',
      ...mdTable(
        ['users', 'calls/s', 'errors', 'p50 ms', 'p99 ms', 'broker CPU', 'children CPU', 'broker RSS'],
        scaleRows(results),
      ),
      '',
      ...scaleNotes(results).map((l) => `- ${l}.`),
      scaleReading(results),
      '',
    );
  out.push(...replicasMarkdown(results, m.cores));
  out.push(
    ...analysis(),
    '## Raw numbers',
    '',
    '`docs/performance.json` holds every run behind this page (`bench/results/latest.json` is the copy',
    'each `make bench` leaves for local comparison).',
    '',
  );
  return out.join('\n');
}

/**
 * The hand-written reading of the figures (what bounds each miss, what the profile shows), kept in
 * bench/analysis.md so a regenerated page keeps it; it is dated, the tables above are not.
 */
function analysis(): string[] {
  const path = join(REPO_ROOT, 'bench', 'analysis.md');
  if (!existsSync(path)) return [];
  return [readFileSync(path, 'utf8').trimEnd(), ''];
}

/** Writes the page, the raw JSON beside it (docs/performance.json) and, given a path, a copy there. */
export function writeReports(results: BenchResults, jsonPath: string | undefined, docPath: string): string {
  const s = summarize(results);
  const json = `${JSON.stringify(results, null, 2)}\n`;
  if (jsonPath) writeFileSync(jsonPath, json);
  writeFileSync(docPath.replace(/\.md$/, '.json'), json);
  writeFileSync(docPath, renderMarkdown(results, s));
  return renderText(results, s);
}

if (import.meta.main) {
  const jsonPath = process.argv[2] ?? join(REPO_ROOT, 'docs/performance.json');
  const results = JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchResults;
  process.stdout.write(writeReports(results, undefined, join(REPO_ROOT, 'docs/performance.md')));
}
