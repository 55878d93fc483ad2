// Summarizes a V8 .cpuprofile: where the sampled time went, by function and by package, self time
// only (time in a function's own code), which is what points at a fix.
import { readFileSync } from 'node:fs';

type Frame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: Frame; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

function where(f: Frame): string {
  return f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench|emulator)\//, '$1/');
}

function packageOf(f: Frame): string {
  if (!f.url) return f.functionName;
  const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f.url);
  if (m?.[1]) return m[1];
  if (f.url.startsWith('node:')) return f.url;
  return where(f).split('/').slice(0, 2).join('/');
}

export function summarizeProfile(path: string, top = 25): string {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const f = byId.get(id)?.callFrame;
    if (!f) return;
    total += dt;
    const fn = `${f.functionName || '(anonymous)'} ${where(f)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
    byPackage.set(packageOf(f), (byPackage.get(packageOf(f)) ?? 0) + dt);
  });
  const list = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  return [
    `${path}: ${(total / 1e6).toFixed(1)} s sampled`,
    'self time by package:',
    ...list(byPackage),
    'self time by function:',
    ...list(byFunction),
  ].join('\n');
}
