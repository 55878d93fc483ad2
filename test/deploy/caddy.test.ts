import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { parseDuration, settings } from '../../src/config/settings.ts';
import { bufferingProxy } from '../support/buffering-proxy.ts';
import { adaptCaddyfile, type CaddyProxy, REPO_CADDYFILE, startCaddy } from '../support/caddy.ts';

/**
 * How the upstream decides when to write the second event. `after-client-has-first`: only once the
 * client has received the first, with no timer, so an unbuffered proxy passes however slow the
 * machine is and a buffering one never does. `at-once`: as soon as the first is handed to the socket,
 * for the buffering control, which holds everything until the response ends.
 */
type SecondEvent = 'after-client-has-first' | 'at-once';

/** A proxy that buffers makes the Caddy test wait for an event that never comes: fail, don't hang. */
const STUCK_MS = 60_000;

type Exchange = {
  /** Headers the upstream received. */
  seen: IncomingHttpHeaders;
  firstWrittenAt: number;
  secondWrittenAt: number;
};

/**
 * An MCP-like upstream: a POST is answered with an SSE stream of two events, the second written as
 * its job's `SecondEvent` says. Each order is causal, never a race against a clock, so the outcome
 * does not depend on machine load.
 */
function sseUpstream(): {
  server: Server;
  next: (clientHasFirst: Promise<void>, second: SecondEvent) => Promise<Exchange>;
} {
  const waiting: Array<{ clientHasFirst: Promise<void>; second: SecondEvent; done: (x: Exchange) => void }> =
    [];
  const server = createServer((req, res) => {
    const job = waiting.shift();
    if (!job || req.method !== 'POST') {
      res.writeHead(500).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { id: number };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const flushed = new Promise<void>((r) => {
        res.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } })}\n\n`,
          () => r(),
        );
      });
      const firstWrittenAt = performance.now();
      await (job.second === 'at-once' ? flushed : job.clientHasFirst);
      const secondWrittenAt = performance.now();
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result: {} })}\n\n`);
      job.done({ seen: req.headers, firstWrittenAt, secondWrittenAt });
    });
  });
  const next = (clientHasFirst: Promise<void>, second: SecondEvent) =>
    new Promise<Exchange>((done) => {
      waiting.push({ clientHasFirst, second, done });
    });
  return { server, next };
}

type Received = { status: number; contentType: string; events: Array<{ data: string; at: number }> };

/** POSTs a JSON-RPC request and records when each SSE event arrives; `onFirst` fires on the first. */
function postForEvents(url: string, ca: Buffer | undefined, onFirst: () => void): Promise<Received> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow' } });
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': Buffer.byteLength(body),
    };
    const handle = (res: import('node:http').IncomingMessage) => {
      const events: Received['events'] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          events.push({ data, at: performance.now() });
          if (events.length === 1) onFirst();
        }
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), events }),
      );
      res.on('error', reject);
    };
    const req = url.startsWith('https:')
      ? httpsRequest(url, { method: 'POST', headers, ca }, handle)
      : httpRequest(url, { method: 'POST', headers }, handle);
    req.on('error', reject);
    req.end(body);
  });
}

async function exchange(
  upstream: ReturnType<typeof sseUpstream>,
  url: string,
  ca?: Buffer,
  second: SecondEvent = 'after-client-has-first',
): Promise<{ got: Received; ex: Exchange }> {
  let markFirst!: () => void;
  const clientHasFirst = new Promise<void>((r) => {
    markFirst = r;
  });
  const seen = upstream.next(clientHasFirst, second);
  const got = await postForEvents(url, ca, markFirst);
  return { got, ex: await seen };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('deploy/caddy/Caddyfile', () => {
  it('adapts as shipped: one site from BROKER_DOMAIN proxying to the broker, flushing at once, no compression', () => {
    const json = execFileSync('caddy', ['adapt', '--config', REPO_CADDYFILE, '--adapter', 'caddyfile'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BROKER_DOMAIN: 'mcp.example.com' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const config = JSON.parse(json) as {
      apps: { http: { servers: Record<string, { listen: string[]; routes: unknown[] }> } };
    };
    const servers = Object.values(config.apps.http.servers);
    assert.equal(servers.length, 1);
    assert.deepEqual(servers[0]?.listen, [':443']);
    const text = JSON.stringify(servers[0]?.routes);
    assert.match(text, /"host":\["mcp\.example\.com"\]/);
    const proxies = [...text.matchAll(/"handler":"reverse_proxy"/g)];
    assert.equal(proxies.length, 1);
    assert.match(text, /"flush_interval":-1/);
    assert.match(text, /"upstreams":\[\{"dial":"broker:8080"\}\]/);
    assert.doesNotMatch(text, /"handler":"encode"/, 'compression buffers SSE');
    // Caddy lets an idle upstream connection go before the broker closes it, so it never sends a
    // request on a connection the broker is closing (a 502 for a POST it cannot retry).
    const idleNs = Number(/"keep_alive":\{"idle_timeout":(\d+)\}/.exec(text)?.[1]);
    const brokerMs = parseDuration(settings.keepAliveTimeout.default as string);
    assert.ok(idleNs / 1e6 < brokerMs, `Caddy idle ${idleNs / 1e6} ms, broker keep-alive ${brokerMs} ms`);
    // ACME, not the local CA, in the deployed file: no tls internal, no automation policy overrides.
    assert.equal((config as { apps: Record<string, unknown> }).apps['tls'], undefined);
  });

  it('the test adaptation changes only the address and TLS issuer, and refuses a file it does not know', () => {
    const shipped = readFileSync(REPO_CADDYFILE, 'utf8');
    const adapted = adaptCaddyfile(shipped, 4443);
    const siteBlock = adapted.slice(adapted.indexOf('https://127.0.0.1:4443 {'));
    assert.equal(
      siteBlock,
      shipped
        .slice(shipped.indexOf('{$BROKER_DOMAIN} {'))
        .replace('{$BROKER_DOMAIN} {', 'https://127.0.0.1:4443 {\n\ttls internal\n\tbind 127.0.0.1'),
    );
    assert.throws(() => adaptCaddyfile('example.com {\n\trespond ok\n}\n', 1), /exactly one site line/);
    assert.throws(() => adaptCaddyfile(`{\n\temail a@b.c\n}\n${shipped}`, 1), /global options block/);
  });
});

describe('Caddy in front of an SSE upstream', () => {
  const upstream = sseUpstream();
  let upstreamPort = 0;
  let caddy: CaddyProxy;
  let ca: Buffer;

  before(async () => {
    upstreamPort = await listen(upstream.server);
    caddy = await startCaddy({ upstream: `127.0.0.1:${upstreamPort}` });
    ca = readFileSync(caddy.caPath);
  });
  after(async () => {
    await caddy?.stop();
    await closeServer(upstream.server);
  });

  it('delivers the first SSE event over HTTPS before the upstream writes the second', {
    timeout: STUCK_MS,
  }, async () => {
    // The upstream writes the second event only after the client has the first: with no timer in
    // between, finishing at all proves that Caddy passed the first event on alone.
    const { got, ex } = await exchange(upstream, `${caddy.url}/mcp`, ca);
    assert.equal(got.status, 200);
    assert.match(got.contentType, /^text\/event-stream/);
    assert.equal(got.events.length, 2);
    assert.match(got.events[0]!.data, /notifications\/progress/);
    assert.match(got.events[1]!.data, /"id":7/);
    assert.ok(
      got.events[0]!.at < ex.secondWrittenAt,
      `first event received at ${got.events[0]!.at} ms, second written at ${ex.secondWrittenAt} ms`,
    );
    assert.ok(ex.firstWrittenAt < got.events[0]!.at);
  });

  it("passes the client's Host through and tells the upstream the request came over https", async () => {
    const { ex } = await exchange(upstream, `${caddy.url}/mcp`, ca);
    assert.equal(ex.seen.host, new URL(caddy.url).host);
    assert.equal(ex.seen['x-forwarded-proto'], 'https');
    assert.equal(ex.seen['x-forwarded-host'], new URL(caddy.url).host);
  });

  it('serves only to clients that trust its local CA', async () => {
    await assert.rejects(
      postForEvents(`${caddy.url}/mcp`, undefined, () => {}),
      /self[- ]signed|unable to (get|verify)/i,
    );
  });

  it('the same measurement catches a proxy that buffers the response', async () => {
    const proxy = bufferingProxy(upstreamPort);
    const port = await listen(proxy);
    try {
      const { got, ex } = await exchange(upstream, `http://127.0.0.1:${port}/mcp`, undefined, 'at-once');
      assert.equal(got.events.length, 2);
      assert.ok(
        got.events[0]!.at > ex.secondWrittenAt,
        'the buffering proxy held the first event until the upstream had written the second',
      );
    } finally {
      await closeServer(proxy);
    }
  });

  it('stops without leaving the caddy process behind', async () => {
    const other = await startCaddy({ upstream: `127.0.0.1:${upstreamPort}` });
    await other.stop();
    assert.throws(() => process.kill(other.pid, 0), { code: 'ESRCH' });
  });
});
