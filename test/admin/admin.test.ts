// The admin command against a running broker process (emulator + stand-in children): every
// subcommand, revocations that the running broker acts on within a second, backup and restore with
// clients keeping their tokens, and key rotation with live clients.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type BrokerProcess, logLines, startBroker } from '../support/broker-process.ts';
import { brokerToken, connectV1, rawInitialize, rawPost, textOf } from '../support/mcp-oauth-client.ts';
import { freePort, registerClient, testBrokerEnv } from '../support/oauth-harness.ts';
import { startEmulatorFor } from '../support/oauth-stack.ts';
import { STANDIN_COMMAND } from '../support/standin.ts';
import { pidAlive, waitFor, waitForAsync } from '../support/wait.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main', 'main.ts');

type Env = Record<string, string>;

function admin(env: Env, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, 'admin', ...args], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BROKER_CHILD_COMMAND: STANDIN_COMMAND, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** For commands that talk to the emulator, which runs in this process: spawnSync would block it. */
function adminAsync(env: Env, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, 'admin', ...args],
      {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BROKER_CHILD_COMMAND: STANDIN_COMMAND, ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, out: stdout, err: stderr }),
    );
  });
}

function adminJson<T>(env: Env, ...args: string[]): T {
  const r = admin(env, ...args, '--json');
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as T;
}

async function stop(b: BrokerProcess): Promise<void> {
  if (b.proc.exitCode === null && b.proc.signalCode === null) {
    b.proc.kill('SIGTERM');
    await b.exited;
  }
}

describe('admin command beside a running broker', () => {
  let emulator: ForgejoEmulator;
  let tmp: string;
  let port: number;
  let env: Env;
  let broker: BrokerProcess;
  const start = async (extra: Env = {}) => {
    broker = await startBroker({ ...env, BROKER_LISTEN: `127.0.0.1:${port}`, ...extra });
    return broker;
  };

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'broker-admin-'));
    port = await freePort();
    emulator = await startEmulatorFor(`http://127.0.0.1:${port}`);
    env = {
      ...testBrokerEnv({ publicUrl: `http://127.0.0.1:${port}`, forgejoUrl: emulator.url, dir: tmp }),
      BROKER_RATE_LIMIT: '1000',
    };
    await start();
  });

  after(async () => {
    await stop(broker);
    await emulator.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('lists users, grants, clients and children; revoke-user and revoke-grant reach the broker within a second', async () => {
    const aliceToken = await brokerToken(broker.url, 'alice');
    const bobToken = await brokerToken(broker.url, 'bob');
    const alice = await connectV1(broker.url, aliceToken);
    const bob = await connectV1(broker.url, bobToken);
    try {
      for (const c of [alice, bob]) await c.client.callTool({ name: 'get_my_user_info', arguments: {} });

      const users = adminJson<{ login: string; grants: number }[]>(env, 'users');
      assert.deepEqual(
        users.map((u) => [u.login, u.grants]),
        [
          ['alice', 1],
          ['bob', 1],
        ],
      );
      const grants = adminJson<{ grantId: string; login: string; clientId: string }[]>(env, 'grants');
      assert.equal(grants.length, 2);
      assert.deepEqual(
        adminJson<{ login: string }[]>(env, 'grants', '--user', 'bob').map((g) => g.login),
        ['bob'],
      );
      const clients = adminJson<{ clientId: string; grants: number; usedAt: number | null }[]>(
        env,
        'clients',
      );
      assert.equal(clients.length, 2);
      assert.ok(clients.every((c) => c.grants === 1 && c.usedAt !== null));
      const children = adminJson<{ pid: number; login: string }[]>(env, 'children');
      assert.deepEqual(children.map((c) => c.login).sort(), ['alice', 'bob']);
      const alicePid = children.find((c) => c.login === 'alice')?.pid as number;
      assert.ok(pidAlive(alicePid));
      const text = admin(env, 'users');
      assert.equal(text.code, 0);
      assert.match(text.out, /^USER\s+ID\s+GRANTS\s+SIGNED IN\s+LAST USED\nalice\s+\d+\s+1\s+yes/);

      // Alice's open GET stream and her child end within a second of the command, bob keeps working.
      const init = await rawInitialize(`${broker.url}/mcp`, aliceToken);
      const sessionId = init.headers.get('mcp-session-id') as string;
      await init.text();
      const stream = await fetch(`${broker.url}/mcp`, {
        headers: {
          authorization: `Bearer ${aliceToken}`,
          accept: 'text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        },
      });
      assert.equal(stream.status, 200);
      const ended = stream.text().then(() => Date.now());
      const revoked = admin(env, 'revoke-user', 'alice');
      const revokedAt = Date.now();
      assert.equal(revoked.code, 0, revoked.err);
      assert.match(revoked.out, /revoked alice: 1 grant\(s\) and the Forgejo credential/);
      const endedAt = await ended;
      assert.ok(endedAt - revokedAt < 1000, `stream closed ${endedAt - revokedAt} ms after the command`);
      await waitFor(() => !pidAlive(alicePid), { timeoutMs: 1000, what: "alice's child stopped" });
      const refused = await rawPost(`${broker.url}/mcp`, aliceToken, {
        jsonrpc: '2.0',
        id: 1,
        method: 'ping',
      });
      assert.equal(refused.status, 401);
      assert.equal(
        textOf(await bob.client.callTool({ name: 'get_my_user_info', arguments: {} })).includes('bob'),
        true,
      );

      const bobGrant = grants.find((g) => g.login === 'bob')?.grantId as string;
      const r = admin(env, 'revoke-grant', bobGrant);
      assert.equal(r.code, 0, r.err);
      await waitForAsync(
        async () =>
          (await rawPost(`${broker.url}/mcp`, bobToken, { jsonrpc: '2.0', id: 1, method: 'ping' })).status ===
          401,
        { timeoutMs: 1000, what: "bob's token refused" },
      );
      assert.equal(admin(env, 'revoke-grant', bobGrant).code, 1, 'a grant that is gone: exit 1');
      assert.equal(admin(env, 'revoke-user', 'nobody').code, 1);
      assert.deepEqual(adminJson<unknown[]>(env, 'children'), []);
    } finally {
      await alice.client.close().catch(() => {});
      await bob.client.close().catch(() => {});
    }
  });

  it('prune-clients deletes only registrations never used; revoke-client ends its grants', async () => {
    const unused = await registerClient(broker.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
    const token = await brokerToken(broker.url, 'bob');
    const before = adminJson<{ clientId: string; usedAt: number | null }[]>(env, 'clients');
    assert.ok(before.some((c) => c.clientId === unused.client_id && c.usedAt === null));
    assert.deepEqual(adminJson<{ pruned: number }>(env, 'prune-clients', '--older-than', '0s'), {
      pruned: 1,
    });
    const afterPrune = adminJson<{ clientId: string; grants: number }[]>(env, 'clients');
    assert.ok(!afterPrune.some((c) => c.clientId === unused.client_id));
    const used = afterPrune.find((c) => c.grants === 1) as { clientId: string };
    const r = admin(env, 'revoke-client', used.clientId);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /revoked its 1 grant\(s\)/);
    await waitForAsync(
      async () =>
        (await rawPost(`${broker.url}/mcp`, token, { jsonrpc: '2.0', id: 1, method: 'ping' })).status === 401,
      { timeoutMs: 1000, what: 'the deleted client’s token refused' },
    );
    assert.equal(admin(env, 'revoke-client', used.clientId).code, 1);
  });

  it('check reaches Forgejo, validates the client credentials and names the redirect URI; a wrong secret exits 1', async () => {
    const ok = await adminAsync(env, 'check');
    assert.equal(ok.code, 0, ok.err + ok.out);
    assert.match(
      ok.out,
      /redirect URI to register in Forgejo's OAuth2 application: http:\/\/127\.0\.0\.1:\d+\/oauth\/callback/,
    );
    assert.match(ok.out, /all checks passed/);
    const bad = await adminAsync(
      { ...env, FORGEJO_CLIENT_SECRET: 'gto_wrong-secret-0123456789abcdef' },
      'check',
      '--json',
    );
    assert.equal(bad.code, 1);
    const report = JSON.parse(bad.out) as { ok: boolean; problems: { problem: string }[] };
    assert.equal(report.ok, false);
    assert.match(report.problems[0]?.problem ?? '', /FORGEJO_CLIENT_SECRET/);
  });

  it('usage errors exit 2 and name the problem; new-key prints a usable key', () => {
    const unknown = admin(env, 'frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "frobnicate"/);
    assert.match(unknown.err, /Usage: forgejo-mcp-broker admin/);
    assert.equal(admin(env, 'revoke-user').code, 2);
    assert.equal(admin(env, 'prune-clients', '--older-than', 'soon').code, 2);
    const noConfig = admin({ BROKER_DB: join(tmp, 'other.db') }, 'users');
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.err, /FORGEJO_URL .* is required/);
    const key = adminJson<{ key: string }>(env, 'new-key').key;
    assert.equal(Buffer.from(key, 'base64').length, 32);
  });

  it('backup while serving, restore refused while the broker runs, then a restored broker keeps every client', async () => {
    const token = await brokerToken(broker.url, 'alice');
    const c = await connectV1(broker.url, token);
    await c.client.callTool({ name: 'get_my_user_info', arguments: {} });
    await c.client.close();
    const file = join(tmp, 'backup.db');
    const b = admin(env, 'backup', file);
    assert.equal(b.code, 0, b.err);
    assert.ok(statSync(file).size > 0);
    assert.equal(admin(env, 'backup', file).code, 1, 'never overwrites');
    const refused = admin(env, 'restore', file);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /is open in process \d+; stop the broker first/);

    await stop(broker);
    const db = env['BROKER_DB'] as string;
    rmSync(db);
    for (const s of ['-wal', '-shm']) rmSync(`${db}${s}`, { force: true });
    const r = admin(env, 'restore', file);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(db));
    await start();
    const again = await connectV1(broker.url, token);
    assert.match(textOf(await again.client.callTool({ name: 'get_my_user_info', arguments: {} })), /alice/);
    await again.client.close();
  });

  it('key rotation: a new key with the old one as previous keeps every client; the old key can then go', async () => {
    const token = await brokerToken(broker.url, 'bob');
    const c = await connectV1(broker.url, token);
    await c.client.callTool({ name: 'get_my_user_info', arguments: {} });
    await c.client.close();
    await stop(broker);
    const oldKey = env['BROKER_SECRET_KEY'] as string;
    const newKey = randomBytes(32).toString('base64');

    // The new key alone cannot open the database: refused at startup with the way out.
    const alone = await startBroker({
      ...env,
      BROKER_LISTEN: `127.0.0.1:${port}`,
      BROKER_SECRET_KEY: newKey,
    }).then(
      () => assert.fail('started with a key that does not fit'),
      (e: Error) => e.message,
    );
    assert.match(alone, /BROKER_PREVIOUS_SECRET_KEYS/);

    env = { ...env, BROKER_SECRET_KEY: newKey, BROKER_PREVIOUS_SECRET_KEYS: oldKey };
    await start();
    const during = await connectV1(broker.url, token);
    assert.match(textOf(await during.client.callTool({ name: 'get_my_user_info', arguments: {} })), /bob/);
    await waitFor(() => !adminJson<{ previousKeysNeeded: boolean }>(env, 'keys').previousKeysNeeded, {
      timeoutMs: 10_000,
      what: 'every value re-sealed under the new key',
    });
    // The broker's stderr reaches this process only when its event loop runs (spawnSync blocked it).
    await waitFor(
      () => logLines(broker).some((l) => String(l['msg']).includes('previous keys may be removed')),
      {
        what: 'the log line saying the previous keys may be removed',
      },
    );
    await during.client.close();
    await stop(broker);

    const { BROKER_PREVIOUS_SECRET_KEYS: _, ...withoutOld } = env;
    env = withoutOld;
    await start();
    const afterRotation = await connectV1(broker.url, token);
    assert.match(
      textOf(await afterRotation.client.callTool({ name: 'get_my_user_info', arguments: {} })),
      /bob/,
    );
    await afterRotation.client.close();
    const keys = adminJson<{ current: string; counts: Record<string, number> }>(env, 'keys');
    assert.deepEqual(Object.keys(keys.counts), [keys.current]);
  });
});
