// A child's stderr is for the operator, scrubbed: the client that made it fail gets a short
// generic error, and neither side ever sees the child's token or anything shaped like one.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type GatewayStack, startGatewayStack } from '../support/gateway-stack.ts';
import { rawInitialize, rawPost } from '../support/mcp-oauth-client.ts';
import { eventually } from '../support/wait.ts';

// What the fault-server's `leak` tool prints, and the token the stack gives alice's child.
const LEAKS = ['forgejo-1', 'eyJhbGciOiJSUzI1NiJ9', 'c2lnbmF0dXJl', 'gto_abcdefghijklmnop'];

const stacks: GatewayStack[] = [];
after(() => Promise.all(stacks.map((s) => s.close())));

async function stack(args?: string[]): Promise<GatewayStack> {
  const s = await startGatewayStack(args ? { args } : {});
  stacks.push(s);
  return s;
}

function assertClean(text: string, where: string): void {
  for (const leak of LEAKS) assert.ok(!text.includes(leak), `${where} holds ${leak}: ${text}`);
}

describe("a child's stderr", () => {
  it('reaches a client as a short generic error and the log only scrubbed', async () => {
    const s = await stack();
    const client = new Client({ name: 't', version: '0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(s.url), {
        requestInit: { headers: { authorization: 'Bearer token-alice' } },
      }),
    );
    const err = await client.callTool({ name: 'leak', arguments: {} }).then(
      () => assert.fail('the call must fail'),
      (e: Error) => e,
    );
    assert.match(err.message, /the MCP server exited with status 3$/);
    assertClean(err.message, 'the client error');
    const exited = () => s.logs.lines().find((l) => Array.isArray(l['stderrTail']));
    await eventually(() => exited() !== undefined);
    assertClean(s.logs.text(), 'the log');
    // The operator still learns what the child said, with the secrets cut out.
    const tail = exited()?.['stderrTail'] as string[];
    assert.deepEqual(tail, [
      'fault-server: token [redacted] refused',
      'fault-server: id_token [redacted]',
      'fault-server: Authorization: Bearer [redacted]',
    ]);
    await client.close();
  });

  it('of a child that dies at start stays out of the answer too', async () => {
    const s = await stack([
      '-e',
      'process.stderr.write("bad token " + process.env.FORGEJO_ACCESS_TOKEN + " eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl\\n"); process.exit(1)',
    ]);
    const res = await rawInitialize(s.url, 'token-alice');
    const sessionId = res.headers.get('mcp-session-id') ?? undefined;
    const body = await res.text();
    const call = await rawPost(
      s.url,
      'token-alice',
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      sessionId ? { sessionId } : {},
    );
    const answer = await call.text();
    assertClean(body + answer, 'the answers');
    assert.match(body + answer, /"error"/);
    await eventually(() => s.logs.lines().some((l) => l['msg'] === 'child exited at start'));
    assertClean(s.logs.text(), 'the log');
    assert.match(s.logs.text(), /bad token \[redacted\] \[redacted\]/);
  });
});
