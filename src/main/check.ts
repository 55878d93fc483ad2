// `forgejo-mcp-broker check` and the check at startup: the configuration, then Forgejo (its
// discovery document and the broker's client credentials). One function per audience, so an
// admin command can run the same check.
import type { Config } from '../config/config.ts';
import { checkForgejo, type ForgejoCheck } from '../forgejo/check.ts';
import type { Logger } from '../log/log.ts';

export function forgejoCheckOf(config: Config): Promise<ForgejoCheck> {
  return checkForgejo({
    forgejoUrl: config.forgejoUrl,
    clientId: config.forgejoClientId,
    clientSecret: config.forgejoClientSecret,
    redirectUri: `${config.publicUrl}/oauth/callback`,
  });
}

/** One log line per problem, each with its fix; one line when all is well. */
export function logForgejoCheck(result: ForgejoCheck, log: Logger): void {
  for (const p of result.problems) {
    log[p.severity]({ fix: p.fix }, `Forgejo check: ${p.problem}. Fix: ${p.fix}`);
  }
  if (result.problems.length === 0) log.info({ passed: result.passed }, 'Forgejo check passed');
}

/** The check as plain text for a terminal; the exit status is 1 when sign-in cannot work. */
export async function runCheck(config: Config, write: (line: string) => void): Promise<number> {
  write('configuration: valid');
  const result = await forgejoCheckOf(config);
  for (const p of result.passed) write(`ok    ${p}`);
  for (const p of result.problems) {
    write(`${p.severity === 'error' ? 'FAIL' : 'WARN'}  ${p.problem}`);
    write(`      fix: ${p.fix}`);
  }
  const errors = result.problems.filter((p) => p.severity === 'error').length;
  write(
    errors
      ? `${errors} problem${errors === 1 ? '' : 's'}: users cannot sign in until fixed`
      : 'all checks passed',
  );
  return errors ? 1 : 0;
}
