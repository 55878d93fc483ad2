import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CimdResolver, isForbiddenAddress } from '../../src/oauth/cimd.ts';
import { OAuthError } from '../../src/oauth/respond.ts';
import { selfSignedCert, startHttpsServer } from '../support/tls.ts';

describe('isForbiddenAddress', () => {
  const forbidden = [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::FFFF:169.254.169.254',
    '64:ff9b::a00:1',
    'not-an-ip',
  ];
  const allowed = ['93.184.216.34', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];
  for (const a of forbidden) it(`refuses ${a}`, () => assert.equal(isForbiddenAddress(a), true));
  for (const a of allowed) it(`allows ${a}`, () => assert.equal(isForbiddenAddress(a), false));
});

describe('CimdResolver against a local HTTPS server', () => {
  const tls = selfSignedCert();
  let srv: Awaited<ReturnType<typeof startHttpsServer>>;
  let doc: (path: string, extra?: Record<string, unknown>) => string;
  const big = 'x'.repeat(70 * 1024);

  before(async () => {
    let origin = '';
    doc = (path, extra = {}) =>
      JSON.stringify({
        client_id: `${origin}${path}`,
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'none',
        ...extra,
      });
    srv = await startHttpsServer(tls, {
      '/good.json': () => ({ body: doc('/good.json'), headers: { 'cache-control': 'max-age=600' } }),
      '/nocache.json': () => ({ body: doc('/nocache.json'), headers: { 'cache-control': 'no-store' } }),
      '/wrong-id.json': () => ({ body: doc('/other.json') }),
      '/secret.json': () => ({
        body: doc('/secret.json', { token_endpoint_auth_method: 'client_secret_post' }),
      }),
      '/bad-redirect.json': () => ({
        body: doc('/bad-redirect.json', { redirect_uris: ['http://evil.example/cb'] }),
      }),
      '/not-json.json': { body: '<html>' },
      '/array.json': { body: '[]' },
      '/huge.json': { body: big },
      '/redirect.json': { status: 302, body: '', headers: { location: '/good.json' } },
      '/missing.json': { status: 404, body: '' },
    });
    origin = srv.origin;
  });
  after(() => srv.close());

  const resolver = (allow: string[]) =>
    new CimdResolver({ allowPrivateHosts: allow, extraCa: [tls.cert], timeoutMs: 2000 });

  it('fetches, validates and caches a document honouring max-age', async () => {
    const r = resolver(['localhost']);
    const id = `${srv.origin}/good.json`;
    const c = await r.resolve(id);
    assert.equal(c.clientId, id);
    assert.equal(c.authMethod, 'none');
    assert.equal(c.name, 'Claude Code');
    assert.deepEqual(c.redirectUris, ['http://localhost/callback', 'http://127.0.0.1/callback']);
    await r.resolve(id);
    assert.equal(srv.hits.get('/good.json'), 1, 'second resolve is served from the cache');
    await r.resolve(id, Date.now() + 601_000);
    assert.equal(srv.hits.get('/good.json'), 2, 'refetched after max-age');
  });

  it('does not cache a no-store document', async () => {
    const r = resolver(['localhost']);
    await r.resolve(`${srv.origin}/nocache.json`);
    await r.resolve(`${srv.origin}/nocache.json`);
    assert.equal(srv.hits.get('/nocache.json'), 2);
  });

  it('refuses a loopback host that is not on the allow-list, without connecting', async () => {
    const before = srv.hits.get('/good.json') ?? 0;
    await assert.rejects(resolver([]).resolve(`${srv.origin}/good.json`), /private address/);
    await assert.rejects(
      resolver([]).resolve(`https://127.0.0.1:${new URL(srv.origin).port}/good.json`),
      /private address/,
    );
    await assert.rejects(resolver(['localhost']).resolve('https://[::1]/x.json'), /private address/);
    assert.equal(srv.hits.get('/good.json') ?? 0, before);
  });

  const refusals: [string, RegExp][] = [
    ['/wrong-id.json', /differs from its URL/],
    ['/secret.json', /token_endpoint_auth_method none/],
    ['/bad-redirect.json', /only on loopback/],
    ['/not-json.json', /not JSON/],
    ['/array.json', /not a JSON object/],
    ['/huge.json', /larger than/],
    ['/redirect.json', /HTTP 302/],
    ['/missing.json', /HTTP 404/],
  ];
  for (const [path, why] of refusals) {
    it(`refuses ${path}`, async () => {
      const err = await resolver(['localhost'])
        .resolve(`${srv.origin}${path}`)
        .catch((e: unknown) => e);
      assert.ok(err instanceof OAuthError, String(err));
      assert.equal(err.error, 'invalid_client');
      assert.match(err.message, why);
    });
  }

  it('refuses client ids that are not https URLs with a path', async () => {
    for (const id of [
      'https://localhost',
      'https://localhost/',
      'https://u:p@localhost/x',
      'https://localhost/a/../b',
      'https://localhost/x#f',
    ]) {
      await assert.rejects(resolver(['localhost']).resolve(id), OAuthError, id);
    }
  });

  it('refuses a certificate it does not trust', async () => {
    const r = new CimdResolver({ allowPrivateHosts: ['localhost'] });
    await assert.rejects(r.resolve(`${srv.origin}/good.json`), /self-signed|certificate/i);
  });
});
