// Metrics scraped from a running broker process and the audit trail of a whole sign-in, tool calls
// and a revocation: the events an operator needs, never a secret, no user or client in a label.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { type BrokerProcess, logLines, startBroker } from '../support/broker-process.ts';
import { connectV1 } from '../support/mcp-oauth-client.ts';
import { form, freePort, registerClient, testBrokerEnv } from '../support/oauth-harness.ts';
import { fullFlow, startEmulatorFor } from '../support/oauth-stack.ts';
import { waitFor } from '../support/wait.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef0123456789';

/** Prometheus text format → samples `name{labels}` → value (labels sorted as written). */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    samples.set(m[1] as string, Number(m[2]));
  }
  return samples;
}

function sample(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const [k, v] of samples) {
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(k);
    if (m?.[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([lk, lv]) => have[lk] === lv)) return v;
  }
  return undefined;
}

describe('metrics and audit of a running broker', () => {
  let emulator: ForgejoEmulator;
  let tmp: string;
  let broker: BrokerProcess;
  let metricsUrl: string;
  let auditFile: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'broker-ops-'));
    auditFile = join(tmp, 'audit.jsonl');
    const port = await freePort();
    emulator = await startEmulatorFor(`http://127.0.0.1:${port}`);
    broker = await startBroker({
      ...testBrokerEnv({ publicUrl: `http://127.0.0.1:${port}`, forgejoUrl: emulator.url, dir: tmp }),
      BROKER_LISTEN: `127.0.0.1:${port}`,
      BROKER_RATE_LIMIT: '1000',
      BROKER_METRICS_LISTEN: '127.0.0.1:0',
      BROKER_METRICS_TOKEN: METRICS_TOKEN,
      BROKER_AUDIT_FILE: auditFile,
      BROKER_AUDIT_ARGUMENTS: 'names',
    });
    const started = logLines(broker).find((l) => l['msg'] === 'broker started') as { metrics: string };
    metricsUrl = `http://${started.metrics}/metrics`;
  });

  after(async () => {
    broker.proc.kill('SIGTERM');
    await broker.exited;
    await emulator.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('counts requests, calls, tools and children, with no user or client in any label; /metrics is never public', async () => {
    const c = await registerClient(broker.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
      client_name: 'Audit Probe',
    });
    const { tokens } = await fullFlow(broker.url, {
      clientId: c.client_id,
      redirectUri: 'http://127.0.0.1:41234/cb',
      login: 'alice',
    });
    const mcp = await connectV1(broker.url, tokens.access_token);
    await mcp.client.listTools();
    await mcp.client.callTool({ name: 'get_my_user_info', arguments: {} });
    // forgejo-mcp answers a failed API call with a JSON-RPC error.
    await assert.rejects(
      mcp.client.callTool({ name: 'list_repo_issues', arguments: { owner: 'alice', repo: 'nope' } }),
    );
    await mcp.client.callTool({ name: 'made_up_tool', arguments: {} }).catch(() => {});

    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const m = parseMetrics(text);
    assert.ok(
      (sample(m, 'fmb_http_requests_total', { route: '/mcp', method: 'POST', status: '200' }) ?? 0) >= 3,
    );
    assert.ok((sample(m, 'fmb_http_requests_total', { route: '/oauth/token', status: '200' }) ?? 0) >= 1);
    assert.ok((sample(m, 'fmb_http_request_duration_seconds_count', { route: '/mcp' }) ?? 0) >= 3);
    assert.equal(sample(m, 'fmb_tool_calls_total', { tool: 'get_my_user_info', outcome: 'ok' }), 1);
    assert.equal(sample(m, 'fmb_tool_calls_total', { tool: 'list_repo_issues', outcome: 'error' }), 1);
    assert.equal(sample(m, 'fmb_mcp_calls_total', { method: 'tools/list', outcome: 'ok' }), 1);
    assert.ok(
      sample(m, 'fmb_tool_calls_total', { tool: 'unlisted' }) !== undefined,
      'an unknown name is no label',
    );
    assert.equal(sample(m, 'fmb_children_live'), 1);
    assert.equal(sample(m, 'fmb_children_started_total'), 1);
    assert.equal(sample(m, 'fmb_sessions_open'), 1);
    assert.equal(sample(m, 'fmb_tokens_issued_total', { grant_type: 'authorization_code' }), 1);
    assert.equal(sample(m, 'fmb_registrations_total', { outcome: 'ok' }), 1);
    assert.ok((sample(m, 'fmb_process_resident_memory_bytes') ?? 0) > 0, 'process metrics');
    for (const secret of ['alice', c.client_id, 'Audit Probe', 'made_up_tool', tokens.access_token])
      assert.ok(!text.includes(secret), `metrics must not name ${secret}`);

    // On the main address only with the token; the separate listener serves nothing else.
    assert.equal((await fetch(`${broker.url}/metrics`)).status, 401);
    assert.equal(
      (
        await fetch(`${broker.url}/metrics`, {
          headers: { authorization: 'Bearer wrong-token-of-the-same-size-123456' },
        })
      ).status,
      401,
    );
    const withToken = await fetch(`${broker.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    assert.equal(withToken.status, 200);
    assert.match(await withToken.text(), /fmb_http_requests_total/);
    assert.equal((await fetch(metricsUrl.replace('/metrics', '/healthz'))).status, 404);
    await mcp.client.close();
  });

  it('writes one audit event per action, to the log and the 0600 file, with no secret in it', async () => {
    const c = await registerClient(broker.url, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
      client_name: 'Audit Client',
    });
    const { tokens } = await fullFlow(broker.url, {
      clientId: c.client_id,
      redirectUri: 'http://127.0.0.1:41234/cb',
      login: 'bob',
    });
    const mcp = await connectV1(broker.url, tokens.access_token);
    await assert.rejects(
      mcp.client.callTool({ name: 'list_repo_issues', arguments: { owner: 'bob', repo: 'secret-name' } }),
    );
    await mcp.client.close();
    const revoked = await fetch(
      `${broker.url}/oauth/revoke`,
      form({ token: tokens.refresh_token, client_id: c.client_id }),
    );
    assert.equal(revoked.status, 200);

    const events = () =>
      readFileSync(auditFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((e) => e['clientId'] === c.client_id);
    await waitFor(() => events().some((e) => e['event'] === 'token_revoked'), { what: 'the revoke event' });
    const mine = events();
    assert.deepEqual(
      mine.map((e) => e['event']),
      ['consent', 'sign_in', 'token_issued', 'tool_call', 'token_revoked'],
    );
    const [consent, signIn, issued, call, revoke] = mine as Record<string, unknown>[];
    assert.equal(consent?.['decision'], 'granted');
    assert.equal(consent?.['clientName'], 'Audit Client');
    assert.equal(signIn?.['login'], 'bob');
    assert.equal(issued?.['grantType'], 'authorization_code');
    assert.equal(call?.['login'], 'bob');
    assert.equal(call?.['clientName'], 'Audit Client');
    assert.equal(call?.['tool'], 'list_repo_issues');
    assert.equal(call?.['outcome'], 'error');
    assert.deepEqual(call?.['arguments'], ['owner', 'repo'], 'names only, no values');
    assert.equal(typeof call?.['ms'], 'number');
    assert.equal(revoke?.['kind'], 'refresh');
    for (const e of mine) assert.match(String(e['time']), /^\d{4}-\d\d-\d\dT/);
    assert.equal(statSync(auditFile).mode & 0o777, 0o600);

    const raw = readFileSync(auditFile, 'utf8');
    for (const secret of [tokens.access_token, tokens.refresh_token, 'secret-name'])
      assert.ok(!raw.includes(secret), 'no token or argument value in the audit file');
    await waitFor(
      () =>
        logLines(broker).some(
          (l) => l['audit'] === true && l['event'] === 'tool_call' && l['clientId'] === c.client_id,
        ),
      { what: 'the tool_call audit line in the log' },
    );
  });
});
