// A throwaway PostgreSQL cluster from Debian's packages: initdb into a temp folder, pg_ctl start on
// a free loopback port (its socket in the same folder), a fresh database per caller, and pg_ctl
// stop plus removal after. The server refuses to run as root, so a root test run (CI) runs it as
// the `postgres` system user the package creates, in a folder that user owns.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './oauth-harness.ts';

const BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const PASSWORD = 'broker-test-password';

export type PostgresCluster = {
  port: number;
  /** A new empty database on the cluster, as a postgres:// URL with the password in it. */
  createDatabase(): Promise<string>;
  stop(): void;
};

function asServerUser(): { uid: number; gid: number; prefix: string[] } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid, prefix: ['runuser', '-u', 'postgres', '--'] };
}

export async function startPostgres(): Promise<PostgresCluster> {
  if (!existsSync(join(BIN, 'initdb')))
    throw new Error(`PostgreSQL is not installed (${BIN}/initdb missing): apt-get install postgresql`);
  const user = asServerUser();
  const dir = mkdtempSync(join(tmpdir(), 'broker-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const run = (cmd: string, args: string[]) => {
    const [file, ...rest] = [...(user?.prefix ?? []), join(BIN, cmd), ...args] as [string, ...string[]];
    return execFileSync(file, rest, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, PASSWORD, { mode: 0o600 });
  if (user) chownSync(pwfile, user.uid, user.gid);
  run('initdb', [
    '-D',
    data,
    '-U',
    'broker',
    `--pwfile=${pwfile}`,
    '--auth=scram-sha-256',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  let port = 0;
  let started = false;
  const stop = () => {
    if (started) {
      started = false;
      try {
        run('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A crashed test file still stops its server: no postgres process outlives the tests.
  process.once('exit', stop);
  for (let attempt = 0; !started; attempt++) {
    port = await freePort();
    try {
      run('pg_ctl', [
        'start',
        '-D',
        data,
        '-w',
        '-l',
        join(dir, 'log'),
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      ]);
      started = true;
    } catch (e) {
      if (attempt >= 2) {
        stop();
        throw e;
      }
    }
  }
  let n = 0;
  const url = (db: string) => `postgres://broker:${PASSWORD}@127.0.0.1:${port}/${db}`;
  return {
    port,
    async createDatabase() {
      const name = `broker_test_${++n}`;
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    stop,
  };
}
