// Waiting in tests for what another process or a timer brings about: one bounded polling loop, and
// the process liveness checks most of those waits are about.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export type WaitOptions = {
  /** Give up after this long; default 5 s. */
  timeoutMs?: number;
  /** Pause between checks; default 20 ms (more where a check is costly, such as a /proc scan). */
  intervalMs?: number;
};

/** What a timeout error says was awaited; a function is asked only on timeout (for current values). */
export type WaitingFor = { what: string | (() => string) };

const TIMEOUT_MS = 5000;
const INTERVAL_MS = 20;

async function poll<T>(probe: () => T | undefined, opts: WaitOptions): Promise<T | undefined> {
  const deadline = Date.now() + (opts.timeoutMs ?? TIMEOUT_MS);
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await sleep(opts.intervalMs ?? INTERVAL_MS);
  }
}

/** Polls `cond` until it holds or time is up; whether it held, for a caller that reports the failure itself. */
export async function eventually(cond: () => boolean, opts: WaitOptions = {}): Promise<boolean> {
  return (await poll(() => (cond() ? true : undefined), opts)) === true;
}

/** Polls `probe` until it returns a value (not undefined) and resolves with it; throws on timeout. */
export async function waitForValue<T>(
  probe: () => T | undefined,
  opts: WaitOptions & WaitingFor,
): Promise<T> {
  const value = await poll(probe, opts);
  if (value === undefined) {
    const what = typeof opts.what === 'function' ? opts.what() : opts.what;
    throw new Error(`timed out after ${opts.timeoutMs ?? TIMEOUT_MS} ms waiting for ${what}`);
  }
  return value;
}

/** Polls `cond` until it holds; throws `timed out after … ms waiting for <what>` if it does not in time. */
export async function waitFor(cond: () => boolean, opts: WaitOptions & WaitingFor): Promise<void> {
  await waitForValue(() => (cond() ? true : undefined), opts);
}

/**
 * Whether process `pid` exists (a zombie not yet reaped counts). Tests run their processes as their
 * own user, so only "no such process" means gone; any other error is a bug in the test and thrown.
 */
export function pidAlive(pid: number): boolean {
  return signalable(pid);
}

/** Whether any process is left in process group `pgid` (a child that leads its group, and what it started). */
export function groupAlive(pgid: number): boolean {
  return signalable(-pgid);
}

function signalable(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/** As `waitFor`, for a check that must ask something over the network or another process. */
export async function waitForAsync(
  cond: () => Promise<boolean>,
  opts: WaitOptions & WaitingFor,
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? TIMEOUT_MS);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) {
      const what = typeof opts.what === 'function' ? opts.what() : opts.what;
      throw new Error(`timed out after ${opts.timeoutMs ?? TIMEOUT_MS} ms waiting for ${what}`);
    }
    await sleep(opts.intervalMs ?? INTERVAL_MS);
  }
}

/** Pids of every other process whose environment or command line mentions `marker` (a folder, a port). */
export function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'utf8');
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (env.includes(marker) || cmd.includes(marker)) found.push(Number(d));
    } catch {}
  }
  return found;
}
