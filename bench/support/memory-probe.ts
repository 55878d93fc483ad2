// Preloaded into the broker under test (node --expose-gc --import this): answers a memory request on
// the IPC channel after a full collection, so heap figures are live data, not garbage.
type Gc = () => void;

if (process.send) {
  process.on('message', (m: unknown) => {
    if ((m as { type?: string } | null)?.type !== 'bench-memory') return;
    const gc = (globalThis as { gc?: Gc }).gc;
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    process.send?.({
      type: 'bench-memory',
      rss: u.rss,
      heapUsed: u.heapUsed,
      heapTotal: u.heapTotal,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
      gc: gc !== undefined,
    });
  });
  // The channel must not keep the broker alive on its own.
  process.channel?.unref();
}
