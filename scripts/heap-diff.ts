// Compares two V8 heap snapshots (e.g. the soak's, SOAK_HEAP_SNAPSHOTS): objects counted and their
// own sizes summed by constructor (or node type for non-objects), then the biggest changes.
//   node scripts/heap-diff.ts before.heapsnapshot after.heapsnapshot [rows] [--retainers=Name]
// --retainers prints, for a few objects of that constructor in the second snapshot, the chain of
// what holds them (the first retainer at each step), to see where a growing kind of object lives.
import { readFileSync } from 'node:fs';

type Snapshot = {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
};

type Group = { count: number; size: number };

function load(path: string): Snapshot {
  return JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
}

function nodeName(s: Snapshot, i: number): string {
  const f = s.snapshot.meta.node_fields.length;
  const type = s.snapshot.meta.node_types[0][s.nodes[i * f] ?? 0] ?? '?';
  const name = s.strings[s.nodes[i * f + 1] ?? 0] ?? '?';
  if (type === 'object' || type === 'closure' || type === 'native')
    return `${type === 'object' ? '' : `${type}:`}${name}`;
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return '(string)';
  return `(${type})`;
}

function groups(s: Snapshot): Map<string, Group> {
  const f = s.snapshot.meta.node_fields.length;
  const sizeAt = s.snapshot.meta.node_fields.indexOf('self_size');
  const out = new Map<string, Group>();
  for (let i = 0; i < s.nodes.length / f; i++) {
    const key = nodeName(s, i);
    const g = out.get(key) ?? { count: 0, size: 0 };
    g.count++;
    g.size += s.nodes[i * f + sizeAt] ?? 0;
    out.set(key, g);
  }
  return out;
}

function totals(g: Map<string, Group>): Group {
  let count = 0;
  let size = 0;
  for (const v of g.values()) {
    count += v.count;
    size += v.size;
  }
  return { count, size };
}

function retainers(s: Snapshot, ctor: string, samples: number, depth: number): string[] {
  const nf = s.snapshot.meta.node_fields.length;
  const ef = s.snapshot.meta.edge_fields.length;
  const edgeCountAt = s.snapshot.meta.node_fields.indexOf('edge_count');
  const toAt = s.snapshot.meta.edge_fields.indexOf('to_node');
  const nameAt = s.snapshot.meta.edge_fields.indexOf('name_or_index');
  const typeAt = s.snapshot.meta.edge_fields.indexOf('type');
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const n = s.nodes.length / nf;
  // First non-weak retainer of each node, with the edge's name.
  const by = new Int32Array(n).fill(-1);
  const via: string[] = new Array(n);
  let e = 0;
  for (let i = 0; i < n; i++) {
    const count = s.nodes[i * nf + edgeCountAt] ?? 0;
    for (let k = 0; k < count; k++, e++) {
      const type = edgeTypes[s.edges[e * ef + typeAt] ?? 0];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = (s.edges[e * ef + toAt] ?? 0) / nf;
      if (by[to] !== -1) continue;
      by[to] = i;
      const raw = s.edges[e * ef + nameAt] ?? 0;
      via[to] = type === 'element' || type === 'hidden' ? `[${raw}]` : (s.strings[raw] ?? '?');
    }
  }
  const lines: string[] = [];
  for (let i = 0, found = 0; i < n && found < samples; i++) {
    if (nodeName(s, i) !== ctor) continue;
    found++;
    const chain: string[] = [ctor];
    let at = i;
    for (let d = 0; d < depth && by[at] !== -1; d++) {
      const from = by[at] as number;
      chain.push(`${via[at]} ← ${nodeName(s, from)}`);
      at = from;
    }
    lines.push(chain.join('  '));
  }
  return lines;
}

const [a, b, rowsArg] = process.argv.slice(2).filter((x) => !x.startsWith('--'));
if (!a || !b) {
  console.error(
    'usage: node scripts/heap-diff.ts before.heapsnapshot after.heapsnapshot [rows] [--retainers=Name]',
  );
  process.exit(2);
}
const rows = Number(rowsArg ?? 25);
const sa = load(a);
const sb = load(b);
const ga = groups(sa);
const gb = groups(sb);
const ta = totals(ga);
const tb = totals(gb);
const kb = (x: number) => (x / 1024).toFixed(0);
console.log(
  `objects ${ta.count} → ${tb.count} (${tb.count - ta.count >= 0 ? '+' : ''}${tb.count - ta.count}), self size ${kb(ta.size)} → ${kb(tb.size)} KB`,
);
const keys = new Set([...ga.keys(), ...gb.keys()]);
const diff = [...keys].map((k) => {
  const x = ga.get(k) ?? { count: 0, size: 0 };
  const y = gb.get(k) ?? { count: 0, size: 0 };
  return { k, c0: x.count, c1: y.count, dc: y.count - x.count, ds: y.size - x.size };
});
for (const [title, order] of [
  ['by size change', (p: (typeof diff)[number]) => Math.abs(p.ds)],
  ['by count change', (p: (typeof diff)[number]) => Math.abs(p.dc)],
] as const) {
  console.log(`\n${title}:  count before → after (Δ), Δ self size KB`);
  for (const d of diff.sort((p, q) => order(q) - order(p)).slice(0, rows))
    console.log(
      `  ${d.k.slice(0, 60).padEnd(60)} ${String(d.c0).padStart(7)} → ${String(d.c1).padStart(7)} (${d.dc >= 0 ? '+' : ''}${d.dc})  ${d.ds >= 0 ? '+' : ''}${kb(d.ds)}`,
    );
}
for (const arg of process.argv.slice(2)) {
  if (!arg.startsWith('--retainers=')) continue;
  const ctor = arg.slice('--retainers='.length);
  console.log(`\nretainers of ${ctor} in ${b}:`);
  for (const l of retainers(sb, ctor, 5, 8)) console.log(`  ${l}`);
}
