import type { Logger } from '../log/log.ts';

export type ShutdownStep = { name: string; run: (deadline: number) => Promise<void> };

/**
 * Runs the shutdown steps once, in order, each told the deadline it must finish by; a second
 * signal, or the deadline passing, exits at once.
 */
export function installSignalHandlers(opts: {
  log: Logger;
  graceMs: number;
  /** Before the steps: this long of serving on while `onDrain` has taken the replica out. */
  drainMs?: number;
  onDrain?: () => void;
  steps: ShutdownStep[];
  exit?: (code: number) => void;
}): { shutdown: (reason: string) => Promise<void> } {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping: Promise<void> | undefined;

  const shutdown = (reason: string): Promise<void> => {
    if (stopping) return stopping;
    const started = Date.now();
    const drainMs = opts.drainMs ?? 0;
    // The hard stop: if a step hangs past the grace (plus a little for closing), leave anyway.
    const hard = setTimeout(
      () => {
        opts.log.error({ reason, ms: Date.now() - started }, 'shutdown overran its grace; exiting');
        exit(1);
      },
      drainMs + opts.graceMs + 400,
    );
    hard.unref();
    stopping = (async () => {
      if (drainMs > 0) {
        opts.onDrain?.();
        opts.log.info({ reason, drainMs }, 'draining: /healthz answers 503, still serving');
        await new Promise((resolve) => setTimeout(resolve, drainMs));
      }
      const deadline = Date.now() + opts.graceMs;
      const failed: string[] = [];
      for (const step of opts.steps) {
        try {
          await step.run(deadline);
        } catch (e) {
          failed.push(`${step.name}: ${(e as Error).message}`);
        }
      }
      clearTimeout(hard);
      opts.log.info(
        { reason, ms: Date.now() - started, ...(failed.length ? { failed } : {}) },
        'broker stopped',
      );
      exit(failed.length ? 1 : 0);
    })();
    return stopping;
  };

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        opts.log.warn({ signal }, 'second signal; exiting at once');
        exit(130);
        return;
      }
      void shutdown(signal);
    });
  }
  return { shutdown };
}
