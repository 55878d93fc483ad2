// A standalone stream lives no longer than the credentials that opened it: it ends when its access
// token expires (the client reconnects with its new one), when that token is revoked, and when its
// grant is; and a session is reachable only through the grant that opened it.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, before, describe, it } from 'node:test';
import {
  aliceToken,
  drainBody,
  type GatewayStack,
  startGatewayStack,
  USERS,
} from '../support/gateway-stack.ts';
import { rawInitialize, rawPost } from '../support/mcp-oauth-client.ts';
import { eventually } from '../support/wait.ts';

const events = new EventEmitter();
let stack: GatewayStack;
before(async () => {
  stack = await startGatewayStack({ events });
});
after(() => stack.close());

const alice = USERS['token-alice'] as NonNullable<(typeof USERS)[string]>;
const token = aliceToken;

type Watched = { ended: () => boolean; endedAt: () => number };

function watchEnd(res: Response): Watched {
  const { endedAt } = drainBody(res);
  return { ended: () => endedAt() > 0, endedAt };
}

/** Ended by the broker, not before `expiresAt` (timers fire at or after their time). */
async function endsAtExpiry(s: Watched, expiresAt: number): Promise<void> {
  assert.ok(await eventually(() => s.ended(), { timeoutMs: 10_000 }), 'ended at expiry');
  assert.ok(s.endedAt() >= expiresAt - 5, `ended ${expiresAt - s.endedAt()} ms before the expiry`);
}

async function session(bearer: string): Promise<string> {
  const res = await rawInitialize(stack.url, bearer);
  await res.text();
  return res.headers.get('mcp-session-id') as string;
}

/** Opens a GET stream; `ended` settles when the broker ends it. */
async function getStream(bearer: string, sessionId: string): Promise<Watched & { status: number }> {
  const res = await fetch(stack.url, {
    headers: {
      authorization: `Bearer ${bearer}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
      accept: 'text/event-stream',
    },
  });
  return { status: res.status, ...watchEnd(res) };
}

async function listenStream(bearer: string): Promise<Watched> {
  const res = await fetch(stack.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'subscriptions/listen',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'listen-1',
      method: 'subscriptions/listen',
      params: {
        notifications: { toolsListChanged: true },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  });
  assert.equal(res.status, 200);
  return watchEnd(res);
}

/** Still open after a moment: the stream did not end by itself. */
async function stillOpen(s: { ended: () => boolean }): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.ended(), false);
}

describe('a GET stream', () => {
  it('ends when the access token that opened it expires', async () => {
    const bearer = token('short-get', { expiresInMs: 1500 });
    const s = await getStream(bearer, await session(bearer));
    assert.equal(s.status, 200);
    await endsAtExpiry(s, USERS[bearer]?.expiresAt as number);
  });

  it('ends when that token is revoked, though its session went on with a newer token', async () => {
    const first = token('first');
    const sid = await session(first);
    const s = await getStream(first, sid);
    // The client refreshed: same grant, new token, same session.
    const second = token('second');
    const call = await rawPost(
      stack.url,
      second,
      { jsonrpc: '2.0', id: 3, method: 'ping' },
      { sessionId: sid },
    );
    assert.equal(call.status, 200);
    await stillOpen(s);
    events.emit('accessTokenRevoked', { tokenHash: 'hash-first', userId: alice.userId });
    assert.ok(await eventually(() => s.ended(), { timeoutMs: 10_000 }), 'ended at revocation');
  });

  it('cannot be opened, nor the session used, with a token of another grant of the same user', async () => {
    const mine = token('app-a', { grantId: 'g-app-a' });
    const theirs = token('app-b', { grantId: 'g-app-b' });
    const sid = await session(mine);
    assert.equal((await getStream(theirs, sid)).status, 404);
    const post = await rawPost(
      stack.url,
      theirs,
      { jsonrpc: '2.0', id: 4, method: 'ping' },
      { sessionId: sid },
    );
    assert.equal(post.status, 404);
    // Revoking the other grant leaves this one's stream alone; revoking this grant ends it.
    const s = await getStream(mine, sid);
    events.emit('grantRevoked', { grantId: 'g-app-b', userId: alice.userId });
    await stillOpen(s);
    events.emit('grantRevoked', { grantId: 'g-app-a', userId: alice.userId });
    assert.ok(await eventually(() => s.ended(), { timeoutMs: 10_000 }));
  });
});

describe('a 2026 listen stream', () => {
  it('ends when the access token that opened it expires', async () => {
    const bearer = token('short-listen', { expiresInMs: 1500 });
    await endsAtExpiry(await listenStream(bearer), USERS[bearer]?.expiresAt as number);
  });

  it('ends when its grant is revoked', async () => {
    const s = await listenStream(token('listen-grant', { grantId: 'g-listen' }));
    await stillOpen(s);
    events.emit('grantRevoked', { grantId: 'g-listen', userId: alice.userId });
    assert.ok(await eventually(() => s.ended(), { timeoutMs: 10_000 }));
  });
});
