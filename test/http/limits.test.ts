// The HTTP layer's deadlines and budget with real sockets: slow and stalled bodies are cut within
// the body deadline, slow headers within the headers deadline, a handler that never answers within
// the request deadline, idle keep-alive connections are closed, and unauthenticated bodies share a
// bounded budget that frees up again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type App, createHttpServer, listen } from '../../src/http/server.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { captureLogger } from '../support/log-capture.ts';
import { slowRequest } from '../support/slow-client.ts';

const BODY_MS = 600;
const REQUEST_MS = 1500;
const KEEPALIVE_MS = 700;
const BUDGET = 6000;

describe('http limits', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'broker-limits-'));
  const logs = captureLogger('info');
  let store: SqliteStore;
  let app: App;
  let base: string;

  before(async () => {
    store = new SqliteStore({ path: join(tmp, 'b.db'), secretKey: Buffer.alloc(32, 3) });
    app = createHttpServer({
      log: logs.log,
      store,
      buildInfo: { version: 't', git: 't' },
      bodyLimit: 4000,
      limits: {
        bodyTimeoutMs: BODY_MS,
        requestTimeoutMs: REQUEST_MS,
        keepAliveTimeoutMs: KEEPALIVE_MS,
        unauthenticatedBufferBytes: BUDGET,
      },
    });
    app.post('/echo', async (req) => ({ length: JSON.stringify(req.body).length }));
    app.get('/never', async () => new Promise(() => {}));
    const bound = await listen(app, '127.0.0.1', 0);
    base = `http://127.0.0.1:${bound.port}`;
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('cuts a stalled body at the body deadline with 408 and closes the connection', async () => {
    const r = await slowRequest(base, {
      path: '/echo',
      contentLength: 100,
      sendAtOnce: 10,
      giveUpMs: 10_000,
    });
    assert.equal(r.status, 408, r.head);
    assert.match(r.head, /connection: close/i);
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs >= BODY_MS - 50,
      `closed after ${r.closedAfterMs} ms`,
    );
    assert.ok(r.closedAfterMs < BODY_MS + 1000, `closed after ${r.closedAfterMs} ms`);
  });

  it('cuts a dripping body at the body deadline: the deadline is for the whole body, not between bytes', async () => {
    const r = await slowRequest(base, {
      path: '/echo',
      contentLength: 1000,
      sendAtOnce: 1,
      dripEveryMs: 50,
      giveUpMs: 10_000,
    });
    assert.equal(r.status, 408, r.head);
    assert.ok(
      r.closedAfterMs !== undefined && r.closedAfterMs < BODY_MS + 1000,
      `closed after ${r.closedAfterMs} ms`,
    );
  });

  it('cuts headers that never finish at the headers deadline', async () => {
    const r = await slowRequest(base, {
      path: '/echo',
      contentLength: 10,
      dripHeaders: true,
      dripEveryMs: 100,
      giveUpMs: 10_000,
    });
    assert.notEqual(r.closedAfterMs, undefined, 'the server never closed the connection');
    assert.equal(r.status, 408, r.head);
    assert.ok((r.closedAfterMs as number) < 2 * BODY_MS + 1000, `closed after ${r.closedAfterMs} ms`);
  });

  it('answers 503 when a handler outlives the request deadline', async () => {
    const t0 = Date.now();
    const res = await fetch(`${base}/never`);
    const took = Date.now() - t0;
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: string }).error, 'request_timeout');
    assert.ok(took >= REQUEST_MS - 50 && took < REQUEST_MS + 1000, `answered after ${took} ms`);
  });

  it('serves a whole body that arrives in time, and keeps that connection alive', async () => {
    const res = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ k: 'v'.repeat(100) }),
    });
    assert.equal(res.status, 200);
    assert.notEqual(res.headers.get('connection'), 'close');
  });

  it('closes a keep-alive connection once it idles past the keep-alive timeout', async () => {
    const { port } = new URL(base);
    const s = connect(Number(port), '127.0.0.1');
    let answered = 0;
    const closed = new Promise<number>((resolve) => {
      s.on('data', () => {
        if (!answered) answered = Date.now();
      });
      s.on('close', () => resolve(Date.now()));
    });
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const at = await closed;
    assert.ok(answered > 0, 'the request was answered');
    const idle = at - answered;
    assert.ok(idle >= KEEPALIVE_MS - 100 && idle < KEEPALIVE_MS + 1500, `closed after ${idle} ms idle`);
  });

  it('closes the connection when it answers before the body has arrived (413 on a declared size)', async () => {
    const r = await slowRequest(base, {
      path: '/echo',
      contentLength: 100_000,
      sendAtOnce: 10,
      giveUpMs: 5000,
    });
    assert.equal(r.status, 413, r.head);
    assert.match(r.head, /connection: close/i);
    assert.ok(r.closedAfterMs !== undefined && r.closedAfterMs < 1000, `closed after ${r.closedAfterMs} ms`);
  });

  it('shares one budget among unauthenticated bodies: past it 503 at once, and it frees up again', async () => {
    // Two stalled bodies of 2 900 declared bytes hold 5 800 of the 6 000 bytes.
    const stalled = [1, 2].map(() =>
      slowRequest(base, { path: '/echo', contentLength: 2900, sendAtOnce: 5, giveUpMs: 10_000 }),
    );
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    const refused = await slowRequest(base, {
      path: '/echo',
      contentLength: 500,
      sendAtOnce: 5,
      giveUpMs: 5000,
    });
    assert.equal(refused.status, 503, refused.head);
    assert.match(refused.head, /retry-after: \d+/i);
    assert.ok(Date.now() - t0 < BODY_MS, 'refused at once, not at the deadline');
    // A small body that fits is still served meanwhile.
    const small = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    assert.equal(small.status, 200);
    for (const r of await Promise.all(stalled)) assert.equal(r.status, 408, r.head);
    // The stalled ones were cut: their bytes are free again.
    const again = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ k: 'v'.repeat(2800) }),
    });
    assert.equal(again.status, 200);
  });
});
