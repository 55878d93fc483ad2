// Issue 5 acceptance with the spawned broker process: mcp-remote (the stdio bridge Claude Desktop
// uses) runs as a subprocess, does discovery, DCR and the authorization flow against the broker.
// Its browser is a script that hands the authorization URL to this test, which walks consent and
// the emulated Forgejo login and then calls mcp-remote's loopback callback. The SDK v1 stdio client
// drives mcp-remote's stdin/stdout.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type ForgejoEmulator, startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { type BrokerProcess, startBroker } from '../support/broker-process.ts';
import {
  FORGEJO_CLIENT_ID,
  FORGEJO_CLIENT_SECRET,
  freePort,
  testBrokerEnv,
} from '../support/oauth-harness.ts';
import { walkAuthorization } from '../support/scripted-oauth.ts';
import { eventually, pidAlive, waitForValue } from '../support/wait.ts';
import { assertNotLogged, E2E_USERS, fullNames, repoNames, STANDIN_TOOLS } from './support.ts';

const PROXY = join(import.meta.dirname, '..', '..', 'node_modules', 'mcp-remote', 'dist', 'proxy.js');

let tmp: string;
let emulator: ForgejoEmulator;
let broker: BrokerProcess;
const secretKey = randomBytes(32).toString('base64');

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'broker-e2e-remote-'));
  emulator = await startForgejoEmulator({
    users: E2E_USERS,
    apps: [
      { clientId: FORGEJO_CLIENT_ID, clientSecret: FORGEJO_CLIENT_SECRET, name: 'broker', redirectUris: [] },
    ],
  });
  const port = await freePort();
  emulator.setRedirectUris(FORGEJO_CLIENT_ID, [`http://127.0.0.1:${port}/oauth/callback`]);
  broker = await startBroker({
    BROKER_LISTEN: `127.0.0.1:${port}`,
    ...testBrokerEnv({
      publicUrl: `http://127.0.0.1:${port}`,
      forgejoUrl: emulator.url,
      dir: tmp,
      secretKey,
    }),
    LOG_LEVEL: 'debug',
  });
});

after(async () => {
  if (broker.proc.exitCode === null) {
    broker.proc.kill('SIGTERM');
    await broker.exited;
  }
  await emulator.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Pids of live processes whose environment names this config dir (mcp-remote and anything it ran). */
function processesUsing(configDir: string): number[] {
  const marker = `MCP_REMOTE_CONFIG_DIR=${configDir}\0`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1');
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      // A zombie ("Z") has exited already; its parent just has not collected it yet.
      if (env.includes(marker) && !/^\d+ \(.*\) Z /.test(stat)) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return found;
}

it('4. mcp-remote as a subprocess authorizes through a fake browser and lists the tools over stdio; no mcp-remote survives', async () => {
  const configDir = mkdtempSync(join(tmp, 'mcp-remote-'));
  const urlFile = join(tmp, 'browser-url.txt');
  const fakeBrowser = join(tmp, 'fake-browser.sh');
  writeFileSync(fakeBrowser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${urlFile}'\n`);
  chmodSync(fakeBrowser, 0o700);
  const callbackPort = await freePort();
  const serverUrl = `${broker.url}/mcp`;

  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [PROXY, serverUrl, String(callbackPort), '--auth-timeout', '60'],
    // getDefaultEnvironment() (HOME, PATH, …) is merged in; DISPLAY is not, so `open` uses $BROWSER.
    env: { MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: fakeBrowser },
    stderr: 'pipe',
  });
  let remoteErr = '';
  transport.stderr?.on('data', (d: Buffer) => {
    remoteErr += d.toString('utf8');
  });
  const client = new Client({ name: 'e2e via mcp-remote', version: '1.0.0' });
  const connected = client.connect(transport, { timeout: 90_000 });
  let pid: number | null = null;
  try {
    const authUrl = await waitForValue(
      () => (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').split('\n')[0] || undefined : undefined),
      { timeoutMs: 30_000, what: 'the fake browser to get the authorization URL' },
    );
    pid = transport.pid;
    assert.ok(pid, 'mcp-remote is running');
    assert.ok(processesUsing(configDir).includes(pid), 'the process finder sees mcp-remote');
    assert.ok(authUrl.startsWith(`${broker.url}/oauth/authorize?`), authUrl);
    const redirect = new URL(authUrl).searchParams.get('redirect_uri') ?? '';
    assert.equal(redirect, `http://localhost:${callbackPort}/oauth/callback`);

    const callback = await walkAuthorization(authUrl, (u) => u.href.startsWith(`${redirect}?`), {
      login: 'alice',
      password: 'alice-pw',
    });
    assert.equal(callback.searchParams.get('iss'), broker.url);
    const cb = await fetch(callback);
    assert.equal(cb.status, 200, await cb.text());

    await connected;
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), STANDIN_TOOLS);
    const repos = await client.callTool({ name: 'list_my_repos', arguments: {} });
    assert.deepEqual(repoNames(repos), fullNames('alice'));
    assert.match(broker.stderr(), /"msg":"[^"]*"/, 'the broker logged');
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- mcp-remote stderr ---\n${remoteErr.slice(-3000)}`);
  } finally {
    await client.close();
    await connected.catch(() => {});
    // The SDK closes stdin, then SIGTERMs, then SIGKILLs mcp-remote; nothing of it may be left.
    await eventually(() => processesUsing(configDir).length === 0, { timeoutMs: 10_000, intervalMs: 50 });
    const left = processesUsing(configDir);
    for (const p of left) process.kill(p, 'SIGKILL');
    assert.deepEqual(left, [], 'no mcp-remote process survives');
    if (pid !== null) assert.equal(pidAlive(pid), false, 'mcp-remote itself is gone');
  }

  // What mcp-remote stored, and the broker's Forgejo credential for alice, never reach the log.
  const dir = join(configDir, readdirSync(configDir).find((d) => d.startsWith('mcp-remote')) ?? '');
  const tokensFile = readdirSync(dir).find((f) => f.endsWith('_tokens.json'));
  assert.ok(tokensFile, `mcp-remote stored tokens: ${readdirSync(dir).join(', ')}`);
  const tokens = JSON.parse(readFileSync(join(dir, tokensFile), 'utf8')) as {
    access_token: string;
    refresh_token: string;
  };
  broker.proc.kill('SIGTERM');
  assert.equal((await broker.exited).code, 0);
  const store = new SqliteStore({
    path: join(tmp, 'broker.db'),
    secretKey: Buffer.from(secretKey, 'base64'),
  });
  const cred = await store.getCredential(1001);
  await store.close();
  assert.ok(cred);
  assertNotLogged(broker.stderr(), {
    'access token': tokens.access_token,
    'refresh token': tokens.refresh_token,
    'Forgejo access token': cred.accessToken,
    'Forgejo refresh token': cred.refreshToken,
    'broker secret key': secretKey,
  });
});
