// `DEMO_FORGEJO=real make demo`: the demo on a real Gitea (built or reused by scripts/real-deps.sh)
// seeded with the demo's users: the banner, an MCP client through the whole OAuth flow with Gitea's
// own login and authorize pages as alice, her repositories from Gitea, then Ctrl-C leaves nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
const data = mkdtempSync(join(tmpdir(), 'broker-demo-real-'));
after(() => rmSync(data, { recursive: true, force: true }));

it('DEMO_FORGEJO=real make demo: progress lines, banner, OAuth through Gitea as alice, her repositories, Ctrl-C leaves nothing', async () => {
  const port = await freePort();
  const forgejoPort = await freePort();
  const demo = spawn('make', ['--no-print-directory', 'demo'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEMO_FORGEJO: 'real',
      DEMO_PORT: String(port),
      DEMO_FORGEJO_PORT: String(forgejoPort),
      DEMO_DATA: data,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
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
      timeoutMs: 180_000,
      intervalMs: 200,
    });
    const mcpUrl = `http://127.0.0.1:${port}/mcp`;
    assert.ok(out.includes(`MCP URL        ${mcpUrl}`), `no banner:\n${out}\n${err}`);
    assert.match(
      out,
      new RegExp(`Forgejo        http://127\\.0\\.0\\.1:${forgejoPort}  \\(real Gitea 1\\.27\\.3;`),
    );
    assert.match(err, /^real-deps: .*Gitea v1\.27\.3/m, 'a progress line of the build (or reuse)');
    assert.match(err, /^demo: starting Gitea on port \d+ and seeding alice, bob$/m);

    const provider = new ScriptedOAuthProvider<OAuthClientInformationMixed, OAuthTokens, OAuthDiscoveryState>(
      {
        redirectUrl: `http://127.0.0.1:${await freePort()}/callback`,
        who: { login: 'alice', password: 'alice-password' },
        clientName: 'demo test (real Gitea)',
      },
    );
    const first = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    await assert.rejects(new Client({ name: 'demo-test', version: '1' }).connect(first), UnauthorizedError);
    await first.finishAuth(provider.code());
    const client = new Client({ name: 'demo-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
    const r = await client.callTool({ name: 'list_my_repos', arguments: {} });
    const text = (r.content as { text: string }[])[0]?.text ?? '';
    const repos = (JSON.parse(text) as { Result: { full_name: string; private: boolean }[] }).Result;
    assert.deepEqual(repos.map((x) => `${x.full_name}${x.private ? ' (private)' : ''}`).sort(), [
      'alice/looking-glass',
      'alice/rabbit-hole (private)',
    ]);
    await client.close();
    assert.ok(demoProcesses(data).length >= 3, 'Gitea, the broker and the user’s MCP server were running');
  } finally {
    process.kill(-(demo.pid as number), 'SIGINT');
  }
  await exited;
  await eventually(() => demoProcesses(data).length === 0, { timeoutMs: 15_000, intervalMs: 100 });
  assert.deepEqual(demoProcesses(data), [], 'a process of the demo (Gitea included) survived Ctrl-C');
});
