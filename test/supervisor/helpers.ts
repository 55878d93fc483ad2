import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../../src/log/log.ts';
import type { Child } from '../../src/supervisor/supervisor.ts';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');
export const NODE_CHILD = path.join(FIXTURES, 'node-child.ts');

export type LogRecord = Record<string, unknown> & { level: string; msg: string };

/** A real pino logger (the broker's) writing parsed records into an array. */
export function captureLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const log = createLogger('debug', {
    write(s: string) {
      for (const line of s.split('\n')) if (line) records.push(JSON.parse(line) as LogRecord);
    },
  });
  return { log, records };
}

/** Hands out a child's stdout lines (and oversize reports) as promises, in order. */
export function stdoutLines(child: Child): { next(): Promise<string>; oversizes: number[] } {
  const ready: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  const oversizes: number[] = [];
  child.onStdout({
    line(text) {
      const w = waiting.shift();
      if (w) w(text);
      else ready.push(text);
    },
    oversize(bytes) {
      oversizes.push(bytes);
    },
  });
  return {
    oversizes,
    next() {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

export type ProcStat = { pid: number; state: string; ppid: number; pgrp: number };

/** /proc/<pid>/stat, or undefined once the process is gone (and reaped). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0] ?? '?', ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

/** Dead: no longer in /proc, or a zombie waiting for someone else (init) to reap it. */
export function isDead(pid: number): boolean {
  const s = procStat(pid);
  return s === undefined || (s.state === 'Z' && s.ppid !== process.pid);
}

/** Zombie processes whose parent is this test process: children nobody reaped. */
export function ourZombies(): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s && s.state === 'Z' && s.ppid === process.pid) found.push(s.pid);
  }
  return found;
}

/** Live (non-zombie) members of a process group. */
export function groupMembers(pgrp: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s && s.pgrp === pgrp && s.state !== 'Z') found.push(s.pid);
  }
  return found;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function activeResources(): string[] {
  return [...process.getActiveResourcesInfo()].sort();
}
