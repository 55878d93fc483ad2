// The sample Grafana dashboard is valid JSON and queries only metrics the broker exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { registry } from '../../src/metrics/metrics.ts';

const DASHBOARD = join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'forgejo-mcp-broker.json');

it('every metric a dashboard panel queries is one the broker exports', async () => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.ok(d.panels.length >= 10);
  const exported = new Set(
    (await registry.getMetricsAsJSON()).flatMap((m) =>
      String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
    ),
  );
  // The gauges read from a running broker are registered when it starts; they are named here.
  for (const g of [
    'fmb_children_live',
    'fmb_sessions_open',
    'fmb_streams_open',
    'fmb_pending_authorizations',
  ])
    exported.add(g);
  for (const p of d.panels) {
    for (const t of p.targets) {
      const names = t.expr.match(/\bfmb_[a-z0-9_]+/g) ?? [];
      assert.ok(names.length > 0, `${p.title}: no broker metric in ${t.expr}`);
      for (const n of names) assert.ok(exported.has(n), `${p.title}: ${n} is not exported`);
    }
  }
});
