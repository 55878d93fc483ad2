// `make demo` as a newcomer runs it: wait for the banner, connect an MCP client through the whole
// OAuth flow as a demo user, call a tool, press Ctrl-C, and find no process of the demo left.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { type OAuthDiscoveryState, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { freePort } from '../support/oauth-harness.ts';
import { ScriptedOAuthProvider } from '../support/scripted-oauth.ts';
import { processesMentioning as demoProcesses, eventually } from '../support/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const data = mkdtempSync(join(tmpdir(), 'broker-demo-'));
after(() => rmSync(data, { recursive: true, force: true }));

it('make demo: banner, OAuth as a demo user, list_my_repos, then Ctrl-C leaves nothing behind', async () => {
  const port = await freePort();
  const forgejoPort = await freePort();
  const demo = spawn('make', ['--no-print-directory', 'demo'], {
    cwd: ROOT,
    env: { ...process.env, DEMO_PORT: String(port), DEMO_FORGEJO_PORT: String(forgejoPort), DEMO_DATA: data },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group, so Ctrl-C can be sent to the whole of it as a terminal would.
    detached: true,
  });
  let out = '';
  let err = '';
  demo.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  demo.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<void>((resolve) => demo.once('exit', () => resolve()));
  try {
    await eventually(() => out.includes('Ctrl-C stops everything') || demo.exitCode !== null, {
      timeoutMs: 90_000,
      intervalMs: 100,
    });
    const mcpUrl = `http://127.0.0.1:${port}/mcp`;
    assert.ok(out.includes(`MCP URL        ${mcpUrl}`), `no banner:\n${out}\n${err}`);
    assert.match(out, /alice \/ alice-password/);
    assert.ok(
      out.includes(`Broker log     ${join(data, 'broker.log')}  (here: warnings and errors only)`),
      `the banner says where the log goes:\n${out}`,
    );
    // Enter repeats the banner, for when the terminal has scrolled it away.
    assert.equal(out.split('MCP URL ').length - 1, 1);
    demo.stdin.write('\n');
    await eventually(() => out.split('MCP URL ').length - 1 === 2, { timeoutMs: 10_000, intervalMs: 50 });
    assert.match(out, /npx mcp-remote http:\/\/127\.0\.0\.1:\d+\/mcp/);
    assert.match(out, /npx @modelcontextprotocol\/inspector/);
    // Inspector 2's steps (checked by hand against 2.12.0): its page has no transport menu or auth settings.
    assert.match(
      out,
      /Add Servers → \+ Add manually, Transport: streamable-http, URL: http:\/\/127\.0\.0\.1:\d+\/mcp/,
    );

    const callbackPort = await freePort();
    const provider = new ScriptedOAuthProvider<OAuthClientInformationMixed, OAuthTokens, OAuthDiscoveryState>(
      {
        redirectUrl: `http://127.0.0.1:${callbackPort}/callback`,
        who: { login: 'alice', password: 'alice-password' },
        clientName: 'demo test',
      },
    );
    const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    await assert.rejects(new Client({ name: 'demo-test', version: '1' }).connect(first), UnauthorizedError);
    await first.finishAuth(provider.code());
    const client = new Client({ name: 'demo-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
    const r = await client.callTool({ name: 'list_my_repos', arguments: {} });
    const text = (r.content as { text: string }[])[0]?.text ?? '';
    const repos = (JSON.parse(text) as { Result: { full_name: string }[] }).Result.map(
      (x) => x.full_name,
    ).sort();
    assert.deepEqual(repos, ['alice/looking-glass', 'alice/rabbit-hole']);
    await client.close();
    assert.ok(demoProcesses(data).length >= 2, 'the broker and the user’s MCP server were running');
  } finally {
    process.kill(-(demo.pid as number), 'SIGINT');
  }
  // make itself dies of the SIGINT, as on a terminal; what matters is that nothing of the demo is left.
  await exited;
  await eventually(() => demoProcesses(data).length === 0, { timeoutMs: 10_000, intervalMs: 100 });
  assert.deepEqual(demoProcesses(data), [], 'a process of the demo survived Ctrl-C');
  // The broker's log went to the file; the terminal got none of its info lines.
  const log = readFileSync(join(data, 'broker.log'), 'utf8');
  assert.match(log, /"msg":"broker started"/);
  assert.match(log, /"msg":"authorization granted"/);
  assert.match(log, /"msg":"broker stopped"/);
  assert.doesNotMatch(out + err, /"level":"info"|broker info|authorization granted/);
});

it('a port already in use stops the demo at once with the setting that moves it', async () => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const taken = (busy.address() as AddressInfo).port;
  const free = await freePort();
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const demo = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.ts')], {
        cwd: ROOT,
        env: { ...process.env, DEMO_DATA: data, ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      demo.stderr.setEncoding('utf8').on('data', (d: string) => {
        err += d;
      });
      demo.once('close', (code) => resolve({ code, err }));
    });
  try {
    const broker = await run({ DEMO_PORT: String(taken), DEMO_FORGEJO_PORT: String(free) });
    assert.equal(broker.code, 1);
    assert.equal(
      broker.err,
      `demo: port ${taken} (the broker) is already in use on 127.0.0.1; choose another with DEMO_PORT, e.g. \`DEMO_PORT=8090 make demo\`\n`,
    );
    const emulator = await run({ DEMO_PORT: String(free), DEMO_FORGEJO_PORT: String(taken) });
    assert.equal(emulator.code, 1);
    assert.match(
      emulator.err,
      new RegExp(
        `port ${taken} \\(the Forgejo emulator\\) is already in use.*DEMO_FORGEJO_PORT=8091 make demo`,
      ),
    );
  } finally {
    await new Promise((r) => busy.close(r));
  }
});

it('the broker stops by itself when the demo script is killed outright (SIGKILL, no forwarding)', async () => {
  const killedData = mkdtempSync(join(tmpdir(), 'broker-demo-killed-'));
  try {
    const port = await freePort();
    const forgejoPort = await freePort();
    const demo = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.ts')], {
      cwd: ROOT,
      env: {
        ...process.env,
        DEMO_PORT: String(port),
        DEMO_FORGEJO_PORT: String(forgejoPort),
        DEMO_DATA: killedData,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    demo.stderr.resume();
    const exited = new Promise<void>((resolve) => demo.once('exit', () => resolve()));
    await eventually(() => out.includes('Ctrl-C stops everything') || demo.exitCode !== null, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    assert.match(out, /MCP URL/, `no banner:\n${out}`);
    const broker = demoProcesses(killedData).filter((p) => p !== demo.pid);
    assert.equal(broker.length, 1, 'the broker runs beside the demo script');
    demo.kill('SIGKILL');
    await exited;
    await eventually(() => demoProcesses(killedData).length === 0, { timeoutMs: 10_000, intervalMs: 100 });
    assert.deepEqual(demoProcesses(killedData), [], 'the broker outlived the killed demo script');
  } finally {
    for (const p of demoProcesses(killedData)) process.kill(p, 'SIGKILL');
    rmSync(killedData, { recursive: true, force: true });
  }
});
