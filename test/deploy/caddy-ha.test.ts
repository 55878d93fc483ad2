// Debian's Caddy runs the replicas' Caddyfile (deploy/compose-ha, adapted only in its address) in
// front of two plain loopback upstreams standing in for two brokers, to show what the file promises:
// one Authorization header keeps reaching one replica; a replica that answers /healthz with 503 gets
// no traffic until it answers 200 again; a request that reached a replica which then died is not
// sent again (a tools/call must not run twice); a replica that dies or refuses connections is left
// out from its first failed request on, and the other replica keeps serving.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, describe, it } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { type CaddyProxy, HA_CADDYFILE, startCaddy } from '../support/caddy.ts';
import { eventually } from '../support/wait.ts';

type Seen = { method: string; path: string; body: string };

/** A stand-in replica: answers with its name and what it got; /healthz as `health` says. */
function replica(name: string) {
  const seen: Seen[] = [];
  const state = { health: 200, healthChecks: 0, drop: false };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/healthz') {
        state.healthChecks++;
        res.writeHead(state.health, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', path: req.url ?? '', body });
      // Dies with the request in hand, as a replica killed mid-call: no answer at all.
      if (state.drop) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, body }));
    });
  });
  const listen = (port = 0) =>
    new Promise<number>((resolve) => {
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { name, seen, state, server, listen, close };
}
type Replica = ReturnType<typeof replica>;

async function pair(): Promise<{ a: Replica; b: Replica; caddy: CaddyProxy; stop: () => Promise<void> }> {
  const a = replica('A');
  const b = replica('B');
  const [pa, pb] = [await a.listen(), await b.listen()];
  const caddy = await startCaddy({
    caddyfile: HA_CADDYFILE,
    env: { BROKER_UPSTREAM_1: `127.0.0.1:${pa}`, BROKER_UPSTREAM_2: `127.0.0.1:${pb}` },
  });
  setDefaultCACertificates([...getCACertificates('default'), readFileSync(caddy.caPath, 'utf8')]);
  return {
    a,
    b,
    caddy,
    stop: async () => {
      await caddy.stop();
      await a.close().catch(() => {});
      await b.close().catch(() => {});
    },
  };
}

async function send(
  caddy: CaddyProxy,
  token: string,
  method = 'POST',
  body = '{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
): Promise<{ status: number; name?: string; body?: string }> {
  const res = await fetch(`${caddy.url}/mcp`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(method === 'POST' ? { body } : {}),
  });
  const text = await res.text();
  if (res.status !== 200) return { status: res.status };
  const j = JSON.parse(text) as { name: string; body: string };
  return { status: 200, name: j.name, body: j.body };
}

/** A token that the hash sends to `name` (the upstreams answer with theirs). */
async function tokenFor(caddy: CaddyProxy, name: string): Promise<string> {
  for (let i = 0; i < 64; i++) {
    const t = `token-${name}-${i}`;
    if ((await send(caddy, t)).name === name) return t;
  }
  throw new Error(`no token reached ${name}`);
}

describe('the replicas’ Caddyfile in front of two upstreams', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
  });

  it('keeps each Authorization header on one replica, spreads different ones over both, and follows /healthz', async () => {
    const { a, b, caddy, stop } = await pair();
    stops.push(stop);
    const where = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 16; i++) {
        const t = `user-${i}`;
        const r = await send(caddy, t);
        assert.equal(r.status, 200);
        if (round === 0) where.set(t, r.name as string);
        else assert.equal(r.name, where.get(t), `${t} stayed on ${where.get(t)}`);
      }
    }
    const counts = [...where.values()].reduce((m, n) => m.set(n, (m.get(n) ?? 0) + 1), new Map());
    assert.ok(counts.get('A') > 0 && counts.get('B') > 0, JSON.stringify([...counts]));

    // A says it is unhealthy (its database is unreachable): once Caddy has seen that, A's users go to B.
    const onA = [...where].filter(([, n]) => n === 'A').map(([t]) => t);
    a.state.health = 503;
    // Two checks later: A counts a check when it arrives, before Caddy has read the answer; by the
    // second one Caddy has acted on the first.
    const checks = a.state.healthChecks;
    await eventually(() => a.state.healthChecks > checks + 1, { timeoutMs: 10_000, intervalMs: 50 });
    const before = a.seen.length;
    for (const t of onA) assert.equal((await send(caddy, t)).name, 'B');
    assert.equal(a.seen.length, before, 'an unhealthy replica gets no request');
    // Healthy again: back to the replica that runs their children.
    a.state.health = 200;
    const again = a.state.healthChecks;
    await eventually(() => a.state.healthChecks > again + 1, { timeoutMs: 10_000, intervalMs: 50 });
    for (const t of onA) assert.equal((await send(caddy, t)).name, 'A');
    assert.ok(b.seen.length > 0);
  });

  it('does not send a POST again once a replica took it and died; the next one goes to the other replica', async () => {
    const { a, b, caddy, stop } = await pair();
    stops.push(stop);
    const t = await tokenFor(caddy, 'A');
    a.state.drop = true;
    const [aBefore, bBefore] = [a.seen.length, b.seen.length];
    const r = await send(caddy, t, 'POST', '{"jsonrpc":"2.0","id":2,"method":"tools/call"}');
    assert.equal(r.status, 502, 'the client learns the call may not have run');
    assert.equal(a.seen.length, aBefore + 1, 'A had received the call');
    assert.equal(b.seen.length, bBefore, 'B never got it: it ran at most once');
    // Passive health: A is left out now, so the client's retry (and everything after) reaches B.
    const retry = await send(caddy, t, 'POST', '{"jsonrpc":"2.0","id":3,"method":"tools/call"}');
    assert.equal(retry.name, 'B');
    assert.equal(a.seen.length, aBefore + 1);
  });

  it('leaves a replica that refuses connections out after one refused request, and the other one in', async () => {
    const { a, b, caddy, stop } = await pair();
    stops.push(stop);
    const t = await tokenFor(caddy, 'A');
    const onB = await tokenFor(caddy, 'B');
    await a.close();
    const aSeen = a.seen.length;
    const bSeen = b.seen.length;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { x: 'y'.repeat(50_000) },
    });
    assert.equal(
      (await send(caddy, t, 'POST', body)).status,
      502,
      'the one request that met the dead replica',
    );
    assert.equal(b.seen.length, bSeen, 'not resent');
    // The client's retry and every later request of A's users reach B, body and all; B's own users
    // never noticed.
    const retry = await send(caddy, t, 'POST', body);
    assert.deepEqual(retry, { status: 200, name: 'B', body });
    assert.equal((await send(caddy, t, 'GET')).name, 'B');
    assert.equal((await send(caddy, onB)).name, 'B');
    assert.equal(a.seen.length, aSeen);
  });
});
