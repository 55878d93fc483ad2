// Issue 6 acceptance: Debian's `caddy` runs the repository's Caddyfile (adapted only in its address and
// `tls internal`) in front of the real broker process, whose public URL is Caddy's https URL. The
// official SDK v1 client does the whole OAuth flow over HTTPS, trusting Caddy's local CA, then calls
// server-everything's long-running tool: its progress notifications must reach the client as the
// child sends them, spread over the run and ahead of the result. A control runs the same measurement
// through a proxy that buffers responses and sees it fail.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { type OAuthDiscoveryState, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type BrokerProcess, startBroker } from '../support/broker-process.ts';
import { bufferingProxy } from '../support/buffering-proxy.ts';
import { type CaddyProxy, startCaddy } from '../support/caddy.ts';
import { EVERYTHING } from '../support/gateway-stack.ts';
import { textOf } from '../support/mcp-oauth-client.ts';
import { freePort, testBrokerEnv } from '../support/oauth-harness.ts';
import { startEmulatorFor } from '../support/oauth-stack.ts';
import { ScriptedOAuthProvider } from '../support/scripted-oauth.ts';
import { groupAlive } from '../support/wait.ts';

/** The long-running tool's run: one progress notification every STEP_MS, the result right after the last. */
const DURATION_S = 3;
const STEPS = 3;
const STEP_MS = (DURATION_S * 1000) / STEPS;

type Provider = ScriptedOAuthProvider<OAuthClientInformationMixed, OAuthTokens, OAuthDiscoveryState>;

type Run = { progress: Array<{ step: string; at: number }>; resultAt: number; started: number };

/** Calls server-everything's long-running tool with a progress callback; notes when each message arrives. */
async function longOperation(client: Client): Promise<Run> {
  const progress: Run['progress'] = [];
  const started = performance.now();
  const result = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: DURATION_S, steps: STEPS } },
    undefined,
    { onprogress: (p) => progress.push({ step: `${p.progress}/${p.total}`, at: performance.now() }) },
  );
  const resultAt = performance.now();
  assert.match(textOf(result), /^Long running operation completed\. Duration: 3 seconds, Steps: 3\./);
  assert.deepEqual(
    progress.map((p) => p.step),
    ['1/3', '2/3', '3/3'],
  );
  return { progress, resultAt, started };
}

/**
 * Why the run does not look streamed, or undefined if it does. The child sends progress 1 one step
 * after the call, progress 2 a step later, and the result right after progress 3, a step after
 * that. A proxy holding the stream back delivers them all together; half a step to a step of slack
 * covers a slow reader.
 */
function timelineOf(run: Run): string {
  return [
    ...run.progress.map((p) => `${p.step} at ${Math.round(p.at - run.started)} ms`),
    `result at ${Math.round(run.resultAt - run.started)} ms`,
  ].join(', ');
}

function streamingProblem(run: Run): string | undefined {
  const timeline = timelineOf(run);
  const firstAt = (run.progress[0] as { at: number }).at;
  const secondAt = (run.progress[1] as { at: number }).at;
  if (run.resultAt - firstAt < STEP_MS) return `progress 1 arrived with the result: ${timeline}`;
  if (run.resultAt - secondAt < STEP_MS / 2) return `progress 2 arrived with the result: ${timeline}`;
  if (secondAt - firstAt < STEP_MS / 2) return `progress 1 and 2 arrived together: ${timeline}`;
  return undefined;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

/** Pids of the processes `pid` started (the broker's MCP server children). */
function childrenOf(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

describe('the broker behind the shipped Caddyfile, over HTTPS', () => {
  let tmp: string;
  let emulator: ForgejoEmulator;
  let caddy: CaddyProxy;
  let broker: BrokerProcess;
  let brokerPort = 0;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'broker-caddy-'));
    brokerPort = await freePort();
    caddy = await startCaddy({ upstream: `127.0.0.1:${brokerPort}` });
    // What NODE_EXTRA_CA_CERTS does at startup, for this test process (each test file runs in its
    // own): fetch, and so the SDK, trusts Caddy's local CA from here on.
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(caddy.caPath, 'utf8')]);
    emulator = await startEmulatorFor(caddy.url);
    broker = await startBroker({
      BROKER_LISTEN: `127.0.0.1:${brokerPort}`,
      // What users see is Caddy's https origin: the issuer, the resource and the allowed Host.
      ...testBrokerEnv({ publicUrl: caddy.url, forgejoUrl: emulator.url, dir: tmp }),
      BROKER_TRUSTED_PROXIES: '127.0.0.1',
      BROKER_CHILD_COMMAND: `"${process.execPath}" "${EVERYTHING}" stdio`,
    });
  });

  after(async () => {
    // Normally the last test has stopped the broker already.
    if (broker && broker.proc.exitCode === null && broker.proc.signalCode === null) {
      broker.proc.kill('SIGTERM');
      await broker.exited;
    }
    await caddy?.stop();
    await emulator?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the OAuth discovery documents through Caddy with its https URL as issuer and resource', async () => {
    const prm = (await (await fetch(`${caddy.url}/.well-known/oauth-protected-resource/mcp`)).json()) as {
      resource: string;
      authorization_servers: string[];
    };
    assert.equal(prm.resource, `${caddy.url}/mcp`);
    assert.deepEqual(prm.authorization_servers, [caddy.url]);
    const res = await fetch(`${caddy.url}/mcp`, { method: 'POST' });
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get('www-authenticate'),
      `Bearer resource_metadata="${caddy.url}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  let token = '';
  let childPids: number[] = [];

  it('an SDK client authorizes over HTTPS and gets each progress notification as it is sent, before the result', async (t) => {
    const mcpUrl = new URL(`${caddy.url}/mcp`);
    const provider: Provider = new ScriptedOAuthProvider({
      redirectUrl: `http://127.0.0.1:${await freePort()}/callback`,
      who: { login: 'alice', password: 'alice-pw' },
      clientName: 'caddy acceptance',
    });
    const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await assert.rejects(
      new Client({ name: 'caddy acceptance', version: '1' }).connect(first),
      UnauthorizedError,
    );
    assert.equal(provider.callback?.searchParams.get('iss'), caddy.url, 'RFC 9207 iss is the https issuer');
    await first.finishAuth(provider.code());
    token = provider.stored?.access_token ?? '';
    assert.ok(token);

    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    const client = new Client({ name: 'caddy acceptance', version: '1' });
    await client.connect(transport);
    try {
      const run = await longOperation(client);
      t.diagnostic(`through Caddy: ${timelineOf(run)}`);
      assert.equal(streamingProblem(run), undefined);
    } finally {
      await client.close();
    }
    childPids = childrenOf(broker.proc.pid as number);
    assert.equal(childPids.length, 1, 'one server-everything child for alice');
  });

  it('the same measurement fails for a proxy that holds the response until it ends', async () => {
    // Caddy flushes text/event-stream responses even without `flush_interval -1`, so the control is
    // a proxy of our own that buffers, in front of the same broker, used with the token from above.
    const proxy = bufferingProxy(brokerPort);
    const port = await listen(proxy);
    const client = new Client({ name: 'buffering control', version: '1' });
    try {
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      const run = await longOperation(client);
      assert.match(streamingProblem(run) ?? 'streamed', /^progress 1 arrived with the result/);
    } finally {
      await client.close();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('on SIGTERM the broker exits 0 and its MCP server child is gone', async () => {
    assert.equal(childPids.length, 1);
    broker.proc.kill('SIGTERM');
    const { code } = await broker.exited;
    assert.equal(code, 0);
    for (const pid of childPids) assert.equal(groupAlive(pid), false, `child ${pid} outlived the broker`);
  });
});
