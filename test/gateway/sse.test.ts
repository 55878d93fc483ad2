import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { it } from 'node:test';
import { SseStream } from '../../src/gateway/sse.ts';
import { waitForValue } from '../support/wait.ts';

it('a reader that stays too slow loses its stream, and the queue never grows past the bound', async () => {
  const CAP = 64 * 1024;
  let opened: SseStream | undefined;
  let res: ServerResponse | undefined;
  const server = createServer((_req, r) => {
    res = r;
    opened = new SseStream(r, { maxQueuedBytes: CAP, keepAliveMs: 60_000 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  // A client that sends its request and then never reads a byte.
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', resolve));
  sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  sock.pause();
  const stream = await waitForValue(() => opened, { what: 'the server to open the stream' });

  const frame = { jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(1024) } };
  let sent = 0;
  let maxQueued = 0;
  let closedOn: number | undefined;
  let closeNotified = false;
  stream.onClose(() => {
    closeNotified = true;
  });
  // Kernel socket buffers absorb the first megabytes; keep writing until the broker gives up.
  for (let i = 0; i < 200_000; i++) {
    if (!stream.send(frame)) {
      closedOn = i;
      break;
    }
    sent++;
    maxQueued = Math.max(maxQueued, res?.writableLength ?? 0);
    if (i % 256 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.ok(closedOn !== undefined, `the stream should have been dropped (sent ${sent})`);
  assert.equal(stream.open, false);
  assert.equal(closeNotified, true);
  assert.ok(maxQueued <= CAP + 2048, `queued ${maxQueued} bytes, bound ${CAP}`);
  assert.equal(stream.send(frame), false, 'nothing is queued after the drop');
  sock.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

it('writes SSE frames with the headers proxies need', async () => {
  const server = createServer((_req, r) => {
    const s = new SseStream(r, { maxQueuedBytes: 1 << 20, keepAliveMs: 60_000 });
    s.send({ jsonrpc: '2.0', method: 'a' });
    s.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(await res.text(), 'event: message\ndata: {"jsonrpc":"2.0","method":"a"}\n\n');
  await new Promise((r) => server.close(r));
});
