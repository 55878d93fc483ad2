// deploy/systemd/install.sh as an operator runs it, into a temp prefix instead of /opt and /etc:
// then the installed unit's own command line is run, with the installed Node 24 and nothing of the
// checkout on PATH, in front of the Forgejo emulator.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demoSeedFor } from '../../emulator/forgejo/seed.ts';
import { STANDIN } from '../support/standin.ts';
import { eventually } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'deploy', 'systemd', 'install.sh');
// Not under /tmp: the unit sandboxes children with bubblewrap, which gives them an empty /tmp, so
// an installed Node there would vanish for them (/opt, where it really goes, stays visible).
const tmp = mkdtempSync(join('/var/tmp', 'broker-install-'));
const prefix = join(tmp, 'opt', 'forgejo-mcp-broker');
const sysconf = join(tmp, 'etc');
const unitPath = join(sysconf, 'systemd', 'system', 'forgejo-mcp-broker.service');
const envFile = join(sysconf, 'forgejo-mcp-broker', 'broker.env');

/** Runs the script with this test's Node 24 as the binary to install (no download in tests). */
function install(): string {
  return execFileSync(SCRIPT, ['--prefix', prefix, '--sysconfdir', sysconf], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? tmp,
      NODE_BINARY: process.execPath,
    },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The [Service] keys of a unit, in order. */
function service(text: string): Array<[string, string]> {
  const body = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  return body
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

function envFileValues(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

describe('deploy/systemd/install.sh', () => {
  let emulator: Awaited<ReturnType<typeof startForgejoEmulator>>;
  before(async () => {
    install();
    emulator = await startForgejoEmulator({
      ...demoSeedFor('http://127.0.0.1:8080/oauth/callback'),
      port: 0,
    });
  });
  after(async () => {
    await emulator?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('puts Node 24, the broker and its runtime dependencies under the prefix, and the unit points there', () => {
    const node = join(prefix, 'node', 'bin', 'node');
    assert.match(execFileSync(node, ['--version'], { encoding: 'utf8' }), /^v(2[4-9]|[3-9]\d)\./);
    assert.equal(statSync(node).mode & 0o777, 0o755);
    for (const f of [
      'package.json',
      'src/main/main.ts',
      'node_modules/fastify/package.json',
      'docs/deploy.md',
    ]) {
      assert.ok(statSync(join(prefix, f)).isFile(), f);
    }
    // Runtime dependencies only.
    assert.throws(() => statSync(join(prefix, 'node_modules', 'typescript')), { code: 'ENOENT' });
    const unit = service(readFileSync(unitPath, 'utf8'));
    const get = (k: string) => unit.filter(([key]) => key === k).map(([, v]) => v);
    assert.deepEqual(get('ExecStart'), [`${node} ${join(prefix, 'src', 'main', 'main.ts')}`]);
    assert.deepEqual(get('WorkingDirectory'), [prefix]);
    assert.deepEqual(get('EnvironmentFile'), [envFile]);
    assert.equal(statSync(envFile).mode & 0o777, 0o600);
    const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
    assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '');
  });

  it("the unit's command line starts the broker, which checks Forgejo and serves /healthz with the commit", async () => {
    const unit = service(readFileSync(unitPath, 'utf8'));
    const [exec, ...args] = (unit.find(([k]) => k === 'ExecStart')?.[1] ?? '').split(' ') as [
      string,
      ...string[],
    ];
    const cwd = unit.find(([k]) => k === 'WorkingDirectory')?.[1] as string;
    const state = join(tmp, 'state');
    const fromUnit = Object.fromEntries(
      unit
        .filter(([k]) => k === 'Environment')
        .map(([, v]) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1).replace('%S', state)]),
    );
    const env: Record<string, string> = {
      // systemd's default PATH: the checkout's Node (and any other) is not on it.
      PATH: '/usr/local/bin:/usr/bin:/bin',
      ...envFileValues(envFile),
      ...fromUnit,
      FORGEJO_URL: emulator.url,
      FORGEJO_CLIENT_ID: DEMO_CLIENT_ID,
      FORGEJO_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      BROKER_PUBLIC_URL: 'http://127.0.0.1:8080',
      BROKER_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'),
      BROKER_LISTEN: '127.0.0.1:0',
      BROKER_CHILD_COMMAND: `"${exec}" "${STANDIN}" --transport stdio`,
    };
    assert.equal(env['BROKER_DB'], join(state, 'forgejo-mcp-broker', 'broker.db'));

    // Not spawnSync: the emulator answering the check runs in this process.
    const check = await new Promise<{ status: number | null; out: string }>((resolve) => {
      const p = spawn(join(prefix, 'bin', 'forgejo-mcp-broker'), ['check'], { env, cwd });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      p.stderr.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      p.once('close', (status) => resolve({ status, out }));
    });
    assert.equal(check.status, 0, check.out);
    assert.match(check.out, /^all checks passed$/m);

    const broker = spawn(exec, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    broker.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const exited = new Promise<number | null>((r) => broker.once('exit', (code) => r(code)));
    try {
      await eventually(() => err.includes('"msg":"Forgejo check passed"') || broker.exitCode !== null, {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      const started = err.split('\n').find((l) => l.includes('"msg":"broker started"'));
      assert.ok(started, err);
      const { address } = JSON.parse(started) as { address: string };
      const health = (await (await fetch(`http://${address}/healthz`)).json()) as {
        status: string;
        git: string;
      };
      assert.equal(health.status, 'ok');
      const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
      assert.equal(health.git, commit);
    } finally {
      broker.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
  });

  it('running it again upgrades in place and keeps broker.env', () => {
    appendFileSync(envFile, 'LOG_LEVEL=debug\n');
    const before = readFileSync(envFile, 'utf8');
    install();
    assert.equal(readFileSync(envFile, 'utf8'), before);
    assert.ok(statSync(join(prefix, 'node_modules', 'fastify', 'package.json')).isFile());
    assert.equal(dirname(dirname(join(prefix, 'node', 'bin', 'node'))), join(prefix, 'node'));
  });
});
