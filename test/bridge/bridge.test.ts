import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Bridge, type BridgeOptions, type Sink } from '../../src/bridge/bridge.ts';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/bridge/jsonrpc.ts';
import { channelOf } from '../../src/pool/channel.ts';
import { type Child, Supervisor } from '../../src/supervisor/supervisor.ts';
import { captureLogger } from '../support/log-capture.ts';
import { waitFor } from '../support/wait.ts';

const FAULT_SERVER = join(import.meta.dirname, '..', 'fixtures', 'fault-server.ts');
const logs = captureLogger('info');
const supervisor = new Supervisor({ log: logs.log, limits: { stdoutMaxLineBytes: 64 * 1024 } });
after(() => supervisor.stopAll(500, 100));

type Events = { garbage: { bytes: number; reason: string }[]; notifications: JsonRpcMessage[] };

async function startBridge(
  over: Partial<BridgeOptions> = {},
  argv: string[] = [FAULT_SERVER],
): Promise<{ bridge: Bridge; child: Child; events: Events }> {
  const child = await supervisor.start({
    name: 'bridge-test',
    command: process.execPath,
    args: argv,
    env: { PATH: '/usr/bin:/bin' },
    cwd: tmpdir(),
  });
  const events: Events = { garbage: [], notifications: [] };
  const bridge = new Bridge(channelOf(child), {
    initTimeoutMs: 10_000,
    callTimeoutMs: 10_000,
    maxLineBytes: 64 * 1024,
    clientInfo: { name: 'broker-test', version: '0' },
    protocolVersion: '2025-06-18',
    events: {
      notification: (m) => events.notifications.push(m),
      orphanRequest: () => undefined,
      garbage: (g) => events.garbage.push(g),
    },
    ...over,
  });
  return { bridge, child, events };
}

/** A sink that records everything and resolves with the final message. */
function recorder(): { sink: Sink; seen: JsonRpcMessage[]; final: Promise<JsonRpcResponse> } {
  const seen: JsonRpcMessage[] = [];
  let resolve!: (m: JsonRpcResponse) => void;
  const final = new Promise<JsonRpcResponse>((r) => {
    resolve = r;
  });
  return {
    seen,
    final,
    sink: {
      send: (m, isFinal) => {
        seen.push(m);
        if (isFinal) resolve(m as JsonRpcResponse);
        return true;
      },
    },
  };
}

const call = (
  id: number | string,
  name: string,
  args: Record<string, unknown> = {},
  meta?: Record<string, unknown>,
) =>
  ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
  }) as JsonRpcRequest;

const text = (r: JsonRpcResponse) => {
  assert.ok('result' in r, JSON.stringify(r));
  return (r.result['content'] as { text: string }[])[0]?.text;
};

describe('bridge over a real stdio child', () => {
  it('initializes once and shares the answer', async () => {
    const { bridge, child } = await startBridge();
    const [a, b] = await Promise.all([bridge.initialize(), bridge.initialize()]);
    assert.equal(a, b);
    assert.deepEqual(a['serverInfo'], { name: 'fault-server', version: '1.0.0' });
    await child.stop(1000);
  });

  it('keeps two sessions with the same request id and progress token apart', async () => {
    const { bridge, child } = await startBridge();
    await bridge.initialize();
    const one = recorder();
    const two = recorder();
    bridge.call(call(1, 'slow', { steps: 3, ms: 20 }, { progressToken: 7 }), one.sink, 'session-a');
    bridge.call(call(1, 'echo', { text: 'from b' }, { progressToken: 7 }), two.sink, 'session-b');
    const [ra, rb] = await Promise.all([one.final, two.final]);
    assert.equal(ra.id, 1);
    assert.equal(rb.id, 1);
    assert.equal(text(ra), 'done after 3 steps');
    assert.equal(text(rb), 'from b');
    const progress = one.seen.filter((m) => 'method' in m && m.method === 'notifications/progress');
    assert.equal(progress.length, 3);
    for (const p of progress)
      assert.equal((p as unknown as { params: { progressToken: unknown } }).params.progressToken, 7);
    assert.equal(two.seen.length, 1, 'no progress leaked to the other session');
    assert.equal(bridge.inFlight, 0);
    await child.stop(1000);
  });

  it('delivers a server-to-client request to the calling session and maps the answer back', async () => {
    const { bridge, child } = await startBridge();
    await bridge.initialize();
    const r = recorder();
    const sink: Sink = {
      send: (m, final) => {
        r.sink.send(m, final);
        if ('method' in m && m.method === 'sampling/createMessage' && 'id' in m) {
          assert.equal(
            bridge.respond({ jsonrpc: '2.0', id: m.id, result: { nope: 1 } }, 'other-session'),
            false,
          );
          bridge.respond(
            {
              jsonrpc: '2.0',
              id: m.id,
              result: { role: 'assistant', content: { type: 'text', text: 'pong' }, model: 'm' },
            },
            'session-s',
          );
        }
        return true;
      },
    };
    bridge.call(call('s1', 'sample', { prompt: 'ping' }), sink, 'session-s');
    assert.equal(text(await r.final), 'sampled: {"type":"text","text":"pong"}');
    await child.stop(1000);
  });

  it('skips garbage lines on stdout and keeps serving', async () => {
    const { bridge, child, events } = await startBridge();
    await bridge.initialize();
    const r = recorder();
    bridge.call(call(2, 'garbage'), r.sink, 's');
    assert.equal(text(await r.final), 'after garbage');
    assert.ok(events.garbage.length >= 2, JSON.stringify(events.garbage));
    const again = recorder();
    bridge.call(call(3, 'echo', { text: 'still fine' }), again.sink, 's');
    assert.equal(text(await again.final), 'still fine');
    await child.stop(1000);
  });

  it('fails only the call whose response line is over the cap', async () => {
    const { bridge, child } = await startBridge();
    await bridge.initialize();
    const big = recorder();
    const small = recorder();
    bridge.call(call(4, 'huge', { bytes: 200_000 }), big.sink, 's');
    bridge.call(call(5, 'echo', { text: 'small' }), small.sink, 's');
    const rb = await big.final;
    assert.ok('error' in rb);
    assert.match(rb.error.message, /exceeds the broker's limit of 65536 bytes/);
    assert.equal(text(await small.final), 'small');
    await child.stop(1000);
  });

  it('answers a call that outlives the timeout and tells the child it was cancelled', async () => {
    const { bridge, child } = await startBridge({ callTimeoutMs: 300 });
    await bridge.initialize();
    const r = recorder();
    bridge.call(call(6, 'hang'), r.sink, 's');
    const res = await r.final;
    assert.ok('error' in res);
    assert.equal(res.error.code, -32001);
    assert.match(res.error.message, /timed out after 300 ms/);
    await waitFor(() => child.stderrTail().some((l) => l.includes('fault-server: cancelled')), {
      what: 'the child to log its cancellation',
    });
    await child.stop(1000);
  });

  it('forwards a client cancellation with the child-side id', async () => {
    const { bridge, child } = await startBridge();
    await bridge.initialize();
    const r = recorder();
    bridge.call(call('c1', 'hang'), r.sink, 'sess');
    await new Promise((res) => setTimeout(res, 100));
    bridge.notify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c1' } }, 'sess');
    await waitFor(() => child.stderrTail().some((l) => l.includes('fault-server: cancelled')), {
      what: 'the child to log its cancellation',
    });
    assert.equal(bridge.inFlight, 0);
    await child.stop(1000);
  });

  it('fails the in-flight calls of a child that dies, without its last words (those are for the log)', async () => {
    const { bridge } = await startBridge();
    await bridge.initialize();
    const r = recorder();
    bridge.call(call(8, 'crash'), r.sink, 's');
    const res = await r.final;
    assert.ok('error' in res);
    assert.equal(res.error.message, 'the MCP server exited with status 3');
    const later = recorder();
    bridge.call(call(9, 'echo'), later.sink, 's');
    assert.ok('error' in (await later.final));
  });

  it('reports a child that exits before the handshake, keeping its stderr out of the error', async () => {
    const { bridge } = await startBridge({}, [
      '-e',
      'process.stderr.write("connection test failed: 401 Unauthorized\\n"); process.exit(1)',
    ]);
    await assert.rejects(bridge.initialize(), {
      message: 'the MCP server did not initialize: the MCP server exited with status 1',
    });
  });

  it('gives up on a child that never answers the handshake', async () => {
    const { bridge, child } = await startBridge({ initTimeoutMs: 300 }, [
      '-e',
      'setInterval(() => {}, 1000)',
    ]);
    await assert.rejects(bridge.initialize(), /did not initialize: request timed out after 300 ms/);
    await child.stop(200, 50);
  });
});
