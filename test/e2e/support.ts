// Shared pieces of the end-to-end tests: Forgejo users seeded with different repositories, reading
// the stand-in's tool results, and the "no secret in the log" check.
import assert from 'node:assert/strict';
import type { EmulatorUser } from '../../emulator/forgejo/emulator.ts';

/** Same ids/logins/passwords as startStack's USERS (the scripted login relies on them), plus repos. */
export const E2E_USERS: EmulatorUser[] = [
  {
    id: 1001,
    login: 'alice',
    password: 'alice-pw',
    orgs: [{ name: 'acme', teams: ['devs'] }],
    repos: [{ name: 'alice-notes' }, { name: 'alice-site', private: true }],
  },
  { id: 1002, login: 'bob', password: 'bob-pw', orgs: [{ name: 'other' }], repos: [{ name: 'bob-tools' }] },
  { id: 1003, login: 'carol', password: 'carol-pw', repos: [{ name: 'carol-lab' }] },
];

export const REPOS_OF: Record<string, string[]> = {
  alice: ['alice-notes', 'alice-site'],
  bob: ['bob-tools'],
  carol: ['carol-lab'],
};

/** The stand-in's version (importing its main.ts would run it). */
export const STANDIN_VERSION = '2.34.1-standin';

export const STANDIN_TOOLS = [
  'create_issue',
  'get_forgejo_mcp_server_version',
  'get_my_user_info',
  'list_my_repos',
  'list_repo_issues',
];

type ToolResult = Record<string, unknown>;

/** The text of a tool result's single text block. */
export function textOf(result: ToolResult): string {
  const content = result['content'] as { type: string; text?: string }[] | undefined;
  assert.ok(Array.isArray(content) && content.length === 1, JSON.stringify(result));
  const [block] = content;
  assert.equal(block?.type, 'text');
  return block.text ?? '';
}

/** list_my_repos as the stand-in returns it ({"Result": [repo…]}): the full names, sorted. */
export function repoNames(result: ToolResult): string[] {
  assert.notEqual(result['isError'], true, JSON.stringify(result));
  const parsed = JSON.parse(textOf(result)) as { Result: { full_name: string }[] };
  return parsed.Result.map((r) => r.full_name).sort();
}

export function fullNames(login: string): string[] {
  return (REPOS_OF[login] ?? []).map((r) => `${login}/${r}`).sort();
}

/** What the e2e tests need of an MCP client; SDK v1's and v2's both fit. */
type ToolClient = {
  listTools(): Promise<{ tools: { name: string }[] }>;
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
};

/** The user's stand-in answers through the client: its tools, its version and that user's repositories. */
export async function assertServesStandin(client: ToolClient, login: string): Promise<void> {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), STANDIN_TOOLS);
  const version = await client.callTool({ name: 'get_forgejo_mcp_server_version', arguments: {} });
  assert.equal(
    textOf(version as ToolResult),
    JSON.stringify({ Result: `Forgejo MCP Server version: ${STANDIN_VERSION}` }),
  );
  const repos = await client.callTool({ name: 'list_my_repos', arguments: {} });
  assert.deepEqual(repoNames(repos as ToolResult), fullNames(login));
}

/** Every secret must be absent from the log text; reports which kind leaked, never the value. */
export function assertNotLogged(logText: string, secrets: Record<string, string | undefined>): void {
  assert.ok(logText.length > 0, 'the log was captured');
  for (const [kind, value] of Object.entries(secrets)) {
    assert.ok(value && value.length >= 16, `${kind} is a real secret to look for`);
    assert.ok(!logText.includes(value), `${kind} appears in the broker's log`);
  }
}
