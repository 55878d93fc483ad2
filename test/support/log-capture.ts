import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log/log.ts';

/** A real pino logger whose JSON lines land in memory, for assertions on what would be logged. */
export function captureLogger(level = 'trace'): {
  log: Logger;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger(level, sink);
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, text };
}
