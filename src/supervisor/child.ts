import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log/log.ts';
import { ChildExitError, ChildGoneError, type ExitInfo, SpawnError, StdinFullError } from './errors.ts';
import { type Isolation, NO_ISOLATION } from './isolation.ts';
import { LineSplitter, TAIL_BYTES } from './line-splitter.ts';
import { DEFAULT_STDERR_LIMITS, StderrDrain, type StderrLimits } from './stderr-drain.ts';

/** What to run. Nothing here is interpreted by a shell. */
export type ChildSpec = {
  /** Who the child is for (e.g. the Forgejo login): the prefix of its log lines and errors. */
  name: string;
  /** Executable path, or a bare name looked up in the child's own PATH. */
  command: string;
  args?: readonly string[];
  /** The child's whole environment: nothing of the broker's own environment is added to it... */
  env: Readonly<Record<string, string>>;
  /** ...except these names, copied from the broker's environment when set there; `env` wins. */
  inheritEnv?: readonly string[];
  cwd: string;
  /** Values never to be logged or repeated in an error (the child's token): its stderr is scrubbed of them. */
  secrets?: readonly string[];
};

export type ChildLimits = {
  /** stop(): how long to wait after closing stdin before SIGTERM. */
  stdinCloseWaitMs: number;
  /** stop(): how long to wait after SIGTERM before SIGKILL. */
  graceMs: number;
  /** Exiting by itself within this long after spawn counts as a startup failure. */
  earlyExitMs: number;
  /** A stdout line longer than this is skipped and reported as oversize, never buffered. */
  stdoutMaxLineBytes: number;
  /** Bytes that may wait in the stdin queue; a write beyond this is refused. */
  stdinMaxQueuedBytes: number;
  /** After exit, how long stdout/stderr may take to reach EOF (a grandchild could hold them). */
  drainAfterExitMs: number;
  stderr: StderrLimits;
};

export const DEFAULT_CHILD_LIMITS: ChildLimits = {
  stdinCloseWaitMs: 1000,
  graceMs: 5000,
  earlyExitMs: 2000,
  stdoutMaxLineBytes: 8 * 1024 * 1024,
  stdinMaxQueuedBytes: 8 * 1024 * 1024,
  drainAfterExitMs: 1000,
  stderr: DEFAULT_STDERR_LIMITS,
};

/** Receives the child's stdout, one newline-delimited line at a time (blank lines are skipped). */
export type StdoutReader = {
  line(text: string): void;
  /** A line longer than the bound went by: its length and its first and last few hundred bytes. */
  oversize(bytes: number, head: string, tail: string): void;
};

/** A spawn either gives a running child at once or, after a look at why, a SpawnError. */
export type Launch = { child: Child } | { failure: Promise<SpawnError> };

/**
 * Starts a child without a shell, in its own process group (so stop() reaches its grandchildren),
 * with exactly the environment given. Synchronous on purpose: libuv reports exec failures from
 * uv_spawn itself, so whether there is a pid is known before this returns, and a registry can count
 * the child without a window where it exists but is not counted.
 */
export function launchChild(
  spec: ChildSpec,
  log: Logger,
  limits: ChildLimits = DEFAULT_CHILD_LIMITS,
  isolation: Isolation = NO_ISOLATION,
): Launch {
  const refused = checkSpec(spec);
  if (refused) return { failure: Promise.resolve(refused) };
  const run = isolation.wrap(spec.command, spec.args ?? [], spec.cwd);
  let cp: ChildProcessWithoutNullStreams;
  try {
    cp = spawn(run.command, run.args, {
      cwd: spec.cwd,
      env: childEnv(spec),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
  } catch (e) {
    // Arguments were checked above, so this is a libuv error Node throws rather than emits
    // (ENOTDIR, E2BIG, ...). Only its code is used: Node's messages can quote argv.
    return { failure: diagnose(e as NodeJS.ErrnoException, spec) };
  }
  if (cp.pid === undefined) {
    // Node reports ENOENT/EACCES/EMFILE/... on the next tick; listen now so it cannot go unhandled.
    const failure = new Promise<SpawnError>((resolve) => {
      cp.once('error', (err: NodeJS.ErrnoException) => {
        closeStdio(cp);
        void diagnose(err, spec).then(resolve);
      });
    });
    return { failure };
  }
  return { child: new Child(cp, spec, log, limits, isolation.wrapper) };
}

/** Like launchChild, as a promise: resolves with the running child or rejects with a SpawnError. */
export async function startChild(spec: ChildSpec, log: Logger, limits?: ChildLimits): Promise<Child> {
  const launched = launchChild(spec, log, limits);
  if ('child' in launched) return launched.child;
  throw await launched.failure;
}

/**
 * One running child process. Its stderr is always drained to the log; its stdout waits (paused, so
 * the child blocks rather than the broker buffering) until a reader is attached with onStdout().
 * `exited` settles exactly once, after the child was reaped and its output pipes were closed.
 */
export class Child {
  readonly name: string;
  readonly command: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;

  readonly #cp: ChildProcessWithoutNullStreams;
  readonly #log: Logger;
  readonly #limits: ChildLimits;
  readonly #startedAt = performance.now();
  readonly #stderr: StderrDrain;
  #resolveExited!: (info: ExitInfo) => void;
  #info: ExitInfo | undefined;
  #reader: StdoutReader | undefined;
  #stdinError: Error | undefined;
  // Set in the 'exit' handler, which libuv runs in the same callback as waitpid(): while it is
  // false the pid (a zombie at worst) is still ours and cannot have been reused.
  #reaped = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null; uptimeMs: number } | undefined;
  #stopRequested = false;
  #corked = false;
  #termAt = Number.POSITIVE_INFINITY;
  #killAt = Number.POSITIVE_INFINITY;
  #termSent = false;
  #killSent = false;
  #stopTimer: NodeJS.Timeout | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #wrapper: boolean;

  constructor(
    cp: ChildProcessWithoutNullStreams,
    spec: ChildSpec,
    log: Logger,
    limits: ChildLimits,
    wrapper = false,
  ) {
    if (cp.pid === undefined) throw new Error('Child needs a spawned process');
    this.#cp = cp;
    this.#wrapper = wrapper;
    this.pid = cp.pid;
    this.name = spec.name;
    this.command = spec.command;
    this.#log = log;
    this.#limits = limits;
    this.exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
    this.#stderr = new StderrDrain({ log, name: spec.name, limits: limits.stderr, secrets: spec.secrets });

    // Every stream gets an 'error' listener: an EPIPE on a dead child's stdin must not become an
    // uncaught exception that takes the broker (and every other user's child) down.
    cp.stdin.on('error', (err) => {
      this.#stdinError = err;
    });
    cp.stdout.on('error', (err) => log.debug({ child: this.name, err: err.message }, 'child stdout error'));
    cp.stderr.on('error', (err) => log.debug({ child: this.name, err: err.message }, 'child stderr error'));
    cp.stderr.on('data', (chunk: Buffer) => this.#stderr.push(chunk));
    cp.stderr.on('end', () => this.#stderr.end());
    // After spawn, 'error' only comes from ChildProcess.kill()/send(), which are not used; log it
    // rather than let it throw.
    cp.on('error', (err) => log.warn({ child: this.name, err: err.message }, 'child process error'));
    cp.once('exit', (code, signal) => this.#onExit(code, signal));
    cp.once('close', () => this.#settle());
    log.debug({ child: this.name, childPid: this.pid, command: this.command }, 'child started');
  }

  /** Not yet reaped. */
  get alive(): boolean {
    return !this.#reaped;
  }

  get stopping(): boolean {
    return this.#stopRequested;
  }

  /** Milliseconds since spawn (until exit, once it has exited). */
  get uptimeMs(): number {
    return this.#exit?.uptimeMs ?? performance.now() - this.#startedAt;
  }

  /** Bytes written but not yet taken by the child's stdin pipe. */
  get queuedBytes(): number {
    return this.#cp.stdin.writableLength;
  }

  /** The last stderr lines so far, oldest first. */
  stderrTail(): string[] {
    return this.#stderr.tail();
  }

  /**
   * Attaches the one stdout reader and starts the flow. Lines are handed over synchronously as
   * they arrive; every line is delivered before `exited` settles.
   */
  onStdout(reader: StdoutReader): void {
    if (this.#reader) throw new Error(`child ${JSON.stringify(this.name)} already has a stdout reader`);
    this.#reader = reader;
    const splitter = new LineSplitter(this.#limits.stdoutMaxLineBytes, (head, total, truncated, tail) => {
      try {
        if (truncated)
          reader.oversize(total, head.subarray(0, TAIL_BYTES).toString('utf8'), tail.toString('utf8'));
        else if (head.length > 0) reader.line(head.toString('utf8'));
      } catch (e) {
        // A bug in the reader must not crash the broker from inside a stream callback.
        this.#log.error({ child: this.name, err: (e as Error).message }, 'child stdout reader threw');
      }
    });
    this.#cp.stdout.on('data', (chunk: Buffer) => splitter.push(chunk));
    this.#cp.stdout.on('end', () => splitter.end());
  }

  /**
   * Writes to the child's stdin. Resolves once the bytes were handed to the pipe, so awaiting each
   * write is what respects back-pressure; refuses (StdinFullError) rather than queue more than the
   * bound, and rejects with ChildGoneError once the child is stopping or gone.
   */
  write(data: string | Uint8Array): Promise<void> {
    const stdin = this.#cp.stdin;
    const gone = this.#goneReason();
    if (gone) return Promise.reject(new ChildGoneError(this.name, gone, this.#stdinError));
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const queued = stdin.writableLength;
    if (queued + bytes > this.#limits.stdinMaxQueuedBytes) {
      return Promise.reject(new StdinFullError(this.name, queued, bytes, this.#limits.stdinMaxQueuedBytes));
    }
    // Messages written during one turn of the event loop (concurrent calls of one user) leave in
    // one pipe write: a write is a syscall that also wakes the child, so at high concurrency this
    // is most of the broker's cost per call. Uncorked before the loop next waits for I/O, so a
    // lone call is not delayed.
    if (!this.#corked) {
      this.#corked = true;
      stdin.cork();
      setImmediate(() => {
        this.#corked = false;
        stdin.uncork();
      });
    }
    return new Promise((resolve, reject) => {
      stdin.write(data, (err) => {
        if (err) reject(new ChildGoneError(this.name, this.#goneReason() ?? 'stdin failed', err));
        else resolve();
      });
    });
  }

  /**
   * Stops the child: close stdin, wait `stdinCloseWaitMs`, SIGTERM the process group, wait
   * `graceMs`, SIGKILL the group. Resolves with the exit once it is reaped. Calling it again can
   * only bring the signals forward (a shutdown may shorten a stop already under way).
   */
  stop(graceMs = this.#limits.graceMs, stdinCloseWaitMs = this.#limits.stdinCloseWaitMs): Promise<ExitInfo> {
    if (this.#reaped) return this.exited;
    const now = performance.now();
    if (!this.#stopRequested) {
      this.#stopRequested = true;
      this.#cp.stdin.end();
    }
    const wait = (ms: number, fallback: number) => (Number.isFinite(ms) ? Math.max(0, ms) : fallback);
    this.#termAt = Math.min(this.#termAt, now + wait(stdinCloseWaitMs, this.#limits.stdinCloseWaitMs));
    this.#killAt = Math.min(
      this.#killAt,
      (this.#termSent ? now : this.#termAt) + wait(graceMs, this.#limits.graceMs),
    );
    this.#advanceStop();
    return this.exited;
  }

  /**
   * Resolves once the child has lived through the early-exit window; rejects with a ChildExitError
   * (exit code, signal, last stderr lines) if it is gone before. forgejo-mcp says nothing until it
   * is asked something, so this is the only readiness signal short of the MCP handshake.
   */
  whenStable(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#info) {
        reject(new ChildExitError(this.name, this.command, this.#info));
        return;
      }
      const left = this.#limits.earlyExitMs - this.uptimeMs;
      if (left <= 0) {
        resolve();
        return;
      }
      const timer = setTimeout(resolve, left);
      void this.exited.then((info) => {
        clearTimeout(timer);
        reject(new ChildExitError(this.name, this.command, info));
      });
    });
  }

  #goneReason(): string | undefined {
    if (this.#reaped) {
      const exit = this.#exit ?? { code: null, signal: null };
      return exit.signal ? `it was killed by ${exit.signal}` : `it exited with code ${exit.code}`;
    }
    if (this.#stopRequested) return 'it is stopping';
    if (this.#stdinError)
      return `its stdin broke (${(this.#stdinError as NodeJS.ErrnoException).code ?? 'error'})`;
    if (!this.#cp.stdin.writable) return 'its stdin is closed';
    return undefined;
  }

  #advanceStop(): void {
    clearTimeout(this.#stopTimer);
    this.#stopTimer = undefined;
    if (this.#reaped) return;
    const now = performance.now();
    if (!this.#termSent) {
      if (now < this.#termAt) {
        this.#stopTimer = setTimeout(() => this.#advanceStop(), this.#termAt - now);
        return;
      }
      this.#termSent = true;
      this.#signalGroup('SIGTERM');
    }
    if (!this.#killSent) {
      if (now < this.#killAt) {
        this.#stopTimer = setTimeout(() => this.#advanceStop(), this.#killAt - now);
        return;
      }
      this.#killSent = true;
      this.#signalGroup('SIGKILL');
    }
  }

  #signalGroup(signal: NodeJS.Signals): void {
    if (this.#reaped) return;
    const inside = this.#wrapper ? groupMembersBut(this.pid) : [];
    for (const pid of inside) {
      try {
        process.kill(pid, signal);
      } catch {
        // ESRCH: it ended meanwhile.
      }
    }
    if (inside.length > 0) return;
    try {
      // Negative pid: the whole group, which the child leads since `detached` made it call setsid().
      process.kill(-this.pid, signal);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH')
        this.#log.warn({ child: this.name, childPid: this.pid, signal, errno: code }, 'cannot signal child');
    }
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#reaped = true;
    this.#exit = { code, signal, uptimeMs: this.uptimeMs };
    clearTimeout(this.#stopTimer);
    this.#stopTimer = undefined;
    // The leader is gone; anything else in its group (a wrapper script's background job) would be
    // orphaned and leak. A process group id stays taken while any member lives, so this reaches only
    // our leftovers; if none are left it is ESRCH. Reuse would need the kernel to hand out this very
    // pid to a new group leader between waitpid() and this line, i.e. a full pid wrap-around.
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left in the group.
    }
    this.#cp.stdin.destroy();
    // Unread stdout would hold the pipe (and the 'close' event) open: discard it.
    if (!this.#reader) this.#cp.stdout.resume();
    // Normally stdout/stderr reach EOF right away; a grandchild that escaped the group (setsid)
    // could hold them open forever, so they are cut after a bound.
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.#cp.stdout.destroy();
      this.#cp.stderr.destroy();
      setImmediate(() => this.#settle());
    }, this.#limits.drainAfterExitMs);
  }

  #settle(): void {
    if (this.#info) return;
    if (!this.#reaped) return; // 'close' always follows 'exit'; be sure anyway.
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#stderr.end();
    const { code, signal, uptimeMs } = this.#exit ?? { code: null, signal: null, uptimeMs: this.uptimeMs };
    const info: ExitInfo = {
      code,
      signal,
      uptimeMs,
      stopped: this.#stopRequested,
      early: !this.#stopRequested && uptimeMs < this.#limits.earlyExitMs,
      stderrTail: this.#stderr.tail(),
    };
    this.#info = info;
    // Node closes the process handle in its exit callback and the close completes at the end of
    // a loop iteration: wait for it, so whoever awaits `exited` finds no handle of this child left.
    void afterHandleCloses().then(() => this.#resolveExited(info));
    // `exitCode`, not `code`: the logger redacts any field named code (OAuth codes). `childPid`, not
    // `pid`: every line already carries the broker's own pid.
    const fields = {
      child: this.name,
      childPid: this.pid,
      exitCode: code,
      signal,
      uptimeMs: Math.round(uptimeMs),
    };
    if (info.stopped) this.#log.info(fields, 'child stopped');
    else if (info.early) this.#log.warn({ ...fields, stderrTail: info.stderrTail }, 'child exited at start');
    else if (code === 0) this.#log.info(fields, 'child exited');
    else this.#log.warn({ ...fields, stderrTail: info.stderrTail }, 'child exited');
  }
}

/**
 * The other live members of the process group `leader` leads. While the leader is not reaped its
 * pid, and so the group id, cannot be reused: every pid found is one of ours.
 */
function groupMembersBut(leader: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === leader) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === leader && fields[0] !== 'Z') found.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

function where(spec: ChildSpec): { command: string; cwd: string } {
  return { command: String(spec.command), cwd: String(spec.cwd) };
}

const NUL = '\u0000';

/**
 * Refuses a malformed spec before Node sees it: Node's own messages quote the offending value,
 * and an environment value here is a Forgejo token.
 */
function checkSpec(spec: ChildSpec): SpawnError | undefined {
  const refuse = (reason: string) => new SpawnError({ ...where(spec), code: 'EINVAL', reason });
  if (typeof spec.name !== 'string' || spec.name === '') return refuse('the child needs a name');
  if (typeof spec.command !== 'string' || spec.command === '') return refuse('the command is empty');
  if (spec.command.includes(NUL)) return refuse('the command contains a NUL byte');
  if (typeof spec.cwd !== 'string' || spec.cwd === '') return refuse('the working directory is empty');
  if (spec.cwd.includes(NUL)) return refuse('the working directory contains a NUL byte');
  const args = spec.args ?? [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (typeof arg !== 'string' || arg.includes(NUL))
      return refuse(`argument ${i + 1} is not a string without NUL bytes`);
  }
  for (const [key, value] of Object.entries(spec.env)) {
    if (key === '' || key.includes('=') || key.includes(NUL)) {
      return refuse(`environment name ${JSON.stringify(key)} is not valid`);
    }
    if (typeof value !== 'string' || value.includes(NUL)) {
      return refuse(`the value of environment variable ${key} is not a string without NUL bytes`);
    }
  }
  return undefined;
}

function childEnv(spec: ChildSpec): Record<string, string> {
  // A prototype-free object: the child's environment is exactly these own keys.
  const env: Record<string, string> = Object.create(null);
  for (const name of spec.inheritEnv ?? []) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [key, value] of Object.entries(spec.env)) env[key] = value;
  return env;
}

function closeStdio(cp: ChildProcessWithoutNullStreams): void {
  for (const stream of [cp.stdin, cp.stdout, cp.stderr]) stream?.destroy();
}

/**
 * libuv runs close callbacks at the end of the loop iteration in which uv_close() was called, so
 * two iterations later every handle Node closed for a failed spawn (process, pipes) is gone: a
 * caller that sees the SpawnError sees no leftover handle either.
 */
async function afterHandleCloses(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Node says ENOENT for a missing binary, a missing cwd and a missing #! interpreter alike. */
async function diagnose(err: NodeJS.ErrnoException, spec: ChildSpec): Promise<SpawnError> {
  const code = err.code ?? 'UNKNOWN';
  const cwd = path.resolve(spec.cwd);
  let reason: string;
  const cwdProblem =
    code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' ? await cwdTrouble(cwd) : undefined;
  if (cwdProblem) reason = `the working directory ${cwdProblem}`;
  else if (code === 'ENOENT') reason = await whyNotFound(spec.command, cwd);
  else if (code === 'EACCES') reason = await whyNoAccess(spec.command, cwd);
  else if (code === 'ENOTDIR') reason = 'a part of the command path is not a directory';
  else if (code === 'EMFILE' || code === 'ENFILE') reason = 'too many open files';
  else if (code === 'EAGAIN') reason = 'the process limit is reached';
  else reason = 'spawn failed';
  await afterHandleCloses();
  return new SpawnError({ ...where(spec), code, reason });
}

async function cwdTrouble(cwd: string): Promise<string | undefined> {
  try {
    const s = await stat(cwd);
    if (!s.isDirectory()) return 'is not a directory';
    await access(cwd, fsConstants.X_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'ENOTDIR') return 'is not a directory';
    return 'is not accessible';
  }
}

async function whyNotFound(command: string, cwd: string): Promise<string> {
  if (!command.includes('/')) return "command not found in the child's PATH";
  try {
    await stat(path.resolve(cwd, command));
  } catch {
    return 'command not found';
  }
  // The file is there, yet execve() said ENOENT: its #! interpreter (or ELF loader) is missing.
  return 'the interpreter named on its #! line was not found';
}

async function whyNoAccess(command: string, cwd: string): Promise<string> {
  if (!command.includes('/')) return "permission denied: a match in the child's PATH is not executable";
  try {
    const s = await stat(path.resolve(cwd, command));
    if (s.isDirectory()) return 'the command is a directory';
  } catch {
    return 'permission denied on a directory of the command path';
  }
  return 'permission denied: the command is not executable';
}
