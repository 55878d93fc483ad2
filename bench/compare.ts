// Before/after of two saved runs (e.g. the broker of two checkouts via BENCH_BROKER_ROOT), in the
// report's own terms: the broker's rows and ratios from each run, side by side.
// Usage: node bench/compare.ts before.json after.json
import { readFileSync } from 'node:fs';
import type { BenchResults } from './results.ts';
import { type ConcSummary, type PathSummary, summarize } from './summary.ts';

const [beforePath, afterPath] = process.argv.slice(2);
if (!beforePath || !afterPath) throw new Error('usage: node bench/compare.ts before.json after.json');
const load = (p: string) => summarize(JSON.parse(readFileSync(p, 'utf8')) as BenchResults);
const before = load(beforePath);
const after = load(afterPath);

const f = (v: number | undefined, digits = 2) =>
  v === undefined || !Number.isFinite(v)
    ? '–'
    : v >= 100
      ? Math.round(v).toLocaleString('en')
      : v.toFixed(digits);
const top = (p: PathSummary | undefined): ConcSummary | undefined => p?.conc[p.conc.length - 1];

const rows: string[][] = [];
for (const [si, s] of after.servers.entries()) {
  for (const d of ['sdk', 'lean'] as const) {
    for (const [label, run] of [
      ['before', before.servers[si]],
      ['after', s],
    ] as const) {
      if (!run) continue;
      const broker = run.drivers[d].find((p) => p.target === 'broker');
      const r = run.ratios[d];
      rows.push([
        `${s.server} ${d}`,
        label,
        f(broker?.seq.p50, 3),
        `+${f(r.brokerAddedP50Ms, 3)}`,
        `+${f(r.relayAddedP50Ms, 3)}`,
        f(top(broker)?.callsPerSec),
        `${f(r.brokerOverBetterPeerRate)}×`,
        f(top(broker)?.targetCpuMs, 3),
        f(top(broker)?.childrenCpuMs, 3),
      ]);
    }
  }
}
const head = [
  'server, driver',
  'broker',
  'p50 ms (c=1)',
  'over floor',
  'relay over floor',
  `calls/s c=${after.servers[0]?.ratios.lean.topConcurrency ?? ''}`,
  'over better peer',
  'broker CPU ms/call',
  'child CPU ms/call',
];
const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
for (const [label, s] of [
  ['before', before],
  ['after', after],
] as const) {
  const o = s.oauth;
  if (o)
    lines.push(
      '',
      `${label}: OAuth at c=16: /healthz ${f(o.healthz.callsPerSec)}/s (${f(o.healthz.targetCpuMs, 3)} CPU ms each); refresh ${f(o.refresh?.callsPerSec)}/s (${f(o.refresh?.targetCpuMs, 3)} CPU ms each); code exchange ${f(o.exchange?.callsPerSec)}/s (${f(o.exchange?.targetCpuMs, 3)} CPU ms each)`,
    );
}
console.log(lines.join('\n'));
