import type { Logger } from '../log/log.ts';
import { type Child, type ChildLimits, type ChildSpec, DEFAULT_CHILD_LIMITS, launchChild } from './child.ts';
import { SpawnError } from './errors.ts';
import { type Isolation, NO_ISOLATION } from './isolation.ts';

export type { Child, ChildLimits, ChildSpec, StdoutReader } from './child.ts';
export { DEFAULT_CHILD_LIMITS } from './child.ts';
export { ChildExitError, ChildGoneError, type ExitInfo, SpawnError, StdinFullError } from './errors.ts';
export {
  type DetectedIsolation,
  detectIsolation,
  type Isolation,
  type IsolationMode,
  NO_ISOLATION,
} from './isolation.ts';
export { DEFAULT_STDERR_LIMITS, type StderrLimits } from './stderr-drain.ts';

export type SupervisorLimits = Omit<ChildLimits, 'stderr'> & { stderr?: Partial<ChildLimits['stderr']> };

/**
 * Keeps every live child in one place: counts them and stops them all at shutdown. A child leaves
 * the set when it is reaped, whatever ended it; after stopAll() no new child is started.
 */
export class Supervisor {
  readonly #log: Logger;
  readonly #limits: ChildLimits;
  readonly #children = new Set<Child>();
  readonly #isolation: Isolation;
  #stopping = false;

  constructor(opts: { log: Logger; limits?: Partial<SupervisorLimits>; isolation?: Isolation }) {
    this.#log = opts.log;
    this.#isolation = opts.isolation ?? NO_ISOLATION;
    const { stderr, ...rest } = opts.limits ?? {};
    this.#limits = {
      ...DEFAULT_CHILD_LIMITS,
      ...rest,
      stderr: { ...DEFAULT_CHILD_LIMITS.stderr, ...stderr },
    };
  }

  /** How the children are sandboxed. */
  get isolation(): Isolation {
    return this.#isolation;
  }

  /** Children not yet reaped. */
  get live(): number {
    return this.#children.size;
  }

  /** A snapshot of the children not yet reaped. */
  children(): Child[] {
    return [...this.#children];
  }

  /** Starts a child; rejects with a SpawnError (naming command and cwd) when it cannot run. */
  async start(spec: ChildSpec): Promise<Child> {
    if (this.#stopping) {
      throw new SpawnError({
        command: spec.command,
        cwd: spec.cwd,
        code: 'ESHUTDOWN',
        reason: 'the supervisor is shutting down',
      });
    }
    const launched = launchChild(spec, this.#log, this.#limits, this.#isolation);
    if (!('child' in launched)) {
      const err = await launched.failure;
      this.#log.warn({ child: spec.name, errno: err.code, err: err.message }, 'child failed to start');
      throw err;
    }
    const child = launched.child;
    // Counted from the moment it has a pid, before anything can await.
    this.#children.add(child);
    void child.exited.then(() => this.#children.delete(child));
    return child;
  }

  /**
   * Stops every child at once (see Child.stop) and refuses new ones; resolves when all are reaped.
   * Children already stopping are hurried along to these deadlines if they are sooner.
   */
  async stopAll(
    graceMs = this.#limits.graceMs,
    stdinCloseWaitMs = this.#limits.stdinCloseWaitMs,
  ): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#children].map((child) => child.stop(graceMs, stdinCloseWaitMs)));
  }
}
