import { type DestinationStream, type Logger, pino } from 'pino';
import { redactSecrets } from './redact.ts';

export type { Logger };

/** pino's error serializer for errors; objects redactSecrets already serialized pass unchanged. */
function serializeError(value: unknown): unknown {
  return value instanceof Error ? pino.stdSerializers.err(value) : value;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => redactSecrets(obj),
      },
      serializers: { err: serializeError },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
  // pino skips formatters for child bindings; every child inherits this own property of the root
  // (children are created with the root as prototype), so bindings are censored at any depth.
  const childOf = logger.child;
  logger.child = function child(this: Logger, bindings, options) {
    return childOf.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return logger;
}
