// A user's MCP server starts while they finish signing in, so their first tool call finds it
// running (BROKER_CHILD_PREWARM, on by default); with it off, the first call starts it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { signInAs } from '../support/sign-in.ts';
import { waitFor } from '../support/wait.ts';

async function firstCall(s: Stack, token: string): Promise<string> {
  const client = new Client({ name: 'prewarm', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  try {
    const r = (await client.callTool({ name: 'get_my_user_info', arguments: {} })) as {
      content: { text: string }[];
    };
    return r.content[0]?.text ?? '';
  } finally {
    await client.close();
  }
}

describe('prewarm after sign-in', () => {
  const stacks: Stack[] = [];
  after(() => Promise.all(stacks.map((s) => s.closeAll())));

  it("starts the user's child before any MCP request, and the first call uses it", async () => {
    const s = await startStack({ env: { BROKER_CHILD_PREWARM: 'on' } });
    stacks.push(s);
    const { token } = await signInAs(s, { login: 'alice' });
    await waitFor(() => s.broker.pool.liveChildren === 1, { what: 'the prewarmed child' });
    assert.equal(s.broker.pool.stats().starts, 1);
    assert.match(await firstCall(s, token), /alice/);
    assert.equal(s.broker.pool.stats().starts, 1, 'no second start for the first call');
  });

  it('starts nothing before the first call with BROKER_CHILD_PREWARM=off', async () => {
    const s = await startStack({ env: { BROKER_CHILD_PREWARM: 'off' } });
    stacks.push(s);
    const { token } = await signInAs(s, { login: 'bob' });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.broker.pool.liveChildren, 0);
    assert.match(await firstCall(s, token), /bob/);
    assert.equal(s.broker.pool.stats().starts, 1);
  });
});
