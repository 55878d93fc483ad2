import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Session, SessionRegistry } from '../../src/gateway/sessions.ts';

const base = {
  login: 'u',
  grantId: 'g',
  protocolVersion: '2025-11-25',
  clientInfo: {},
  clientCapabilities: {},
};

it('caps sessions per user by closing that user’s least recently used one', async () => {
  const reg = new SessionRegistry({ maxPerUser: 2, idleMs: 60_000 });
  const a = (await reg.create({ ...base, userId: 1 }))?.session as Session;
  await new Promise((r) => setTimeout(r, 5));
  const b = (await reg.create({ ...base, userId: 1 }))?.session as Session;
  const other = (await reg.create({ ...base, userId: 2 }))?.session as Session;
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(reg.get(a.id, 1), 'touching a makes b the least recently used');
  const evicted = (await reg.create({ ...base, userId: 1 }))?.evicted;
  assert.equal(evicted?.id, b.id);
  assert.equal(reg.get(b.id, 1), undefined);
  assert.ok(reg.get(a.id, 1));
  assert.ok(reg.get(other.id, 2), 'another user is not affected');
  assert.equal(reg.ofUser(1).length, 2);
});

it('a session is found only with its own user, and forgotten after its idle time', async () => {
  const reg = new SessionRegistry({ maxPerUser: 10, idleMs: 50 });
  const s = (await reg.create({ ...base, userId: 1 }))?.session as Session;
  assert.equal(reg.get(s.id, 2), undefined);
  assert.ok(reg.get(s.id, 1));
  assert.match(s.id, /^[A-Za-z0-9_-]{22}$/);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(reg.get(s.id, 1), undefined);
  assert.equal(reg.size, 0);
});
