// What the figures were measured on, for the report: they mean little without it.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release } from 'node:os';

export type Machine = {
  cpuModel: string;
  cores: number;
  memTotalMiB: number;
  kernel: string;
  node: string;
  loadAvgAtStart: number[];
  date: string;
};

function meminfoKiB(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function describeMachine(): Machine {
  return {
    cpuModel: cpuModel(),
    cores: availableParallelism(),
    memTotalMiB: Math.round(meminfoKiB('MemTotal') / 1024),
    kernel: release(),
    node: process.version,
    loadAvgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    date: new Date().toISOString(),
  };
}
