// The asking end of memory-probe.ts: a process that started a broker with the probe preloaded and an
// IPC channel asks it for its memory figures, one request at a time.
import type { ChildProcess } from 'node:child_process';

export const PROBE_MESSAGE = 'broker-memory';

/** What the probe answers, in bytes (spaces: V8 heap spaces by name). */
export type BrokerMemory = {
  rss: number;
  anon: number;
  file: number;
  brk: number;
  heapUsed: number;
  heapTotal: number;
  heapPhysical: number;
  external: number;
  arrayBuffers: number;
  mallocedMemory: number;
  spaces: Record<string, { size: number; used: number }>;
  /** whether two full collections ran first (`gc` asked and the broker has --expose-gc) */
  gc: boolean;
  snapshot?: string;
};

export type MemoryRequest = { gc?: boolean; snapshot?: string };

let serial = 0;
const queues = new WeakMap<ChildProcess, Promise<unknown>>();

/** One request at a time per broker (a snapshot takes seconds), each answer matched by id. */
export function askMemory(
  proc: ChildProcess,
  opts: MemoryRequest = {},
  timeoutMs = 60_000,
): Promise<BrokerMemory> {
  const asked = (queues.get(proc) ?? Promise.resolve()).then(() => askNow(proc, opts, timeoutMs));
  queues.set(
    proc,
    asked.catch(() => {}),
  );
  return asked;
}

function askNow(proc: ChildProcess, opts: MemoryRequest, timeoutMs: number): Promise<BrokerMemory> {
  const id = ++serial;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.off('message', onMessage);
      reject(new Error('the broker memory probe did not answer'));
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      const msg = m as ({ type?: string; id?: number } & BrokerMemory) | null;
      if (msg?.type !== PROBE_MESSAGE || msg.id !== id) return;
      clearTimeout(timer);
      proc.off('message', onMessage);
      resolve(msg);
    };
    proc.on('message', onMessage);
    proc.send({ type: PROBE_MESSAGE, id, ...opts });
  });
}
