import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_CLIENT_SECRET,
  DEMO_REDIRECT_URI,
  demoSeed,
} from '../../emulator/forgejo/seed.ts';
import { UserAgent } from '../support/user-agent.ts';

const MAIN = fileURLToPath(new URL('../../emulator/forgejo/main.ts', import.meta.url));

async function start(args: string[]): Promise<{ child: ChildProcess; line: string; url: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`emulator exited with ${code}`);
    }),
  ])) as [string];
  const url = /listening on (\S+)/.exec(line)?.[1];
  assert.ok(url, line);
  return { child, line, url };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  const exited = once(child, 'exit');
  child.kill(signal);
  const [code] = await exited;
  return code as number | null;
}

describe('emulator command', () => {
  it('serves the demo seed, prints its URL and app credentials, stops on SIGTERM', async () => {
    const { child, line, url } = await start([
      '--port',
      '0',
      '--seed',
      'demo',
      '--redirect-uri',
      'http://127.0.0.1:9999/oauth/callback',
      '--access-ttl',
      '60',
    ]);
    try {
      assert.match(line, new RegExp(`client_id=${DEMO_CLIENT_ID} client_secret=${DEMO_CLIENT_SECRET}`));
      const version = await fetch(`${url}/api/v1/version`);
      assert.deepEqual(await version.json(), { version: '16.0.1+gitea-1.22.0' });
      // The app accepts the overridden redirect URI, and alice can sign in.
      const ua = new UserAgent();
      const login = await ua.get(`${url}/user/login`);
      const home = await ua.submit(login, 'login-form', {
        fields: { user_name: 'alice', password: 'alice-password' },
        button: 'login-submit',
      });
      assert.match(home.body, /signed-in-as">alice</);
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: DEMO_CLIENT_ID,
        redirect_uri: 'http://127.0.0.1:9999/oauth/callback',
      });
      const consent = await ua.get(`${url}/login/oauth/authorize?${q}`);
      assert.equal(consent.status, 200);
      assert.match(consent.body, /id="grant-form"/);
      assert.equal(await stop(child, 'SIGTERM'), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('stops cleanly on SIGINT', async () => {
    const { child } = await start(['--port', '0']);
    try {
      assert.equal(await stop(child, 'SIGINT'), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses bad flags with exit status 2', async () => {
    const child = spawn(process.execPath, [MAIN, '--access-ttl', 'soon'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(stderr, /--access-ttl must be an integer from 1 to/);
  });
});

describe('demo seed', () => {
  it('starts in-process with two users, alice in an org and team, and the broker app', async () => {
    const emu = await startForgejoEmulator(demoSeed);
    try {
      assert.deepEqual(
        demoSeed.users.map((u) => u.login),
        ['alice', 'bob'],
      );
      assert.deepEqual(demoSeed.apps[0]?.redirectUris, [DEMO_REDIRECT_URI]);
      const ua = new UserAgent();
      const login = await ua.get(`${emu.url}/user/login`);
      const home = await ua.submit(login, 'login-form', {
        fields: { user_name: 'bob', password: 'bob-password' },
        button: 'login-submit',
      });
      assert.match(home.body, /signed-in-as">bob</);
      const basic = `Basic ${Buffer.from('alice:alice-password').toString('base64')}`;
      const repos = await fetch(`${emu.url}/api/v1/user/repos`, { headers: { authorization: basic } });
      assert.ok(((await repos.json()) as unknown[]).length >= 2);
    } finally {
      await emu.close();
    }
  });
});
