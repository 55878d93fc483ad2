import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RateLimiter } from '../../src/http/rate-limit.ts';
import { clientKey, rateKeys } from '../../src/oauth/rate-keys.ts';
import { type BrokerHarness, form, registerClient, startBrokerInProcess } from '../support/oauth-harness.ts';

describe('RateLimiter', () => {
  it('allows a burst of the limit, then says how long to wait, then refills', () => {
    const r = new RateLimiter(3);
    const t = 1_000_000;
    assert.deepEqual([r.take('k', t), r.take('k', t), r.take('k', t)], [0, 0, 0]);
    const wait = r.take('k', t);
    assert.equal(wait, 20, 'one token per 20 s at 3 per minute');
    assert.equal(r.take('other', t), 0, 'keys are independent');
    assert.equal(r.take('k', t + 20_000), 0);
  });

  it('wait looks without taking', () => {
    const r = new RateLimiter(1);
    assert.equal(r.wait('k', 0), 0, 'an unknown key may go');
    assert.equal(r.wait('k', 0), 0, 'looking took nothing');
    r.take('k', 0);
    assert.equal(r.wait('k', 0), 60);
    assert.equal(r.wait('k', 60_000), 0);
  });

  it('stays bounded: the least recently used key is forgotten', () => {
    const r = new RateLimiter(1, 2);
    r.take('a', 0);
    r.take('b', 0);
    r.take('c', 0);
    assert.equal(r.take('a', 0), 0, 'a was evicted and starts afresh');
    assert.ok(r.take('c', 0) > 0);
  });
});

describe('rate-limit keys', () => {
  const req = (over: object) => ({ query: {}, body: {}, headers: {}, ip: '203.0.113.9', ...over });
  it('keys token requests by client once proven (by source before), authorize by client and IP, register by IP', () => {
    assert.deepEqual(rateKeys('token', req({ body: { client_id: 'c1' } })), {
      key: undefined,
      ip: 'ip:203.0.113.9',
      failures: 'fail:203.0.113.9',
    });
    assert.equal(clientKey('c1', '203.0.113.9'), 'token:c1');
    assert.equal(
      clientKey('https://app.example/meta.json', '203.0.113.9'),
      'token:https://app.example/meta.json:203.0.113.9',
      'a metadata-document client is shared by all its users: add the IP',
    );
    assert.equal(rateKeys('authorize', req({ query: { client_id: 'c1' } })).key, 'authorize:c1:203.0.113.9');
    assert.deepEqual(rateKeys('register', req({})), {
      key: undefined,
      ip: 'register:203.0.113.9',
      failures: undefined,
    });
    assert.deepEqual(rateKeys('consent', req({})), {
      key: undefined,
      ip: 'ip:203.0.113.9',
      failures: undefined,
    });
  });
});

describe('rate limits over HTTP', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startBrokerInProcess({ env: { BROKER_RATE_LIMIT: '2' } });
  });
  after(() => h.close());

  it('token: a flooding client gets 429 with Retry-After while another client from the same IP does not', async () => {
    const a = await registerClient(h.url, {
      redirect_uris: ['https://a.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const b = await registerClient(h.url, {
      redirect_uris: ['https://b.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const hit = (c: { client_id: string; client_secret?: string }) =>
      fetch(
        `${h.url}/oauth/token`,
        form({
          grant_type: 'refresh_token',
          refresh_token: 'x',
          client_id: c.client_id,
          client_secret: c.client_secret as string,
        }),
      );
    assert.equal((await hit(a)).status, 400);
    assert.equal((await hit(a)).status, 400);
    const limited = await hit(a);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(((await limited.json()) as { error: string }).error, 'slow_down');
    assert.equal((await hit(b)).status, 400, 'another client behind the same IP is not locked out');
  });

  it('authorize: keyed by client and IP', async () => {
    const get = (id: string) => fetch(`${h.url}/oauth/authorize?client_id=${id}`);
    assert.equal((await get('x')).status, 400);
    assert.equal((await get('x')).status, 400);
    assert.equal((await get('x')).status, 429);
    assert.equal((await get('y')).status, 400);
  });

  it('register: limited per IP at ten times the limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${h.url}/oauth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      statuses.push(res.status);
    }
    assert.ok(statuses.includes(429));
    assert.ok(statuses.filter((s) => s !== 429).length <= 20);
  });
});
