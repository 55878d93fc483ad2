import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { flagName, parseSecretKey, type SettingName, type SettingValues, settings } from './settings.ts';

export type Config = Omit<SettingValues, 'secretKey' | 'db'> & {
  /** A resolved SQLite file path, or a postgres:// URL (see `dbKind`). */
  db: string;
  dbKind: 'sqlite' | 'postgres';
  secretKey: Buffer;
  /** Where the key came from, for the startup log line (never the key itself). */
  secretKeySource: 'env' | 'file' | 'generated';
};

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

const KEY_FILE = 'secret.key';

function describe(name: SettingName, problem: string, raw: string | undefined): string {
  const s = settings[name];
  const got = raw === undefined || 'secret' in s ? '' : ` (got ${JSON.stringify(raw)})`;
  return `${s.env} (--${flagName(s.env)}): ${problem}${got}; example: ${s.env}=${s.example}`;
}

/**
 * Reads every setting from flags (which win) and the environment, then prepares the data folder
 * and the key. Every problem is collected so a user fixes them all in one go.
 */
export function loadConfig(env: NodeJS.ProcessEnv, argv: string[]): ConfigResult {
  const errors: string[] = [];
  const options = Object.fromEntries(
    Object.values(settings).map((s) => [flagName(s.env), { type: 'string' as const }]),
  );
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    errors.push(`command line: ${(e as Error).message}; run with --help for the list of settings`);
  }

  const values: Partial<Record<SettingName, unknown>> = {};
  for (const name of Object.keys(settings) as SettingName[]) {
    const s = settings[name];
    const flag = flags[flagName(s.env)];
    const raw = typeof flag === 'string' ? flag : (env[s.env] ?? s.default);
    if (raw === undefined || (raw.trim() === '' && s.default === undefined)) {
      errors.push(describe(name, 'is required but not set', undefined));
      continue;
    }
    try {
      values[name] = s.parse(raw);
    } catch (e) {
      errors.push(describe(name, (e as Error).message, raw));
    }
  }

  let db: string | undefined;
  const postgres = typeof values.db === 'string' && isPostgresUrl(values.db);
  if (postgres) {
    // Never echoed back: the URL may carry a password.
    if (URL.canParse(values.db as string)) db = values.db as string;
    else errors.push(describe('db', 'is not a valid postgres:// URL', undefined));
    // Replicas must share the key, and there is no folder to keep a generated one in.
    if (values.secretKey === undefined)
      errors.push(
        describe(
          'secretKey',
          'is required with a PostgreSQL BROKER_DB (every replica sets the same key)',
          undefined,
        ),
      );
  } else if (typeof values.db === 'string') {
    db = resolve(values.db);
    const problem = prepareFolder(dirname(db));
    if (problem) {
      errors.push(describe('db', problem, values.db));
      db = undefined;
    }
  }

  let secretKey = values.secretKey as Buffer | undefined;
  let secretKeySource: Config['secretKeySource'] = 'env';
  // The key file is only created for an otherwise valid configuration: a refused start leaves no trace.
  if (secretKey === undefined && db !== undefined && !postgres && errors.length === 0) {
    const keyFile = join(dirname(db), KEY_FILE);
    try {
      const fromFile = readOrCreateKeyFile(keyFile);
      secretKey = fromFile.key;
      secretKeySource = fromFile.created ? 'generated' : 'file';
    } catch (e) {
      errors.push(describe('secretKey', `key file ${keyFile}: ${(e as Error).message}`, undefined));
    }
  }

  if (errors.length > 0 || !db || !secretKey) return { ok: false, errors };
  return {
    ok: true,
    config: {
      ...(values as SettingValues),
      db,
      dbKind: postgres ? 'postgres' : 'sqlite',
      secretKey,
      secretKeySource,
    },
  };
}

/** A postgres:// (or postgresql://) URL names a PostgreSQL database; anything else a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** Creates the folder if needed and proves it writable; returns the problem, if any. */
function prepareFolder(folder: string): string | undefined {
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  } catch (e) {
    return `cannot create the database folder ${folder}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  // Permission bits say little for root or on read-only mounts: prove it by writing a file.
  const probe = join(folder, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    if (!statSync(folder).isDirectory()) return `${folder} is not a folder`;
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (e) {
    return `the database folder ${folder} is not writable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  return undefined;
}

function readOrCreateKeyFile(path: string): { key: Buffer; created: boolean } {
  try {
    return { key: parseSecretKey(readFileSync(path, 'utf8')), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32);
  // 'wx' fails if another process created it meanwhile, rather than overwriting a key in use.
  writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return { key, created: true };
}

export function helpText(): string {
  const lines = [
    'Usage: forgejo-mcp-broker [--flag value ...]',
    '',
    'Every setting is an environment variable or a flag:',
  ];
  for (const s of Object.values(settings)) {
    const dflt =
      s.default === undefined ? 'required' : s.default === '' ? 'optional' : `default ${s.default}`;
    lines.push(`  ${s.env} / --${flagName(s.env)} (${dflt})`, `      ${s.help}`);
  }
  return lines.join('\n');
}
