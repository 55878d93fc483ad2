/** Why a child is gone, as the supervisor saw it. */
export type ExitInfo = {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it, or null when it exited with a code. */
  signal: NodeJS.Signals | null;
  /** Milliseconds from spawn to exit. */
  uptimeMs: number;
  /** stop() had been asked for before it went. */
  stopped: boolean;
  /** It went by itself (not stopped) within the early-exit window: a startup failure. */
  early: boolean;
  /** Last stderr lines (ANSI stripped, cut), oldest first. */
  stderrTail: string[];
};

/** The child could not be started at all; nothing was left running and no pipe left open. */
export class SpawnError extends Error {
  override readonly name = 'SpawnError';
  /** errno name (ENOENT, EACCES, ...) or EINVAL for a spec refused before spawning. */
  readonly code: string;
  readonly command: string;
  readonly cwd: string;

  constructor(opts: { command: string; cwd: string; code: string; reason: string; cause?: unknown }) {
    super(
      `cannot start ${JSON.stringify(opts.command)} in ${JSON.stringify(opts.cwd)}: ${opts.reason} (${opts.code})`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.code = opts.code;
    this.command = opts.command;
    this.cwd = opts.cwd;
  }
}

export function describeExit(info: Pick<ExitInfo, 'code' | 'signal'>): string {
  if (info.signal) return `killed by ${info.signal}`;
  return `exited with code ${info.code}`;
}

/** The child is gone (or was stopped) before it was stable: carries why, for the caller to report. */
export class ChildExitError extends Error {
  override readonly name = 'ChildExitError';
  readonly child: string;
  readonly info: ExitInfo;

  constructor(child: string, command: string, info: ExitInfo) {
    const how = info.stopped ? 'was stopped' : describeExit(info);
    const when = info.early ? ` ${Math.round(info.uptimeMs)} ms after start` : '';
    super(`child ${JSON.stringify(child)} (${command}) ${how}${when}`);
    this.child = child;
    this.info = info;
  }
}

/** A write to a child that has exited, is stopping, or whose stdin broke. */
export class ChildGoneError extends Error {
  override readonly name = 'ChildGoneError';
  readonly child: string;

  constructor(child: string, reason: string, cause?: unknown) {
    super(
      `cannot write to child ${JSON.stringify(child)}: ${reason}`,
      cause === undefined ? undefined : { cause },
    );
    this.child = child;
  }
}

/** A write that would push the bytes queued for a child's stdin past the bound. */
export class StdinFullError extends Error {
  override readonly name = 'StdinFullError';
  readonly child: string;
  readonly queuedBytes: number;
  readonly writeBytes: number;
  readonly limitBytes: number;

  constructor(child: string, queuedBytes: number, writeBytes: number, limitBytes: number) {
    super(
      `cannot write ${writeBytes} bytes to child ${JSON.stringify(child)}: ${queuedBytes} bytes already queued, limit ${limitBytes}`,
    );
    this.child = child;
    this.queuedBytes = queuedBytes;
    this.writeBytes = writeBytes;
    this.limitBytes = limitBytes;
  }
}
