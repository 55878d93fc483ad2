// What a child can see of the host. Every child runs as the broker's own user, so without a
// sandbox one compromised child reads its siblings' /proc/<pid>/environ (their Forgejo tokens), the
// broker's environment (FORGEJO_CLIENT_SECRET), its database and its key file. bubblewrap gives each
// child its own PID namespace with its own /proc (no other process is visible), a read-only view of
// the host, an empty /tmp, and empty folders in place of the ones the broker hides.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** bwrap: required; auto: bwrap where the host allows it; none: no sandbox. */
export type IsolationMode = 'auto' | 'bwrap' | 'none';

/** How a child's command line is run. */
export type Isolation = {
  readonly kind: 'bwrap' | 'none';
  /**
   * The spawned process is a wrapper that must outlive the child it runs: signals go to the rest
   * of its process group (the sandbox's init and the child), and the wrapper ends when they do.
   */
  readonly wrapper: boolean;
  /** What a child can and cannot see, for the startup log line. */
  readonly summary: string;
  wrap(command: string, args: readonly string[], cwd: string): { command: string; args: string[] };
};

export const NO_ISOLATION: Isolation = {
  kind: 'none',
  wrapper: false,
  summary:
    "children are not isolated: each can read its siblings' environments (their Forgejo tokens), the broker's environment, database and key file",
  wrap: (command, args) => ({ command, args: [...args] }),
};

/** Folders that exist, by their real path (a symlinked state directory is hidden where it really is). */
function realFolders(paths: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    try {
      out.add(realpathSync(p));
    } catch {
      // Not there: nothing to hide.
    }
  }
  return [...out].filter((p) => p !== '/');
}

export function bwrapIsolation(bwrap: string, hide: readonly string[]): Isolation {
  const tmp = realFolders([tmpdir(), '/tmp']);
  const hidden = realFolders(hide);
  const fixed = [
    // The child dies with the broker: no child outlives it holding a token.
    '--die-with-parent',
    // The child itself is the namespace's init, so bubblewrap waits for (and reaps) it directly.
    // As an init it ignores signals it has no handler for: forgejo-mcp (Go) handles SIGTERM; a
    // child that does not is stopped by stdin's end, or SIGKILL after the grace.
    '--as-pid-1',
    '--unshare-pid',
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    ...tmp.flatMap((p) => ['--tmpfs', p]),
  ];
  // After the binds below, so a hidden folder inside a program's folder stays hidden.
  const hiding = hidden.flatMap((p) => ['--tmpfs', p]);
  const root = process.geteuid?.() === 0;
  return {
    kind: 'bwrap',
    // Killed first, bubblewrap would leave the sandbox's init to the host's init to reap, which
    // some container inits never do.
    wrapper: true,
    summary: `each child runs under bubblewrap in its own PID namespace: it sees no other process, a read-only host, an empty /tmp, and empty folders in place of ${hidden.join(', ') || '(nothing)'}${root ? '; the broker runs as root, so children are root without capabilities and can read root-only files elsewhere on the host' : ''}`,
    wrap: (command, args, cwd) => ({
      command: bwrap,
      args: [
        ...fixed,
        ...programFolders([command, ...args], tmp).flatMap((p) => ['--ro-bind', p, p]),
        ...hiding,
        '--chdir',
        cwd,
        '--',
        command,
        ...args,
      ],
    }),
  };
}

/**
 * A program installed under a temporary folder (a checkout in /tmp, its own Node binary and
 * scripts) would vanish under the empty /tmp: the top folder under /tmp of each absolute path on
 * the command line is bound back, read-only.
 */
function programFolders(words: readonly string[], tmp: readonly string[]): string[] {
  const out = new Set<string>();
  for (const w of words) {
    if (!w.startsWith('/')) continue;
    let real: string;
    try {
      real = realpathSync(w);
    } catch {
      continue;
    }
    for (const t of tmp) {
      if (!real.startsWith(`${t}/`)) continue;
      const top = real.slice(t.length + 1).split('/')[0];
      if (top) out.add(join(t, top));
    }
  }
  return [...out];
}

function findOnPath(name: string, path: string): string | undefined {
  for (const dir of path.split(':').filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export type DetectedIsolation = {
  isolation: Isolation;
  /** Why the sandbox is not in force although it was wanted (auto fell back to none). */
  problem?: string;
};

/**
 * Picks the isolation for `mode` by trying it: bubblewrap is run once with the children's exact
 * sandbox, since whether namespaces may be created depends on the kernel, its settings, seccomp
 * and the service manager, none of which can be read reliably. `bwrap` throws when the sandbox
 * cannot run; `auto` then falls back to none and says why.
 */
export function detectIsolation(
  mode: IsolationMode,
  opts: { hide: readonly string[]; path?: string },
): DetectedIsolation {
  if (mode === 'none') return { isolation: NO_ISOLATION };
  const problem = (why: string): DetectedIsolation => {
    if (mode === 'bwrap')
      throw new Error(
        `BROKER_CHILD_ISOLATION=bwrap: ${why}; install bubblewrap and allow user namespaces (docs/deploy.md), or set BROKER_CHILD_ISOLATION=none`,
      );
    return { isolation: NO_ISOLATION, problem: why };
  };
  const bwrap = findOnPath('bwrap', opts.path ?? process.env['PATH'] ?? '/usr/bin:/bin');
  if (!bwrap) return problem('bubblewrap (bwrap) is not installed');
  const isolation = bwrapIsolation(bwrap, opts.hide);
  const probe = isolation.wrap(process.execPath, ['--version'], tmpdir());
  const r = spawnSync(probe.command, probe.args, {
    encoding: 'utf8',
    timeout: 10_000,
    env: { PATH: '/usr/bin:/bin' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status !== 0) {
    const said = (r.stderr ?? '').trim().split('\n')[0] || (r.error?.message ?? `exit status ${r.status}`);
    return problem(`bubblewrap cannot create the sandbox here (${said})`);
  }
  return { isolation };
}
