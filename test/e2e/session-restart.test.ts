// A rolling restart on SQLite does not cut 2025 sessions: the session is a record in the database,
// so the broker that comes back serves the SDK client's Mcp-Session-Id as if nothing happened (its
// child starts anew, the client never initializes again).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type BrokerProcess, startBroker } from '../support/broker-process.ts';
import { rawPost } from '../support/mcp-oauth-client.ts';
import { freePort, registerClient, testBrokerEnv } from '../support/oauth-harness.ts';
import { fullFlow, startEmulatorFor } from '../support/oauth-stack.ts';
import { type Switch, startSwitch } from '../support/switch-proxy.ts';
import { assertServesStandin, E2E_USERS } from './support.ts';

let emulator: ForgejoEmulator;
let tmp: string;
let env: Record<string, string>;
let port: number;
const brokers: BrokerProcess[] = [];
let sw: Switch | undefined;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'broker-restart-'));
  port = await freePort();
  emulator = await startEmulatorFor(`http://127.0.0.1:${port}`, { users: E2E_USERS });
  env = testBrokerEnv({
    publicUrl: `http://127.0.0.1:${port}`,
    forgejoUrl: emulator.url,
    dir: tmp,
    secretKey: randomBytes(32).toString('base64'),
  });
});

after(async () => {
  await sw?.close();
  for (const b of brokers) {
    if (b.proc.exitCode === null && b.proc.signalCode === null) {
      b.proc.kill('SIGTERM');
      await b.exited;
    }
  }
  await emulator?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const stop = async (b: BrokerProcess) => {
  b.proc.kill('SIGTERM');
  await b.exited;
};

it("an SDK client's session survives a broker restart on SQLite", async () => {
  const first = await startBroker({ ...env, BROKER_LISTEN: `127.0.0.1:${port}` });
  brokers.push(first);
  const c = await registerClient(first.url, {
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
  });
  const { tokens } = await fullFlow(first.url, {
    clientId: c.client_id,
    redirectUri: 'http://127.0.0.1:41234/cb',
    login: 'alice',
  });
  sw = await startSwitch(first.url);
  const client = new Client({ name: 'restart-test', version: '0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${sw.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
  });
  await client.connect(transport);
  const sessionId = transport.sessionId;
  await assertServesStandin(client, 'alice');

  await stop(first);
  const second = await startBroker({ ...env, BROKER_LISTEN: '127.0.0.1:0' });
  brokers.push(second);
  sw.point(second.url);
  await assertServesStandin(client, 'alice');
  assert.equal(transport.sessionId, sessionId, 'the same session, never initialized again');
  // The session is the database's, not the process's: it ends for good on DELETE.
  await transport.terminateSession();
  const gone = await rawPost(
    `${second.url}/mcp`,
    tokens.access_token,
    { jsonrpc: '2.0', id: 1, method: 'ping' },
    { sessionId: sessionId as string },
  );
  assert.equal(gone.status, 404);
  await client.close();
});
