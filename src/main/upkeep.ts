// The broker's background care of its database: replaying other processes' revocations, writing
// grants' last use, re-sealing values under a new key, and keeping the table of live children.
import type { Logger } from '../log/log.ts';
import { metrics } from '../metrics/metrics.ts';
import type { Spawner } from '../pool/pool.ts';
import { processAlive } from '../store/processes.ts';
import type { BrokerStore } from '../store/store.ts';

/** The admin command promises that a revocation reaches the running broker within a second. */
const CHANGE_POLL_MS = 250;
const USAGE_FLUSH_MS = 30_000;
/** Small batches keep each transaction short while the broker serves. */
const RESEAL_BATCH = 100;
const RESEAL_EVERY_MS = 200;

const failed = (log: Logger, what: string) => (e: Error) => log.error({ err: { message: e.message } }, what);

export function startUpkeep(store: BrokerStore, log: Logger): { stop(): void } {
  const stopWatching = store.watchChanges(CHANGE_POLL_MS);
  const usage = setInterval(
    () => store.flushUsage().catch(failed(log, 'writing last use failed')),
    USAGE_FLUSH_MS,
  );
  usage.unref();
  let stopped = false;
  let reseal: NodeJS.Timeout | undefined;
  const startResealing = async () => {
    await store.ready();
    await forgetDeadBrokersChildren(store);
    const sealed = await store.sealedKeyCounts();
    if (stopped) return;
    if (!store.keyRotationPending && Object.keys(sealed.counts).every((k) => k === sealed.current)) return;
    log.info({ key: sealed.current }, 'key rotation: re-sealing stored Forgejo tokens under the current key');
    let resealed = 0;
    let busy = false;
    reseal = setInterval(() => {
      if (busy) return;
      busy = true;
      store.resealBatch(RESEAL_BATCH).then(
        (n) => {
          busy = false;
          resealed += n;
          if (n === 0 && !store.keyRotationPending) {
            clearInterval(reseal);
            log.info(
              { values: resealed, key: sealed.current },
              'key rotation: every value is sealed under the current key; previous keys may be removed',
            );
          }
        },
        (e: Error) => {
          clearInterval(reseal);
          failed(log, 'key rotation: re-sealing stopped')(e);
        },
      );
    }, RESEAL_EVERY_MS);
    reseal.unref();
  };
  startResealing().catch((e: Error) => {
    if (!stopped) failed(log, 'upkeep failed')(e);
  });
  return {
    stop() {
      stopped = true;
      stopWatching();
      clearInterval(usage);
      clearInterval(reseal);
    },
  };
}

/**
 * A broker killed outright (SIGKILL, the OOM killer) leaves its rows in the live-children table;
 * its children themselves end with it (their stdin closes; bubblewrap's --die-with-parent). So a
 * broker starting clears the rows of every broker process on this host that is no longer running,
 * and its own pid's (an earlier run's). Other replicas' rows on the host are left alone.
 */
async function forgetDeadBrokersChildren(store: BrokerStore): Promise<void> {
  for (const pid of await store.childBrokerPids()) {
    if (pid === process.pid || !processAlive(pid)) await store.forgetChildrenOf(pid);
  }
}

/** Records each child in the database while it runs, for `admin children`. */
export function recordingChildren(spawner: Spawner, store: BrokerStore, log: Logger): Spawner {
  return {
    async start(spec) {
      const child = await spawner.start(spec);
      store
        .recordChild({ pid: child.pid, brokerPid: process.pid, login: spec.name, startedAt: Date.now() })
        .catch(failed(log, 'recording a child failed'));
      metrics.childrenStarted.inc();
      void child.exited.then((exit) => {
        store.forgetChild(child.pid).catch(failed(log, 'forgetting a child failed'));
        metrics.childrenExited.inc({ cause: exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}` });
      });
      return child;
    },
  };
}
