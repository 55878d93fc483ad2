import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  type Stats,
  statfsSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveCommand } from './command.ts';
import { flagName, parseSecretKey, type SettingName, type SettingValues, settings } from './settings.ts';

export type Config = Omit<SettingValues, 'secretKey' | 'db'> & {
  /** A resolved SQLite file path, or a postgres:// URL (see `dbKind`). */
  db: string;
  dbKind: 'sqlite' | 'postgres';
  /** The child command's program as an absolute path, found on the broker's PATH at load. */
  childCommandPath: string;
  secretKey: Buffer;
  /** Where the key came from, for the startup log line (never the key itself). */
  secretKeySource: 'env' | 'file' | 'generated' | 'not-yet-generated';
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
export function loadConfig(
  env: NodeJS.ProcessEnv,
  argv: string[],
  opts: { prepare?: boolean } = {},
): ConfigResult {
  // `check` validates without creating anything: no database folder, no key file.
  const prepare = opts.prepare ?? true;
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
    const problem = databaseFileProblem(db) ?? (prepare ? prepareFolder(dirname(db)) : undefined);
    if (problem) {
      errors.push(describe('db', problem, values.db));
      db = undefined;
    }
  }

  // Found here, not at first use, so a missing forgejo-mcp is one more line of this list.
  let childCommandPath: string | undefined;
  const childCommand = values.childCommand as string[] | undefined;
  if (childCommand?.[0]) {
    try {
      childCommandPath = resolveCommand(childCommand[0], env['PATH'] ?? '');
    } catch (e) {
      errors.push(describe('childCommand', (e as Error).message, childCommand.join(' ')));
    }
  }

  let secretKey = values.secretKey as Buffer | undefined;
  let secretKeySource: Config['secretKeySource'] = 'env';
  // The key file is only created for an otherwise valid configuration: a refused start leaves no trace.
  if (secretKey === undefined && db !== undefined && !postgres && errors.length === 0) {
    const keyFile = join(dirname(db), KEY_FILE);
    try {
      if (prepare) {
        const fromFile = readOrCreateKeyFile(keyFile);
        secretKey = fromFile.key;
        secretKeySource = fromFile.created ? 'generated' : 'file';
      } else {
        const existing = existsSync(keyFile) ? readOrCreateKeyFile(keyFile).key : undefined;
        // Nothing is sealed with a key that does not exist yet: a stand-in serves the check.
        secretKey = existing ?? randomBytes(32);
        secretKeySource = existing ? 'file' : 'not-yet-generated';
      }
    } catch (e) {
      errors.push(describe('secretKey', `key file ${keyFile}: ${(e as Error).message}`, undefined));
    }
  }

  if (errors.length > 0 || !db || !secretKey || !childCommandPath) return { ok: false, errors };
  return {
    ok: true,
    config: {
      ...(values as SettingValues),
      db,
      dbKind: postgres ? 'postgres' : 'sqlite',
      childCommandPath,
      secretKey,
      secretKeySource,
    },
  };
}

/** A postgres:// (or postgresql://) URL names a PostgreSQL database; anything else a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** What is wrong with the database path itself, in words: a folder, a device, a file in the way. */
function databaseFileProblem(db: string): string | undefined {
  const st = statOrUndefined(db);
  if (st?.isDirectory()) return `${db} is a folder; name a file in it, e.g. ${join(db, 'broker.db')}`;
  if (st && !st.isFile()) return `${db} is not a regular file (a device or socket); name a file for SQLite`;
  // The nearest part of the path that exists must be a folder, or nothing can be created below it.
  for (let p = dirname(db); p !== dirname(p); p = dirname(p)) {
    const up = statOrUndefined(p);
    if (up === undefined) continue;
    if (!up.isDirectory()) return `${p} is a file, not a folder, so nothing can be created under it`;
    break;
  }
  // Asked before any mkdir: Node's recursive mkdir loops forever on procfs's ENOENT.
  const special = specialFileSystem(dirname(db));
  if (special) return `${dirname(db)} is on ${special}, a kernel file system where no database can be kept`;
  return undefined;
}

/** File systems where files cannot be created whatever the permissions. */
const SPECIAL_FILE_SYSTEMS: Record<number, string> = { 40864: 'procfs', 1650812274: 'sysfs', 7377: 'devpts' };

function specialFileSystem(path: string): string | undefined {
  for (let p = path; ; p = dirname(p)) {
    try {
      return SPECIAL_FILE_SYSTEMS[statfsSync(p).type];
    } catch {}
    if (p === dirname(p)) return undefined;
  }
}

/** An errno code in words, for a folder the broker must create or write. */
function folderError(folder: string, e: unknown, doing: 'create' | 'write files in'): string {
  const code = (e as NodeJS.ErrnoException).code;
  const uid = typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `the broker's user${uid} may not ${doing} ${folder}: permission denied`;
    case 'EROFS':
      return `${folder} is on a read-only file system`;
    case 'ENOSPC':
      return `the disk holding ${folder} is full`;
    case 'ENOTDIR':
    case 'EEXIST':
      return `a part of ${folder} is a file, not a folder`;
    default:
      return `cannot ${doing} ${folder}: ${code ?? (e as Error).message}`;
  }
}

/** Creates the folder if needed and proves it writable; returns the problem, if any. */
function prepareFolder(folder: string): string | undefined {
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  } catch (e) {
    return `cannot create the database folder: ${folderError(folder, e, 'create')}`;
  }
  // Permission bits say little for root or on read-only mounts: prove it by writing a file.
  const probe = join(folder, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    if (!statSync(folder).isDirectory()) return `${folder} is not a folder`;
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (e) {
    return `the database folder is not writable: ${folderError(folder, e, 'write files in')}`;
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
    'Usage: forgejo-mcp-broker [--flag value ...]      run the broker',
    '       forgejo-mcp-broker check [--flag value ...] check the settings and Forgejo, then exit',
    '       forgejo-mcp-broker admin <command>          see forgejo-mcp-broker admin --help',
    '',
    'Durations are a number with a unit: 500ms, 30s, 15m, 1h, 7d; a bare number means seconds.',
    'Every setting is an environment variable or a flag:',
  ];
  for (const s of Object.values(settings)) {
    const dflt =
      s.default === undefined ? 'required' : s.default === '' ? 'optional' : `default ${s.default}`;
    lines.push(`  ${s.env} / --${flagName(s.env)} (${dflt})`, `      ${s.help}`);
  }
  return lines.join('\n');
}
