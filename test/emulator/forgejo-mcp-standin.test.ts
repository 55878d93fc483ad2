// The forgejo-mcp stand-in behaves as the real forgejo-mcp does where the broker depends on it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { loginTokens, startWorld, USERS } from './fixture.ts';

const STANDIN = join(import.meta.dirname, '..', '..', 'emulator', 'forgejo-mcp', 'main.ts');

let emu: ForgejoEmulator;
let aliceToken: string;
before(async () => {
  ({ emu } = await startWorld());
  aliceToken = (await loginTokens(emu)).access_token;
});
after(() => emu.close());

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: 'standin-test', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [STANDIN, '--transport', 'stdio', '--url', emu.url],
      env: { FORGEJO_ACCESS_TOKEN: token, PATH: '/usr/bin:/bin' },
      stderr: 'ignore',
    }),
  );
  return client;
}

function resultOf(r: Record<string, unknown>): unknown {
  const text = (r.content as { type: string; text: string }[])[0]?.text ?? '';
  return (JSON.parse(text) as { Result: unknown }).Result;
}

describe('forgejo-mcp stand-in', () => {
  it('checks the connection twice with the token at startup, then serves the five tools', async () => {
    const before = emu.requests.length;
    const client = await connect(aliceToken);
    const versionCalls = emu.requests.slice(before).filter((r) => r.path === '/api/v1/version');
    assert.equal(versionCalls.length, 2);
    for (const r of versionCalls) {
      assert.equal(r.auth, 'token');
      assert.equal(r.user, 'alice');
    }
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      'create_issue',
      'get_forgejo_mcp_server_version',
      'get_my_user_info',
      'list_my_repos',
      'list_repo_issues',
    ]);
    const v = await client.callTool({ name: 'get_forgejo_mcp_server_version', arguments: {} });
    assert.deepEqual(v.content, [
      { type: 'text', text: '{"Result":"Forgejo MCP Server version: 2.34.1-standin"}' },
    ]);
    await client.close();
  });

  it('works on Forgejo as the token’s user', async () => {
    const client = await connect(aliceToken);
    const me = resultOf(await client.callTool({ name: 'get_my_user_info', arguments: {} })) as {
      login: string;
    };
    assert.equal(me.login, 'alice');
    const repos = resultOf(await client.callTool({ name: 'list_my_repos', arguments: {} })) as {
      full_name: string;
    }[];
    assert.deepEqual(repos.map((r) => r.full_name).sort(), ['alice/alpha', 'alice/secret']);
    const created = resultOf(
      await client.callTool({
        name: 'create_issue',
        arguments: { owner: 'alice', repo: 'alpha', title: 'from the stand-in' },
      }),
    ) as { number: number; title: string };
    assert.equal(created.title, 'from the stand-in');
    const issues = resultOf(
      await client.callTool({
        name: 'list_repo_issues',
        arguments: { owner: 'alice', repo: 'alpha', limit: 50 },
      }),
    ) as { title: string }[];
    assert.ok(issues.some((i) => i.title === 'from the stand-in'));
    await client.close();
  });

  it('turns an API failure into a JSON-RPC -32603 error, not an isError result, and keeps running', async () => {
    const client = await connect(aliceToken);
    await assert.rejects(
      client.callTool({ name: 'list_repo_issues', arguments: { owner: 'bob', repo: 'nope' } }),
      (e: { code?: number; message: string }) =>
        e.code === -32603 && /list_repo_issues err: 404/.test(e.message),
    );
    const v = await client.callTool({ name: 'get_forgejo_mcp_server_version', arguments: {} });
    assert.ok(v.content);
    await client.close();
  });

  it('exits 1 with "connection test failed" on a dead token, writing nothing to stdout', async () => {
    const child = spawn(process.execPath, [STANDIN, '--transport', 'stdio', '--url', emu.url], {
      env: { FORGEJO_ACCESS_TOKEN: 'not-a-token', PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.match(err, /connection test failed: 401/);
    assert.ok(err.includes('\u001b[31mERROR'), 'logs in colour, as zap does');
  });

  it('says nothing on stdout until it is asked, and exits 0 on stdin EOF', async () => {
    const child = spawn(process.execPath, [STANDIN, '--transport', 'stdio', '--url', emu.url], {
      env: { FORGEJO_ACCESS_TOKEN: aliceToken, PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(out, '');
    child.stdin.end();
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
  });

  it('runs as another user with that user’s token', async () => {
    const bobToken = (await loginTokens(emu, { who: USERS.bob })).access_token;
    const client = await connect(bobToken);
    const repos = resultOf(await client.callTool({ name: 'list_my_repos', arguments: {} })) as {
      full_name: string;
    }[];
    assert.deepEqual(
      repos.map((r) => r.full_name),
      ['bob/tools'],
    );
    await client.close();
  });
});
