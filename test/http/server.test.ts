import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type App, createHttpServer, listen, parseForm } from '../../src/http/server.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { captureLogger } from '../support/log-capture.ts';
import { eventually } from '../support/wait.ts';

const buildInfo = { version: '9.9.9', git: 'abc123' };

describe('http server', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-http-'));
  const logs = captureLogger('info');
  let store: SqliteStore;
  let app: App;
  let base: string;

  before(async () => {
    store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 3) });
    app = createHttpServer({ log: logs.log, store, buildInfo, bodyLimit: 1024 });
    // A route that echoes what it parsed, to pin the form and JSON body handling.
    app.post('/echo', async (req) => ({ body: req.body }));
    // A stream that only the client ends, as /mcp's GET notification stream (SSE) is.
    app.get('/stream', async (_req, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      reply.raw.write(': open\n\n');
    });
    const bound = await listen(app, '127.0.0.1', 0);
    base = `http://127.0.0.1:${bound.port}`;
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('GET /healthz answers 200 with status, version and commit', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { status: 'ok', version: '9.9.9', git: 'abc123' });
  });

  it('unknown routes answer 404 JSON', async () => {
    const res = await fetch(`${base}/no/such/thing`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'not_found', message: 'no such route' });
  });

  it('parses form bodies and keeps repeated fields visible', async () => {
    const res = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=two+words&a=3',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { body: { a: ['1', '3'], b: 'two words' } });
    assert.deepEqual(parseForm('x=%20y&z='), { x: ' y', z: '' });
  });

  it('parses JSON bodies and answers malformed JSON with a 400, not a 5xx', async () => {
    const ok = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"k":1}',
    });
    assert.deepEqual(await ok.json(), { body: { k: 1 } });
    const bad = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"k":',
    });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: string; message: string };
    assert.ok(!JSON.stringify(body).includes('at '), 'no stack trace');
  });

  it('refuses bodies over the limit with 413', async () => {
    const res = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ big: 'x'.repeat(4096) }),
    });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: string }).error, 'FST_ERR_CTP_BODY_TOO_LARGE');
  });

  it('logs one line per request with method, route, status and duration', async () => {
    await fetch(`${base}/healthz`);
    const line = logs
      .lines()
      .filter((l) => l['msg'] === 'request' && l['route'] === '/healthz')
      .at(-1);
    assert.ok(line);
    assert.equal(line['method'], 'GET');
    assert.equal(line['status'], 200);
    assert.equal(typeof line['ms'], 'number');
  });

  it('logs the request line of a response the client closed before it finished, once', async () => {
    // MCP Inspector 2 drops its GET /mcp stream without a DELETE: that request must still be logged.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/stream`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e) => {
        if (!req.destroyed) reject(e);
      });
      req.end();
    });
    const streamLines = () => logs.lines().filter((l) => l['msg'] === 'request' && l['route'] === '/stream');
    assert.ok(await eventually(() => streamLines().length > 0), 'no request line for the dropped stream');
    await fetch(`${base}/healthz`);
    const lines = streamLines();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['method'], 'GET');
    assert.equal(lines[0]?.['status'], 200);
    assert.equal(lines[0]?.['aborted'], true);
    assert.equal(typeof lines[0]?.['ms'], 'number');
    const healthz = logs
      .lines()
      .filter((l) => l['msg'] === 'request' && l['route'] === '/healthz')
      .at(-1);
    assert.equal(healthz?.['aborted'], undefined, 'a finished response is not marked aborted');
  });

  it('never logs a secret carried by the request (header, cookie, query, path, body)', async () => {
    const secret = 'S3CRET-5f0d2b7c9a';
    await fetch(`${base}/healthz?code=${secret}&access_token=${secret}`, {
      headers: { authorization: `Bearer ${secret}`, cookie: `__Host-s=${secret}` },
    });
    await fetch(`${base}/oauth/${secret}/x?token=${secret}`);
    await fetch(`${base}/echo?client_secret=${secret}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${secret}` },
      body: `refresh_token=${secret}&code_verifier=${secret}`,
    });
    await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"t":"${secret}`,
    });
    assert.ok(logs.lines().length >= 4);
    assert.ok(!logs.text().includes(secret), 'a secret reached the log');
  });

  it('redacts secrets in objects other parts log', () => {
    const secret = 'TOKEN-a1b2c3';
    logs.log.info(
      {
        headers: { authorization: `token ${secret}`, cookie: secret },
        token: secret,
        body: { client_secret: secret, refresh_token: secret, code: secret },
        env: { FORGEJO_ACCESS_TOKEN: secret },
      },
      'object with secrets',
    );
    const line = logs.lines().find((l) => l['msg'] === 'object with secrets');
    assert.ok(line);
    assert.ok(!logs.text().includes(secret));
    assert.equal(line['token'], '[redacted]');
  });
});

describe('http server with a failing store', () => {
  it('GET /healthz answers 503 with the reason', async () => {
    const failing: Store = {
      health: async () => {
        throw new Error('database does not answer: disk I/O error');
      },
      close: async () => {},
    };
    const app = createHttpServer({ log: captureLogger().log, store: failing, buildInfo });
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json(), {
      status: 'unavailable',
      reason: 'database does not answer: disk I/O error',
      version: '9.9.9',
      git: 'abc123',
    });
    await app.close();
  });

  it('GET /healthz answers 503 when the real store was closed under it', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'broker-http-closed-'));
    const store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 3) });
    const app = createHttpServer({ log: captureLogger().log, store, buildInfo });
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    await store.close();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 503);
    assert.match(res.json().reason, /closed/);
    await app.close();
    rmSync(tmp, { recursive: true, force: true });
  });
});
