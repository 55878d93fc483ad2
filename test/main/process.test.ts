import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { logLines, spawnBroker, startBroker } from '../support/broker-process.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-main-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

const CLIENT_SECRET = 'forgejo-client-secret-7d1e';
function env(over: Record<string, string> = {}): Record<string, string> {
  return {
    BROKER_PUBLIC_URL: 'http://127.0.0.1:8080',
    FORGEJO_URL: 'http://127.0.0.1:3000',
    FORGEJO_CLIENT_ID: 'broker-app',
    FORGEJO_CLIENT_SECRET: CLIENT_SECRET,
    BROKER_DB: join(tmp, `run-${++n}`, 'broker.db'),
    ...over,
  };
}

function portOpen(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Opens a request the server must wait for: headers promise a body that never fully arrives. */
function stuckRequest(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => {
      s.write(
        'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
      );
      setTimeout(resolve, 100);
    });
    s.on('error', () => {});
    s.once('error', reject);
  });
}

describe('broker process', () => {
  it('exits 2 naming every missing required variable, creating no key file', async () => {
    const cwd = join(tmp, 'empty-cwd');
    mkdirSync(cwd);
    const b = spawnBroker({}, [], cwd);
    const { code } = await b.exited;
    assert.equal(code, 2);
    assert.equal(existsSync(join(cwd, 'data', 'secret.key')), false);
    for (const v of ['BROKER_PUBLIC_URL', 'FORGEJO_URL', 'FORGEJO_CLIENT_ID', 'FORGEJO_CLIENT_SECRET']) {
      assert.match(
        b.stderr(),
        new RegExp(`^  ${v} \\(--[a-z-]+\\): is required but not set; example: ${v}=`, 'm'),
      );
    }
  });

  it('exits 2 on a store it cannot use, saying why', async () => {
    const first = await startBroker(env({ BROKER_SECRET_KEY: Buffer.alloc(32, 1).toString('base64') }));
    const db = join(tmp, `run-${n}`, 'broker.db');
    first.proc.kill('SIGTERM');
    await first.exited;
    const b = spawnBroker(env({ BROKER_DB: db, BROKER_SECRET_KEY: Buffer.alloc(32, 2).toString('base64') }));
    assert.equal((await b.exited).code, 2);
    // Said once, plainly: no JSON line repeating it.
    const mentions = b
      .stderr()
      .split('\n')
      .filter((l) => l.includes('created with another BROKER_SECRET_KEY'));
    assert.equal(mentions.length, 1, b.stderr());
    assert.match(
      mentions[0] as string,
      /^forgejo-mcp-broker: cannot start: database .* was created with another/,
    );
  });

  it('serves /healthz, then on SIGTERM exits 0 within 2 s with the listener closed', async () => {
    const b = await startBroker(env());
    const res = await fetch(`${b.url}/healthz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, string>;
    assert.equal(body['status'], 'ok');
    assert.match(body['version'] ?? '', /^\d+\.\d+\.\d+/);
    assert.ok(body['git']);
    const sent = Date.now();
    b.proc.kill('SIGTERM');
    const { code, at } = await b.exited;
    assert.equal(code, 0);
    assert.ok(at - sent < 2000, `took ${at - sent} ms`);
    assert.equal(await portOpen(b.url), false);
    const lines = logLines(b);
    assert.equal(lines.filter((l) => l['msg'] === 'broker started').length, 1);
    assert.equal(lines.filter((l) => l['msg'] === 'broker stopped').length, 1);
    // Nothing listens on FORGEJO_URL here: the startup check may have said so (test/main/check.test.ts).
    assert.deepEqual(
      lines
        .filter((l) => l['msg'] !== 'request' && !String(l['msg']).startsWith('Forgejo check'))
        .map((l) => String(l['msg']).replace(/^child isolation.*/s, 'child isolation')),
      ['child isolation', 'broker started', 'broker stopped'],
    );
  });

  it('with BROKER_DRAIN, answers /healthz 503 and keeps serving for the drain, then stops as usual', async () => {
    const b = await startBroker(env({ BROKER_DRAIN: '1500ms' }));
    assert.equal((await fetch(`${b.url}/healthz`)).status, 200);
    const sent = Date.now();
    b.proc.kill('SIGTERM');
    // The health check says "take me out"; everything else is still served meanwhile.
    let health = await fetch(`${b.url}/healthz`);
    for (let i = 0; i < 50 && health.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 20));
      health = await fetch(`${b.url}/healthz`);
    }
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status?: string }).status, 'draining');
    const meta = await fetch(`${b.url}/.well-known/oauth-protected-resource/mcp`);
    assert.equal(meta.status, 200, 'still serving while draining');
    const mcp = await fetch(`${b.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(mcp.status, 401, '/mcp still answers while draining');
    assert.ok(Date.now() - sent < 1500, 'all of that within the drain');
    const { code, at } = await b.exited;
    assert.equal(code, 0);
    assert.ok(at - sent >= 1500, `stopped after ${at - sent} ms, before the drain ended`);
    assert.ok(at - sent < 1500 + 2000, `took ${at - sent} ms`);
    assert.ok(logLines(b).some((l) => l['msg'] === 'draining: /healthz answers 503, still serving'));
  });

  it('waits for an in-flight request only as long as the grace, then exits 0 within 2 s', async () => {
    const b = await startBroker(env({ BROKER_SHUTDOWN_GRACE: '1200ms' }));
    await stuckRequest(b.url);
    const sent = Date.now();
    b.proc.kill('SIGTERM');
    const { code, at } = await b.exited;
    assert.equal(code, 0);
    assert.ok(at - sent >= 1000, `should have waited for the in-flight request (${at - sent} ms)`);
    assert.ok(at - sent < 2000, `took ${at - sent} ms`);
  });

  it('exits at once on a second signal', async () => {
    const b = await startBroker(env({ BROKER_SHUTDOWN_GRACE: '10s' }));
    await stuckRequest(b.url);
    b.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const sent = Date.now();
    b.proc.kill('SIGINT');
    const { code, at } = await b.exited;
    assert.equal(code, 130);
    assert.ok(at - sent < 1000, `took ${at - sent} ms`);
    assert.match(b.stderr(), /second signal/);
  });

  it('never writes a secret from its environment or from requests to its log', async () => {
    const key = Buffer.alloc(32, 5).toString('base64');
    const b = await startBroker(env({ BROKER_SECRET_KEY: key, LOG_LEVEL: 'trace' }));
    const secret = 'bearer-secret-0c8f';
    await fetch(`${b.url}/healthz?code=${secret}`, {
      headers: { authorization: `Bearer ${secret}`, cookie: `a=${secret}` },
    });
    await fetch(`${b.url}/x/${secret}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `client_secret=${secret}`,
    });
    b.proc.kill('SIGTERM');
    await b.exited;
    const log = b.stderr();
    assert.ok(logLines(b).filter((l) => l['msg'] === 'request').length >= 2);
    for (const s of [secret, CLIENT_SECRET, key]) assert.ok(!log.includes(s), `log contains ${s}`);
  });
});
