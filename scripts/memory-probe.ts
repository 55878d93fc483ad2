// Preloaded into a broker under measurement (node --expose-gc --import this; `make soak`, `make
// bench`): answers memory requests on the IPC channel, so heap that is live data can be told from
// garbage not yet collected, and the V8 heap from the rest of the RSS (native: malloc arenas, code,
// thread stacks, SQLite). memory-ask.ts is the other end.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { type MemoryRequest, PROBE_MESSAGE } from './memory-ask.ts';

type Gc = () => void;

type Request = MemoryRequest & { type: typeof PROBE_MESSAGE; id: number };

/**
 * Parts of the RSS, in bytes: anonymous (V8 heap pages, malloc) and file-backed (the node binary's
 * code, libraries), and of the anonymous part the brk heap, where glibc's main malloc arena lives.
 */
function rssParts(): { anon: number; file: number; brk: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
    const smaps = readFileSync('/proc/self/smaps', 'utf8');
    const at = smaps.indexOf(' [heap]\n');
    const brk = at < 0 ? 0 : Number(/\nRss:\s+(\d+)/.exec(smaps.slice(at))?.[1] ?? 0) * 1024;
    return { anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem'), brk };
  } catch {
    return { anon: 0, file: 0, brk: 0 };
  }
}

function answer(req: Request): Record<string, unknown> {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (req.gc && gc) {
    gc();
    gc();
  }
  const u = process.memoryUsage();
  const spaces: Record<string, { size: number; used: number }> = {};
  for (const s of getHeapSpaceStatistics())
    spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  const h = getHeapStatistics();
  const parts = rssParts();
  // Written after the figures were taken: making a snapshot allocates a lot outside the V8 heap.
  const snapshot = req.snapshot ? writeHeapSnapshot(req.snapshot) : undefined;
  return {
    type: PROBE_MESSAGE,
    id: req.id,
    gc: Boolean(req.gc && gc),
    rss: u.rss,
    ...parts,
    heapUsed: u.heapUsed,
    heapTotal: u.heapTotal,
    // Of heapTotal, the pages that are resident (a grown young generation is committed at once).
    heapPhysical: h.total_physical_size,
    external: u.external,
    arrayBuffers: u.arrayBuffers,
    mallocedMemory: h.malloced_memory,
    peakMallocedMemory: h.peak_malloced_memory,
    spaces,
    ...(snapshot ? { snapshot } : {}),
  };
}

if (process.send) {
  process.on('message', (m: unknown) => {
    const req = m as Request | null;
    if (req?.type !== PROBE_MESSAGE) return;
    process.send?.(answer(req));
  });
  // The channel must not keep the broker alive on its own.
  process.channel?.unref();
}
