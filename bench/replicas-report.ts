// The replicas part of the report (section 6 of docs/performance.md and its stdout lines), apart
// from bench/report.ts so the part and its reading stay together.
import type { BenchResults, ReplicasLevel } from './results.ts';

const rate = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) : '–');

function rows(levels: ReplicasLevel[]): string[][] {
  return levels.map((l) => [
    String(l.replicas),
    l.usersOn.join(' + '),
    rate(l.run.callsPerSec),
    String(l.run.errors),
    ms(l.run.latency.p50),
    ms(l.run.latency.p99),
    l.run.cpu.machineCores.toFixed(2),
  ]);
}

const HEAD = ['replicas', 'users on each', 'calls/s', 'errors', 'p50 ms', 'p99 ms', 'machine cores busy'];

/** Two versus one: the ratio of calls/s, or undefined when either window is missing. */
function ratio(levels: ReplicasLevel[]): number | undefined {
  const one = levels.find((l) => l.replicas === 1)?.run.callsPerSec;
  const two = levels.find((l) => l.replicas === 2)?.run.callsPerSec;
  return one && two ? two / one : undefined;
}

export function replicasText(results: BenchResults): string[] {
  const r = results.replicas;
  if (!r) return [];
  if (!r.available) return ['', `Replicas: skipped: ${r.reason}`];
  const levels = r.levels ?? [];
  const k = ratio(levels);
  return [
    '',
    `Replicas behind Caddy (${r.users} users, one call in flight each, lean driver):`,
    ...rows(levels).map((row) => `  ${row.map((c, i) => `${HEAD[i]} ${c}`).join(', ')}`),
    ...(k ? [`  two replicas / one: ${k.toFixed(2)}×`] : []),
  ];
}

export function replicasMarkdown(results: BenchResults, cores: number): string[] {
  const out = ['## 6. Replicas behind Caddy', ''];
  const r = results.replicas;
  if (!r) return [...out, 'Not run.', ''];
  if (!r.available) return [...out, `Skipped: ${r.reason}.`, ''];
  const levels = r.levels ?? [];
  const k = ratio(levels);
  return [
    ...out,
    `Debian's Caddy with \`deploy/compose-ha/Caddyfile\` (plain HTTP on loopback: the lean driver speaks`,
    'HTTP only, and TLS costs Caddy the same for one replica or two) in front of broker replicas on one',
    `PostgreSQL database; ${r.users} users, each one call in flight on their own 2025 session and child.`,
    'The same Caddy, users and tokens for both windows: in the first the second upstream is down and',
    'Caddy’s health check keeps it out; then it is started and let in. "Users on each" is the',
    'Authorization hash’s split.',
    '',
    '| ' + HEAD.join(' | ') + ' |',
    '|' + HEAD.map(() => '---').join('|') + '|',
    ...rows(levels).map((row) => `| ${row.join(' | ')} |`),
    '',
    ...(k
      ? [`Two replicas give ${k.toFixed(2)}× the calls/s of one on this ${cores}-core machine.`, '']
      : []),
    `What ${cores} cores can show: that a second replica takes its share of the users (the split above),`,
    'that Caddy in front costs no errors, and what the whole stack (Caddy, brokers, children, PostgreSQL',
    'and the load driver) does when it shares the same cores. What they cannot show is scaling: every',
    'process here competes for the same two cores, so a second replica adds a second event loop but no',
    'CPU, and the figure stays near the one-replica rate (or below it: two processes, two sets of',
    'children and twice the PostgreSQL connections to schedule). Scaling out needs the replicas on',
    'machines of their own; then each replica’s own ceiling (section 1) is what adds up, with',
    'PostgreSQL and Caddy shared.',
    '',
  ];
}
