import { stripVTControlCharacters } from 'node:util';
import type { Logger } from '../log/log.ts';
import { scrubText } from '../log/redact.ts';
import { LineSplitter } from './line-splitter.ts';

export type StderrLimits = {
  /** Longer lines are cut to this many bytes (and marked as cut). */
  maxLineBytes: number;
  /** Sustained rate of lines written to the log; the rest are counted and summarised. */
  linesPerSecond: number;
  /** Lines that may be logged in a burst above the sustained rate. */
  burst: number;
  /** Last lines kept (whether logged or suppressed) to explain an early exit. */
  tailLines: number;
};

export const DEFAULT_STDERR_LIMITS: StderrLimits = {
  maxLineBytes: 4096,
  linesPerSecond: 20,
  burst: 200,
  tailLines: 20,
};

// C0 controls other than tab, and DEL: what is left of a terminal dialect after ANSI sequences
// are stripped (bare '\r' progress updates, bells, backspaces) has no place in a JSON log line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f]/g;

/**
 * Turns a child's stderr into log lines: one log record per line with the child's name, terminal
 * colours stripped, long lines cut, and a token bucket so a chatty child cannot flood the broker's
 * log (one "N lines suppressed" record stands in for what was dropped). The last lines are kept in
 * a ring whatever the rate limit did, because they are what explains a child that died at start.
 * Every line is scrubbed first: the child's own secrets (its Forgejo token) and anything shaped like
 * a token never reach the log, nor the tail.
 */
export class StderrDrain {
  readonly #log: Logger;
  readonly #name: string;
  readonly #limits: StderrLimits;
  readonly #now: () => number;
  readonly #splitter: LineSplitter;
  readonly #secrets: readonly string[];
  readonly #ring: string[] = [];
  #ringNext = 0;
  #tokens: number;
  #refilledAt: number;
  #suppressed = 0;
  #lines = 0;

  constructor(opts: {
    log: Logger;
    name: string;
    limits?: Partial<StderrLimits>;
    now?: () => number;
    /** Values to censor wherever they appear (the child's token). */
    secrets?: readonly string[];
  }) {
    this.#log = opts.log;
    this.#secrets = opts.secrets ?? [];
    this.#name = opts.name;
    this.#limits = { ...DEFAULT_STDERR_LIMITS, ...opts.limits };
    this.#now = opts.now ?? (() => performance.now());
    this.#tokens = this.#limits.burst;
    this.#refilledAt = this.#now();
    this.#splitter = new LineSplitter(this.#limits.maxLineBytes, (head, total, truncated) =>
      this.#line(head, total, truncated),
    );
  }

  push(chunk: Buffer): void {
    this.#splitter.push(chunk);
  }

  /** End of stream: flush a last unterminated line and the pending suppression summary. */
  end(): void {
    this.#splitter.end();
    this.#flushSuppressed();
  }

  /** The last lines, oldest first. */
  tail(): string[] {
    const n = this.#ring.length;
    if (n < this.#limits.tailLines) return [...this.#ring];
    return [...this.#ring.slice(this.#ringNext), ...this.#ring.slice(0, this.#ringNext)];
  }

  /** Lines seen in total (logged or suppressed). */
  get lines(): number {
    return this.#lines;
  }

  #line(head: Buffer, total: number, truncated: boolean): void {
    const raw = stripVTControlCharacters(head.toString('utf8')).replace(CONTROL_CHARS, '').trimEnd();
    if (raw.length === 0) return;
    let text = scrubText(raw, this.#secrets);
    if (truncated) text += ` [cut: line was ${total} bytes]`;
    this.#lines++;
    this.#remember(text);
    if (!this.#take()) {
      this.#suppressed++;
      return;
    }
    this.#flushSuppressed();
    this.#log.info({ child: this.#name, line: text }, 'child stderr');
  }

  #remember(text: string): void {
    if (this.#limits.tailLines <= 0) return;
    if (this.#ring.length < this.#limits.tailLines) {
      this.#ring.push(text);
      return;
    }
    this.#ring[this.#ringNext] = text;
    this.#ringNext = (this.#ringNext + 1) % this.#limits.tailLines;
  }

  #take(): boolean {
    const now = this.#now();
    const { burst, linesPerSecond } = this.#limits;
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) / 1000) * linesPerSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #flushSuppressed(): void {
    if (this.#suppressed === 0) return;
    this.#log.warn({ child: this.#name, suppressed: this.#suppressed }, 'child stderr lines suppressed');
    this.#suppressed = 0;
  }
}
