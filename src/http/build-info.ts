import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type BuildInfo = { version: string; git: string };

const ROOT = join(import.meta.dirname, '..', '..');

/** key=value lines, as the Containerfile writes them: `git=<sha>` and `created=<date>`. */
function fromBuildInfoFile(path: string): string | undefined {
  try {
    const line = readFileSync(path, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('git='));
    return line?.slice(4).trim() || undefined;
  } catch {
    return undefined;
  }
}

function fromGitCheckout(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2000,
    })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

/** Read once at startup: the commit comes from BROKER_GIT_COMMIT, the build-info file, git, or is unknown. */
export function readBuildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const git =
    env['BROKER_GIT_COMMIT']?.trim() ||
    fromBuildInfoFile(env['BROKER_BUILD_INFO'] ?? '/etc/build-info') ||
    fromGitCheckout() ||
    'unknown';
  return { version: pkg.version, git };
}
