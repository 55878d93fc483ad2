// The broker process on PostgreSQL end to end: sign-in through the Forgejo emulator, an SDK client's
// tool calls, RFC 7009 revocation at the broker, and a revocation written by another process on
// the same database (another replica's store) that closes the user's stream and stops their child,
// a second broker replica on the same database serving, refreshing and revoking alike, and one
// 2025 session (an SDK client's Mcp-Session-Id) served by both replicas.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { type BrokerProcess, logLines, startBroker } from '../support/broker-process.ts';
import { CONFORMANCE_SERVER } from '../support/gateway-stack.ts';
import { connectV1, rawInitialize, rawPost } from '../support/mcp-oauth-client.ts';
import { form, freePort, registerClient, testBrokerEnv } from '../support/oauth-harness.ts';
import { fullFlow, startEmulatorFor, tokenRequest } from '../support/oauth-stack.ts';
import { type PostgresCluster, startPostgres } from '../support/postgres.ts';
import { call2026, textOf } from '../support/stateless-call.ts';
import { startSwitch } from '../support/switch-proxy.ts';
import { pidAlive, waitFor } from '../support/wait.ts';
import { assertNotLogged, assertServesStandin, E2E_USERS } from './support.ts';

/** Polls an asynchronous condition; fails the test when it is not true within `ms`. */
async function within(ms: number, what: string, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the broker on PostgreSQL', () => {
  let cluster: PostgresCluster;
  let url: string;
  let emulator: ForgejoEmulator;
  let broker: BrokerProcess;
  let tmp: string;
  let sql: pg.Pool;
  let env: Record<string, string>;
  const key = randomBytes(32).toString('base64');

  before(async () => {
    cluster = await startPostgres();
    url = await cluster.createDatabase();
    sql = new pg.Pool({ connectionString: url, max: 2 });
    tmp = mkdtempSync(join(tmpdir(), 'broker-pg-e2e-'));
    const port = await freePort();
    emulator = await startEmulatorFor(`http://127.0.0.1:${port}`, { users: E2E_USERS });
    env = {
      ...testBrokerEnv({
        publicUrl: `http://127.0.0.1:${port}`,
        forgejoUrl: emulator.url,
        dir: tmp,
        secretKey: key,
      }),
      BROKER_DB: url,
      BROKER_RATE_LIMIT: '1000',
    };
    broker = await startBroker({ ...env, BROKER_LISTEN: `127.0.0.1:${port}` });
  });

  after(async () => {
    if (broker?.proc.exitCode === null) {
      broker.proc.kill('SIGTERM');
      await broker.exited;
    }
    await sql?.end();
    await emulator?.close();
    cluster?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const signIn = async (login: string) => {
    const c = await registerClient(broker.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
    const { tokens } = await fullFlow(broker.url, {
      clientId: c.client_id,
      redirectUri: 'http://127.0.0.1:41234/cb',
      login,
    });
    return { clientId: c.client_id, ...tokens };
  };

  it('signs in, serves tool calls and revokes, with only hashes and sealed values in PostgreSQL', async () => {
    const started = logLines(broker).find((l) => l['msg'] === 'broker started');
    assert.ok(
      started && String(started['db']).startsWith('postgres://broker:***@127.0.0.1:'),
      JSON.stringify(started?.['db']),
    );
    const alice = await signIn('alice');
    const mcp = await connectV1(broker.url, alice.access_token);
    await assertServesStandin(mcp.client, 'alice');
    await mcp.client.close();

    const tables = (await sql.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map(
      (r) => r.tablename as string,
    );
    assert.ok(tables.includes('oauth_token') && tables.includes('forgejo_credential'));
    let dump = '';
    for (const t of tables) dump += JSON.stringify((await sql.query(`SELECT * FROM "${t}"`)).rows);
    assertNotLogged(dump, { 'access token': alice.access_token, 'refresh token': alice.refresh_token });
    // The emulator's Forgejo tokens are JWTs: none may be stored in the clear.
    assert.ok(!dump.includes('eyJ'), 'no Forgejo token in the clear');

    const res = await fetch(
      `${broker.url}/oauth/revoke`,
      form({ token: alice.refresh_token, client_id: alice.clientId }),
    );
    assert.equal(res.status, 200);
    const refused = await rawPost(`${broker.url}/mcp`, alice.access_token, {
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    assert.equal(refused.status, 401);
  });

  it("another replica's revocation closes the user's stream and stops their child within a second", async () => {
    const bob = await signIn('bob');
    const carol = await signIn('carol');
    const carolMcp = await connectV1(broker.url, carol.access_token);
    const init = await rawInitialize(`${broker.url}/mcp`, bob.access_token);
    const sessionId = init.headers.get('mcp-session-id') as string;
    await init.text();
    const bobMcp = await connectV1(broker.url, bob.access_token);
    await bobMcp.client.callTool({ name: 'get_my_user_info', arguments: {} });
    const [row] = (await sql.query("SELECT pid FROM live_child WHERE login = 'bob'")).rows;
    const bobPid = Number(row?.pid);
    assert.ok(pidAlive(bobPid), "bob's child runs and is recorded");
    const stream = await fetch(`${broker.url}/mcp`, {
      headers: {
        authorization: `Bearer ${bob.access_token}`,
        accept: 'text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-11-25',
      },
    });
    assert.equal(stream.status, 200);
    const ended = stream.text().then(() => Date.now());

    // The other replica: its own store on the same database and key.
    const other = new PostgresStore({ url, secretKey: Buffer.from(key, 'base64') });
    await other.ready();
    const bobId = Number(
      (await sql.query("SELECT user_id FROM oauth_grant WHERE login = 'bob'")).rows[0]?.user_id,
    );
    const revokedAt = Date.now();
    await other.revokeUser(bobId);
    await other.close();
    const endedAt = await ended;
    assert.ok(endedAt - revokedAt < 1000, `stream closed ${endedAt - revokedAt} ms after the revocation`);
    await waitFor(() => !pidAlive(bobPid), { timeoutMs: 1000, what: "bob's child stopped" });
    await assert.rejects(bobMcp.client.callTool({ name: 'get_my_user_info', arguments: {} }));
    await assertServesStandin(carolMcp.client, 'carol');
    await carolMcp.client.close();
    await bobMcp.client.close().catch(() => {});
  });

  it('one 2025 session is served by both replicas: calls, a child of its own on B, 404 for others, DELETE and revocation everywhere', async () => {
    const b = await startBroker({ ...env, BROKER_LISTEN: '127.0.0.1:0' });
    const sw = await startSwitch(broker.url);
    const children = async (login: string, brokerPid: number | undefined) =>
      (
        await sql.query('SELECT pid FROM live_child WHERE login = $1 AND broker_pid = $2', [login, brokerPid])
      ).rows.map((r) => Number(r.pid));
    const answered = async (url: string, token: string, sessionId: string) =>
      (await rawPost(`${url}/mcp`, token, { jsonrpc: '2.0', id: 7, method: 'ping' }, { sessionId })).status;
    try {
      const alice = await signIn('alice');
      // One SDK v1 client, reaching the replicas through a switch, as behind a load balancer.
      const client = new Client({ name: 'replica-test', version: '0' }, { capabilities: { roots: {} } });
      const transport = new StreamableHTTPClientTransport(new URL(`${sw.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${alice.access_token}` } },
      });
      await client.connect(transport);
      const sessionId = transport.sessionId as string;
      assert.match(sessionId, /^[A-Za-z0-9_-]{22}$/);
      await assertServesStandin(client, 'alice');
      assert.deepEqual(await children('alice', b.proc.pid), [], 'B has no child of alice yet');

      sw.point(b.url);
      await assertServesStandin(client, 'alice');
      // The child's row is written beside its start, not before the call is answered.
      await within(2000, 'B started its own child for the session it never saw initialized', async () =>
        (await children('alice', b.proc.pid)).some((pid) => pidAlive(pid)),
      );
      const [stored] = (
        await sql.query('SELECT protocol_version, client_capabilities FROM mcp_session WHERE login = $1', [
          'alice',
        ])
      ).rows;
      assert.equal(stored?.protocol_version, '2025-11-25');
      assert.deepEqual(JSON.parse(stored?.client_capabilities), { roots: {} });
      const all = JSON.stringify((await sql.query('SELECT * FROM mcp_session')).rows);
      assert.ok(!all.includes(sessionId), 'the session id is stored only hashed');

      // Another user's token, or another app's of the same user, gets 404 with it on either replica.
      const carol = await signIn('carol');
      const aliceElsewhere = await signIn('alice');
      for (const url of [broker.url, b.url]) {
        assert.equal(await answered(url, carol.access_token, sessionId), 404);
        assert.equal(await answered(url, aliceElsewhere.access_token, sessionId), 404);
        assert.equal(await answered(url, alice.access_token, sessionId), 200);
      }

      // DELETE on B ends the session on A too (A holds it: it answered a ping just now).
      await transport.terminateSession();
      assert.equal(await answered(b.url, alice.access_token, sessionId), 404);
      await within(
        1000,
        'A forgets the session B deleted',
        async () => (await answered(broker.url, alice.access_token, sessionId)) === 404,
      );
      await client.close();

      // A session whose access token is revoked (RFC 7009, the grant lives on) ends on both replicas.
      const init = await rawInitialize(`${broker.url}/mcp`, alice.access_token);
      const second = init.headers.get('mcp-session-id') as string;
      await init.text();
      assert.equal(await answered(b.url, alice.access_token, second), 200);
      const revoked = await fetch(
        `${b.url}/oauth/revoke`,
        form({ token: alice.access_token, client_id: alice.clientId }),
      );
      assert.equal(revoked.status, 200);
      const next = await tokenRequest(broker.url, {
        grant_type: 'refresh_token',
        refresh_token: alice.refresh_token,
        client_id: alice.clientId,
      });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      const fresh = next.body['access_token'] as string;
      await within(
        1000,
        'the session of the revoked token ends on both replicas',
        async () =>
          (await answered(broker.url, fresh, second)) === 404 &&
          (await answered(b.url, fresh, second)) === 404,
      );

      // A revoked grant ends its session on both replicas: the GET streams there close.
      const third = (await rawInitialize(`${b.url}/mcp`, fresh)).headers.get('mcp-session-id') as string;
      const open = (url: string) =>
        fetch(`${url}/mcp`, {
          headers: {
            authorization: `Bearer ${fresh}`,
            accept: 'text/event-stream',
            'mcp-session-id': third,
            'mcp-protocol-version': '2025-11-25',
          },
        });
      const streams = [await open(broker.url), await open(b.url)];
      assert.deepEqual(
        streams.map((r) => r.status),
        [200, 200],
        'a GET stream on each replica',
      );
      const ended = streams.map((r) => r.text().then(() => Date.now()));
      const revokedAt = Date.now();
      const res = await fetch(
        `${broker.url}/oauth/revoke`,
        form({ token: next.body['refresh_token'] as string, client_id: alice.clientId }),
      );
      assert.equal(res.status, 200);
      for (const at of await Promise.all(ended))
        assert.ok(at - revokedAt < 1000, `a stream closed ${at - revokedAt} ms after the revocation`);
      const left = await sql.query('SELECT COUNT(*)::int AS n FROM mcp_session WHERE login = $1', ['alice']);
      assert.equal(left.rows[0].n, 0, 'no session of the revoked grant is left in the store');
    } finally {
      await sw.close();
      b.proc.kill('SIGTERM');
      await b.exited;
    }
  });

  it('a 2026 multi-round-trip call asked on one replica completes when its retry lands on the other', async () => {
    // Replicas whose child asks the client things (the conformance fixture server).
    const asking = { ...env, BROKER_CHILD_COMMAND: `"${process.execPath}" "${CONFORMANCE_SERVER}"` };
    const [a2, b2] = await Promise.all([
      startBroker({ ...asking, BROKER_LISTEN: '127.0.0.1:0' }),
      startBroker({ ...asking, BROKER_LISTEN: '127.0.0.1:0' }),
    ]);
    try {
      const { access_token: token } = await signIn('carol');
      const name = 'test_input_required_result_elicitation';
      const first = await call2026(`${a2.url}/mcp`, 'tools/call', { name, arguments: {} }, { token });
      assert.equal(first.body.result?.['resultType'], 'input_required', JSON.stringify(first.body));
      const [key] = Object.keys(first.body.result?.['inputRequests'] as Record<string, unknown>);
      const done = await call2026(
        `${b2.url}/mcp`,
        'tools/call',
        {
          name,
          arguments: {},
          inputResponses: { [key as string]: { action: 'accept', content: { name: 'Bea' } } },
          requestState: first.body.result?.['requestState'],
        },
        { token },
      );
      assert.equal(done.body.result?.['resultType'], 'complete', JSON.stringify(done.body));
      assert.equal(textOf(done), 'Hello, Bea!');
    } finally {
      for (const r of [a2, b2]) {
        r.proc.kill('SIGTERM');
        await r.exited;
      }
    }
  });

  it('a second replica serves the same users, rotates their tokens, and hears revocations made on the first', async () => {
    // Same issuer (public URL), same database and key; its own port (loopback hosts are accepted).
    const b = await startBroker({ ...env, BROKER_LISTEN: '127.0.0.1:0' });
    try {
      const alice = await signIn('alice');
      const onB = await connectV1(b.url, alice.access_token);
      await assertServesStandin(onB.client, 'alice');
      // The broker records a child it started a moment after the call that started it answered.
      const rowOnB = async () =>
        (
          await sql.query('SELECT pid FROM live_child WHERE login = $1 AND broker_pid = $2', [
            'alice',
            b.proc.pid,
          ])
        ).rows[0] as { pid?: unknown } | undefined;
      let row = await rowOnB();
      for (let i = 0; i < 100 && !row; i++) {
        await new Promise((r) => setTimeout(r, 50));
        row = await rowOnB();
      }
      const childOnB = Number(row?.pid);
      assert.ok(pidAlive(childOnB), 'replica B started its own child from the shared credential');
      const refreshed = await tokenRequest(b.url, {
        grant_type: 'refresh_token',
        refresh_token: alice.refresh_token,
        client_id: alice.clientId,
      });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      const onA = await connectV1(broker.url, refreshed.body['access_token'] as string);
      await assertServesStandin(onA.client, 'alice');
      await onA.client.close();

      const init = await rawInitialize(`${b.url}/mcp`, refreshed.body['access_token'] as string);
      const sessionId = init.headers.get('mcp-session-id') as string;
      await init.text();
      const stream = await fetch(`${b.url}/mcp`, {
        headers: {
          authorization: `Bearer ${refreshed.body['access_token']}`,
          accept: 'text/event-stream',
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        },
      });
      assert.equal(stream.status, 200);
      const ended = stream.text().then(() => Date.now());
      const revokedAt = Date.now();
      const res = await fetch(
        `${broker.url}/oauth/revoke`,
        form({ token: refreshed.body['refresh_token'] as string, client_id: alice.clientId }),
      );
      assert.equal(res.status, 200);
      const endedAt = await ended;
      assert.ok(endedAt - revokedAt < 1000, `B closed the stream ${endedAt - revokedAt} ms after A revoked`);
      await onB.client.close().catch(() => {});
      b.proc.kill('SIGTERM');
      await b.exited;
      await waitFor(() => !pidAlive(childOnB), { timeoutMs: 3000, what: "replica B's child gone with it" });
    } finally {
      if (b.proc.exitCode === null && b.proc.signalCode === null) {
        b.proc.kill('SIGKILL');
        await b.exited;
      }
    }
  });
});
