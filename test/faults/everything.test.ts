// The reference server (@modelcontextprotocol/server-everything, stdio) as the child behind the
// real broker: OAuth token from the real flow, SDK v1 client on /mcp.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { EVERYTHING } from '../support/gateway-stack.ts';
import { brokerToken, type Connected, connectV1, rawPost, textOf } from '../support/mcp-oauth-client.ts';
import { FORGEJO_CLIENT_SECRET } from '../support/oauth-harness.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';
import { groupAlive } from '../support/wait.ts';

const SECRET_KEY = randomBytes(32).toString('base64');

describe('server-everything behind the broker', () => {
  let s: Stack;
  let c: Connected;
  let token: string;
  const asked: string[] = [];

  before(async () => {
    s = await startStack({
      env: {
        BROKER_CHILD_COMMAND: `"${process.execPath}" "${EVERYTHING}" stdio`,
        BROKER_SECRET_KEY: SECRET_KEY,
      },
    });
    token = await brokerToken(s.url);
    c = await connectV1(s.url, token, { sampling: {}, elicitation: {} });
    c.client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      const first = req.params.messages[0]?.content;
      asked.push(`sampling: ${first && 'text' in first ? first.text : '?'}`);
      return { role: 'assistant', content: { type: 'text', text: 'an answer from the client' }, model: 'm' };
    });
    c.client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(`elicitation: ${req.params.message}`);
      return { action: 'accept', content: { name: 'Alice Tester', check: true } };
    });
  });
  after(async () => {
    await c?.client.close();
    const pids = s.broker.supervisor.children().map((ch) => ch.pid);
    await s.closeAll();
    for (const pid of pids) assert.equal(groupAlive(pid), false, `child ${pid} outlived the broker`);
  });

  it('streams a long-running tool’s progress on its own stream before the result', async () => {
    const events: string[] = [];
    const r = await c.client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } },
      undefined,
      { onprogress: (p) => events.push(`progress ${p.progress}/${p.total}`) },
    );
    events.push(textOf(r));
    assert.equal(events.length, 5, events.join('\n'));
    assert.deepEqual(events.slice(0, 4), ['progress 1/4', 'progress 2/4', 'progress 3/4', 'progress 4/4']);
    assert.match(events[4] as string, /^Long running operation completed\. Duration: 1 seconds, Steps: 4\./);
  });

  it('sends that progress on the POST’s own SSE stream, ahead of the response, with the client’s token', async () => {
    const res = await rawPost(
      `${s.url}/mcp`,
      token,
      {
        jsonrpc: '2.0',
        id: 'long-1',
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 0.6, steps: 3 },
          _meta: { progressToken: 'my-token' },
        },
      },
      { sessionId: c.transport.sessionId as string },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const messages = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map(
        (l) => JSON.parse(l.slice(6)) as { method?: string; id?: string; params?: Record<string, unknown> },
      );
    assert.deepEqual(
      messages.map((m) =>
        m.method ? `${m.method} ${m.params?.['progressToken']} ${m.params?.['progress']}` : m.id,
      ),
      [
        'notifications/progress my-token 1',
        'notifications/progress my-token 2',
        'notifications/progress my-token 3',
        'long-1',
      ],
    );
  });

  it('completes a sampling request through the broker', async () => {
    asked.length = 0;
    const r = await c.client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'what is 2+2?', maxTokens: 20 },
    });
    assert.deepEqual(asked, ['sampling: Resource trigger-sampling-request context: what is 2+2?']);
    assert.match(JSON.stringify(r), /an answer from the client/);
  });

  it('completes an elicitation request through the broker', async () => {
    asked.length = 0;
    const r = await c.client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.equal(asked.length, 1, asked.join('\n'));
    assert.match(asked[0] as string, /^elicitation: /);
    assert.match(JSON.stringify(r), /Alice Tester/);
  });

  it('gives the child only FORGEJO_URL, FORGEJO_ACCESS_TOKEN, PATH and HOME: no broker secret', async () => {
    const env = JSON.parse(textOf(await c.client.callTool({ name: 'get-env', arguments: {} }))) as Record<
      string,
      string
    >;
    // Under bubblewrap (BROKER_CHILD_ISOLATION=auto finds it here) PWD is added: the sandbox's /tmp.
    const isolated = s.broker.supervisor.isolation.kind === 'bwrap';
    assert.deepEqual(
      Object.keys(env).sort(),
      ['FORGEJO_ACCESS_TOKEN', 'FORGEJO_URL', 'HOME', 'PATH', ...(isolated ? ['PWD'] : [])].sort(),
    );
    if (isolated) assert.equal(env['PWD'], env['HOME']);
    assert.equal(env['FORGEJO_URL'], s.emulator.url);
    const forgejo = await s.broker.auth.credentials.accessToken(1001);
    assert.equal(env['FORGEJO_ACCESS_TOKEN'], forgejo.token, 'the user’s own Forgejo token');
    const dump = JSON.stringify(env);
    assert.ok(!dump.includes(FORGEJO_CLIENT_SECRET), 'no FORGEJO_CLIENT_SECRET value');
    assert.ok(!dump.includes(SECRET_KEY), 'no BROKER_SECRET_KEY value');
    assert.ok(!/BROKER_/.test(dump), 'no BROKER_* variable');
  });
});
