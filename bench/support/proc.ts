// Process accounting from /proc (Linux): CPU time and memory of the processes under test, read from
// outside so the measurement costs the target nothing.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

type Stat = { ppid: number; cpuMs: number; rssBytes: number };

function readStat(pid: number): Stat | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  // After the name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21, pages)
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return {
    ppid: Number(fields[1]),
    cpuMs: ((utime + stime) * 1000) / clockTicks(),
    rssBytes: Number(fields[21]) * 4096,
  };
}

/** User + system CPU time of one process in ms (0 if it is gone). */
export function cpuMs(pid: number): number {
  return readStat(pid)?.cpuMs ?? 0;
}

/** The process's descendants (children, grandchildren, ...), found by scanning /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Busy CPU time of the whole machine in ms (all cores; everything but idle and iowait). */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return (busy * 1000) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

export type CpuSnapshot = { at: number; targetMs: number; childrenMs: number; machineMs: number };

/**
 * CPU of the target process and of its descendants. Children that exit between two snapshots lose
 * their time, so windows are taken while the set of children is stable (warm targets).
 */
export function cpuSnapshot(pid: number): CpuSnapshot {
  let childrenMs = 0;
  for (const c of descendants(pid)) childrenMs += cpuMs(c);
  return { at: performance.now(), targetMs: cpuMs(pid), childrenMs, machineMs: machineBusyMs() };
}

export type CpuWindow = { wallMs: number; targetCpuMs: number; childrenCpuMs: number; machineCpuMs: number };

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuWindow {
  return {
    wallMs: b.at - a.at,
    targetCpuMs: b.targetMs - a.targetMs,
    childrenCpuMs: Math.max(0, b.childrenMs - a.childrenMs),
    machineCpuMs: b.machineMs - a.machineMs,
  };
}

/** Resident set size of one process in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  return readStat(pid)?.rssBytes ?? 0;
}
