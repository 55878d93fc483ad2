// Issue 16 acceptance: a grant approved as "read only" on the consent page lists only read tools,
// annotated, to SDK v1 (2025-11-25 sessions) and SDK v2 (stateless 2026-07-28) clients, and every
// write call is refused with the same error as a tool that does not exist. An operator's
// BROKER_TOOLS=read does the same for every grant and takes the choice off the consent page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { notFound } from '../../src/policy/policy.ts';
import { E2E_USERS } from '../e2e/support.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { signInAs } from '../support/sign-in.ts';

const READ_TOOLS = [
  'get_forgejo_mcp_server_version',
  'get_my_user_info',
  'list_my_repos',
  'list_repo_issues',
];
async function signIn(s: Stack, mode: string): Promise<{ token: string; consent: string }> {
  return signInAs(s, { mode });
}

type Listed = { name: string; annotations?: Record<string, unknown> };
type AnyClient = {
  listTools(): Promise<{ tools: Listed[] }>;
  callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
};

async function v1(s: Stack, token: string): Promise<AnyClient & { close(): Promise<void> }> {
  const client = new Client({ name: 'ro v1', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client as unknown as AnyClient & { close(): Promise<void> };
}

async function v2(s: Stack, token: string): Promise<AnyClient & { close(): Promise<void> }> {
  const client = new ClientV2(
    { name: 'ro v2', version: '2' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(
    new TransportV2(new URL(`${s.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client as unknown as AnyClient & { close(): Promise<void> };
}

async function refusal(c: AnyClient, name: string): Promise<{ code: unknown; message: string }> {
  const e = (await c.callTool({ name, arguments: { owner: 'alice', repo: 'alice-notes', title: 'x' } }).then(
    () => assert.fail(`${name} was not refused`),
    (err: { code?: unknown; message: string }) => err,
  )) as { code?: unknown; message: string };
  return { code: e.code, message: e.message };
}

describe('a read-only grant', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ emulator: { users: E2E_USERS } });
  });
  after(() => s.closeAll());

  it('the consent page offers the choice, names the broker, the lifetimes and where to revoke', async () => {
    const { consent } = await signIn(s, 'read');
    assert.match(consent, /id="mode-read" name="mode" value="read"/);
    assert.match(consent, /id="mode-write" name="mode" value="write" checked/);
    assert.match(consent, new RegExp(`id="broker-host">${new URL(s.url).host}<`));
    assert.match(consent, /valid 8 hours/);
    assert.match(consent, /after 30 days without use/);
    assert.match(consent, /href="\/account"/);
    assert.match(consent, /name is not verified/);
  });

  for (const [label, connect] of [
    ['SDK v1, 2025-11-25 session', v1],
    ['SDK v2, stateless 2026-07-28', v2],
  ] as const) {
    it(`${label}: lists only the read tools, annotated, and every write call is refused like an unknown tool`, async () => {
      const ro = await connect(s, (await signIn(s, 'read')).token);
      const rw = await connect(s, (await signIn(s, 'write')).token);
      const { tools } = await ro.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), READ_TOOLS);
      for (const t of tools) assert.equal(t.annotations?.['readOnlyHint'], true, t.name);
      const all = (await rw.listTools()).tools;
      assert.deepEqual(all.find((t) => t.name === 'create_issue')?.annotations, {
        title: 'Create an issue',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      });
      const hidden = await refusal(ro, 'create_issue');
      assert.ok(
        s.logs
          .lines()
          .some(
            (l) =>
              l['event'] === 'policy_refused' &&
              l['tool'] === 'tools/call create_issue' &&
              l['reason'] === 'read-only connection',
          ),
        'the refusal is in the audit trail',
      );
      const unknown = await refusal(rw, 'no_such_tool');
      assert.equal(hidden.code, -32602);
      assert.deepEqual(hidden, {
        code: unknown.code,
        message: unknown.message.replace('no_such_tool', 'create_issue'),
      });
      assert.ok(hidden.message.includes(notFound.tool('create_issue').message), hidden.message);
      // Reads still work, and the write grant's write goes through.
      await ro.callTool({ name: 'list_my_repos', arguments: {} });
      const made = (await rw.callTool({
        name: 'create_issue',
        arguments: { owner: 'alice', repo: 'alice-notes', title: 'from rw' },
      })) as { isError?: boolean };
      assert.notEqual(made.isError, true);
      await ro.close();
      await rw.close();
    });
  }

  it('a consent form with no valid choice gives read only', async () => {
    const bad = await v1(s, (await signIn(s, 'admin')).token);
    assert.deepEqual((await bad.listTools()).tools.map((t) => t.name).sort(), READ_TOOLS);
    await bad.close();
  });
});

describe('an operator policy of BROKER_TOOLS=read', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      emulator: { users: E2E_USERS },
      env: { BROKER_TOOLS: 'read', BROKER_TOOLS_DENY: 'list_repo_*' },
    });
  });
  after(() => s.closeAll());

  it('offers no write choice, and even a forged write choice lists read tools only, minus the denied', async () => {
    const { token, consent } = await signIn(s, 'write');
    assert.match(consent, /id="mode-read-only"/);
    assert.doesNotMatch(consent, /id="mode-write"/);
    for (const connect of [v1, v2]) {
      const c = await connect(s, token);
      assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), [
        'get_forgejo_mcp_server_version',
        'get_my_user_info',
        'list_my_repos',
      ]);
      assert.equal(
        (await refusal(c, 'list_repo_issues')).message.includes("tool 'list_repo_issues' not found"),
        true,
      );
      assert.equal((await refusal(c, 'create_issue')).code, -32602);
      await c.close();
    }
  });
});
