// `forgejo-mcp-broker check` and the check the broker runs at startup, as a user meets them: the
// real entry point as a child process, in front of the Forgejo emulator.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demoSeedFor } from '../../emulator/forgejo/seed.ts';
import { logLines, startBroker } from '../support/broker-process.ts';
import { STANDIN_COMMAND } from '../support/standin.ts';
import { eventually } from '../support/wait.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main', 'main.ts');
const PUBLIC = 'http://127.0.0.1:8080';

describe('the Forgejo check', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-check-'));
  let emulator: Awaited<ReturnType<typeof startForgejoEmulator>>;
  let n = 0;
  before(async () => {
    emulator = await startForgejoEmulator({ ...demoSeedFor(`${PUBLIC}/oauth/callback`), port: 0 });
  });
  after(async () => {
    await emulator.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const env = (over: Record<string, string | undefined> = {}): Record<string, string> => {
    const e: Record<string, string | undefined> = {
      PATH: process.env['PATH'],
      BROKER_PUBLIC_URL: PUBLIC,
      FORGEJO_URL: emulator.url,
      FORGEJO_CLIENT_ID: DEMO_CLIENT_ID,
      FORGEJO_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      BROKER_DB: join(tmp, `run-${++n}`, 'broker.db'),
      BROKER_CHILD_COMMAND: STANDIN_COMMAND,
      ...over,
    };
    return Object.fromEntries(Object.entries(e).filter((kv): kv is [string, string] => kv[1] !== undefined));
  };

  const check = (e: Record<string, string>) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [MAIN, 'check'], {
        env: e,
        cwd: tmp,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      p.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      p.once('close', (code) => resolve({ code, out, err }));
    });

  it('`check` passes with the right settings and exits 0, creating nothing', async () => {
    const db = join(tmp, 'untouched', 'broker.db');
    const r = await check(env({ BROKER_DB: db }));
    assert.equal(existsSync(join(tmp, 'untouched')), false, 'no database folder or key file was made');
    assert.equal(r.code, 0, r.out + r.err);
    assert.equal(
      r.out,
      [
        'configuration: valid',
        `ok    Forgejo's discovery document at ${emulator.url}/.well-known/openid-configuration`,
        `ok    FORGEJO_CLIENT_ID and FORGEJO_CLIENT_SECRET accepted by ${emulator.url}/login/oauth/access_token`,
        'all checks passed',
        '',
      ].join('\n'),
    );
  });

  it('`check` names a wrong secret with the fix and exits 1', async () => {
    const r = await check(env({ FORGEJO_CLIENT_SECRET: 'wrong-secret-4b1d' }));
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(
      r.out,
      /^FAIL {2}Forgejo refuses FORGEJO_CLIENT_SECRET for the application forgejo-mcp-broker-demo \(unauthorized_client: invalid client secret\)\n {6}fix: copy the secret again, or regenerate it/m,
    );
    assert.match(r.out, /\n1 problem: users cannot sign in until fixed\n$/);
    assert.ok(!(r.out + r.err).includes('wrong-secret-4b1d'));
  });

  it('`check` with an invalid configuration lists every problem and exits 2 without asking Forgejo', async () => {
    const r = await check(
      env({ FORGEJO_URL: undefined, BROKER_CALL_TIMEOUT: '0', BROKER_CHILD_COMMAND: 'no-such-mcp' }),
    );
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    const lines = r.err.trimEnd().split('\n');
    assert.equal(lines[0], 'forgejo-mcp-broker: invalid configuration');
    assert.deepEqual(
      lines
        .slice(1)
        .map((l) => l.trim().split(' ')[0])
        .sort(),
      ['BROKER_CALL_TIMEOUT', 'BROKER_CHILD_COMMAND', 'FORGEJO_URL'],
    );
    assert.match(r.err, /BROKER_CHILD_COMMAND \(--child-command\): no-such-mcp was not found on PATH/);
  });

  it('at startup the broker logs one line per problem, with the fix, and keeps running', async () => {
    const b = await startBroker(env({ FORGEJO_CLIENT_ID: 'not-an-app' }));
    try {
      await eventually(() => b.stderr().includes('Forgejo check'), { timeoutMs: 15_000, intervalMs: 50 });
      const res = await fetch(`${b.url}/healthz`);
      assert.equal(res.status, 200, 'a Forgejo problem does not stop the broker');
    } finally {
      b.proc.kill('SIGTERM');
      await b.exited;
    }
    const checks = logLines(b).filter((l) => String(l['msg']).startsWith('Forgejo check'));
    assert.equal(checks.length, 1);
    assert.equal(checks[0]?.['level'], 'error');
    assert.match(
      String(checks[0]?.['msg']),
      /^Forgejo check: Forgejo has no OAuth2 application with FORGEJO_CLIENT_ID not-an-app \(invalid_client: cannot load client with client id: 'not-an-app'\)\. Fix: copy the client ID of the broker's application from Forgejo/,
    );
  });

  it('at startup with the right settings the broker logs that the check passed', async () => {
    const b = await startBroker(env());
    try {
      await eventually(() => b.stderr().includes('Forgejo check'), { timeoutMs: 15_000, intervalMs: 50 });
    } finally {
      b.proc.kill('SIGTERM');
      await b.exited;
    }
    const checks = logLines(b).filter((l) => String(l['msg']).startsWith('Forgejo check'));
    assert.deepEqual(
      checks.map((l) => [l['level'], l['msg']]),
      [['info', 'Forgejo check passed']],
    );
  });
});
