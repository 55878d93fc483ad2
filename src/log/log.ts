import { type DestinationStream, type Logger, pino } from 'pino';
import { redactSecrets } from './redact.ts';

export type { Logger };

/** pino's error serializer for errors; objects redactSecrets already serialized pass unchanged. */
function serializeError(value: unknown): unknown {
  return value instanceof Error ? pino.stdSerializers.err(value) : value;
}

/**
 * stderr, batched: the lines of one turn of the event loop go out in one write when it ends, so a
 * busy broker makes one system call per turn instead of one per line, and nothing waits on the
 * terminal or journald in between. The write itself is sonic-boom's synchronous one (it retries a
 * full pipe), and whatever is queued is written when the process exits, even by process.exit.
 */
function stderrDestination(): DestinationStream {
  const out = pino.destination({ fd: 2, sync: true });
  let queued: string[] = [];
  const flush = () => {
    if (queued.length === 0) return;
    const text = queued.length === 1 ? (queued[0] as string) : queued.join('');
    queued = [];
    out.write(text);
  };
  process.once('exit', flush);
  return {
    write(line: string) {
      if (queued.push(line) === 1) setImmediate(flush);
    },
  };
}

/** pino's isoTime, formatted once per millisecond: a busy broker writes several lines in each. */
let stampedAt = -1;
let stamp = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redactSecrets(obj),
      },
      serializers: { err: serializeError },
    },
    destination ?? stderrDestination(),
  );
  // pino skips formatters for child bindings; every child inherits this own property of the root
  // (children are created with the root as prototype), so bindings are censored at any depth.
  const childOf = logger.child;
  logger.child = function child(this: Logger, bindings, options) {
    return childOf.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return logger;
}
