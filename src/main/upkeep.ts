// The broker's background care of its database: replaying other processes' revocations, writing
// grants' last use, re-sealing values under a new key, and keeping the table of live children.
import type { Logger } from '../log/log.ts';
import { metrics } from '../metrics/metrics.ts';
import type { Spawner } from '../pool/pool.ts';
import type { Operations } from '../store/sqlite/operations.ts';
import type { SqliteStore } from '../store/sqlite/sqlite-store.ts';

/** The admin command promises that a revocation reaches the running broker within a second. */
const CHANGE_POLL_MS = 250;
const USAGE_FLUSH_MS = 30_000;
/** Small batches keep each transaction short while the broker serves. */
const RESEAL_BATCH = 100;
const RESEAL_EVERY_MS = 200;

export function startUpkeep(store: SqliteStore, operations: Operations, log: Logger): { stop(): void } {
  const stopWatching = store.watchChanges(CHANGE_POLL_MS);
  operations.forgetChildrenOf(process.pid);
  const usage = setInterval(() => store.flushUsage(), USAGE_FLUSH_MS);
  usage.unref();
  let resealed = 0;
  let reseal: NodeJS.Timeout | undefined;
  const sealed = store.sealedKeyCounts();
  if (store.keyRotationPending || Object.keys(sealed.counts).some((k) => k !== sealed.current)) {
    log.info({ key: sealed.current }, 'key rotation: re-sealing stored Forgejo tokens under the current key');
    reseal = setInterval(() => {
      try {
        const n = store.resealBatch(RESEAL_BATCH);
        resealed += n;
        if (n === 0 && !store.keyRotationPending) {
          clearInterval(reseal);
          log.info(
            { values: resealed, key: sealed.current },
            'key rotation: every value is sealed under the current key; previous keys may be removed',
          );
        }
      } catch (e) {
        clearInterval(reseal);
        log.error({ err: { message: (e as Error).message } }, 'key rotation: re-sealing stopped');
      }
    }, RESEAL_EVERY_MS);
    reseal.unref();
  }
  return {
    stop() {
      stopWatching();
      clearInterval(usage);
      clearInterval(reseal);
    },
  };
}

/** Records each child in the database while it runs, for `admin children`. */
export function recordingChildren(spawner: Spawner, operations: Operations): Spawner {
  return {
    async start(spec) {
      const child = await spawner.start(spec);
      operations.recordChild({
        pid: child.pid,
        brokerPid: process.pid,
        login: spec.name,
        startedAt: Date.now(),
      });
      metrics.childrenStarted.inc();
      void child.exited.then((exit) => {
        operations.forgetChild(child.pid);
        metrics.childrenExited.inc({ cause: exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}` });
      });
      return child;
    },
  };
}
