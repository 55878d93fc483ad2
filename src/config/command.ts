import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The child command as an absolute path, found once at startup on the broker's own PATH: the child
 * itself runs with a minimal PATH, and a missing forgejo-mcp should stop the broker with a clear
 * message, not fail every user's first call.
 */
export function resolveCommand(command: string, path = process.env['PATH'] ?? ''): string {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(command)]
    : path
        .split(':')
        .filter(Boolean)
        .map((dir) => join(dir, command));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  throw new Error(
    command.includes('/')
      ? `${command} does not exist or is not executable`
      : `${command} was not found on PATH; install forgejo-mcp or give its full path`,
  );
}
