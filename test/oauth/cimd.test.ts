import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { CimdResolver, isForbiddenAddress, UNUSABLE_DOCUMENT } from '../../src/oauth/cimd.ts';
import { OAuthError } from '../../src/oauth/respond.ts';
import { captureLogger } from '../support/log-capture.ts';
import { pkce } from '../support/oauth-harness.ts';
import { authorizeUrl, startStack } from '../support/oauth-stack.ts';
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
    // IPv4-compatible (::/96) and IPv4-mapped (::ffff:0:0/96) forms, whatever the IPv4 part.
    '::127.0.0.1',
    '::a00:1',
    '::8.8.8.8',
    '::ffff:8.8.8.8',
    '::ffff:0:808:808',
    // NAT64 (well-known and local-use), 6to4, Teredo, and the rest of the IANA registries.
    '64:ff9b:1::1',
    '2002:c000:204::1',
    '2001:0:4136:e378::1',
    '2001:2::1',
    '2001:db8::1',
    '2001:10::1',
    '2001:20::1',
    '100::1',
    '5f00::1',
    '3fff::1',
    'fec0::1',
    '4000::1',
    '192.0.0.8',
    '192.0.2.1',
    '192.31.196.1',
    '192.52.193.1',
    '192.88.99.1',
    '192.175.48.1',
    '198.18.0.1',
    '198.51.100.1',
    '203.0.113.1',
    '240.0.0.1',
    // Not canonical: refused rather than guessed at.
    '127.1',
    '0x7f.0.0.1',
  ];
  const allowed = ['93.184.216.34', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '2a00:1450:4001::1'];
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

  let logs = captureLogger('info');
  const resolver = (allow: string[]) => {
    logs = captureLogger('info');
    return new CimdResolver({
      allowPrivateHosts: allow,
      extraCa: [tls.cert],
      timeoutMs: 2000,
      log: logs.log,
    });
  };
  /** The reason the resolver logged for its last refusal. */
  const loggedReason = () =>
    String(logs.lines().findLast((l) => l['msg'] === 'client metadata document refused')?.['reason'] ?? '');

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
    await r.resolve(id, { now: Date.now() + 601_000 });
    assert.equal(srv.hits.get('/good.json'), 2, 'refetched after max-age');
  });

  it('does not cache a no-store document', async () => {
    const r = resolver(['localhost']);
    await r.resolve(`${srv.origin}/nocache.json`);
    await r.resolve(`${srv.origin}/nocache.json`);
    assert.equal(srv.hits.get('/nocache.json'), 2);
  });

  it('refuses a loopback host that is not on the allow-list, without connecting, saying why only in the log', async () => {
    const before = srv.hits.get('/good.json') ?? 0;
    const generic = new RegExp(UNUSABLE_DOCUMENT);
    await assert.rejects(resolver([]).resolve(`${srv.origin}/good.json`), generic);
    assert.match(loggedReason(), /resolves to a non-public address \(127\.0\.0\.1|::1/);
    await assert.rejects(
      resolver([]).resolve(`https://127.0.0.1:${new URL(srv.origin).port}/good.json`),
      generic,
    );
    assert.match(loggedReason(), /not a public address/);
    await assert.rejects(resolver(['localhost']).resolve('https://[::1]/x.json'), generic);
    await assert.rejects(resolver(['localhost']).resolve('https://[::ffff:7f00:1]/x.json'), generic);
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
    it(`refuses ${path} with the one generic message; the log says why`, async () => {
      const err = await resolver(['localhost'])
        .resolve(`${srv.origin}${path}`)
        .catch((e: unknown) => e);
      assert.ok(err instanceof OAuthError, String(err));
      assert.equal(err.error, 'invalid_client');
      assert.equal(err.message, UNUSABLE_DOCUMENT);
      assert.match(loggedReason(), why);
    });
  }

  it('caches a failure briefly: a failing URL is not fetched again at once, but is after 30 s', async () => {
    const r = resolver(['localhost']);
    const id = `${srv.origin}/missing.json`;
    const before = srv.hits.get('/missing.json') ?? 0;
    await assert.rejects(r.resolve(id), OAuthError);
    await assert.rejects(r.resolve(id), OAuthError);
    assert.equal(srv.hits.get('/missing.json'), before + 1);
    await assert.rejects(r.resolve(id, { now: Date.now() + 31_000 }), OAuthError);
    assert.equal(srv.hits.get('/missing.json'), before + 2);
  });

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
    const l = captureLogger('info');
    const r = new CimdResolver({ allowPrivateHosts: ['localhost'], log: l.log });
    await assert.rejects(r.resolve(`${srv.origin}/good.json`), new RegExp(UNUSABLE_DOCUMENT));
    assert.match(JSON.stringify(l.lines()), /self-signed|certificate/i);
  });
});

describe('CimdResolver against a slow document server', () => {
  const tls = selfSignedCert();
  let server: Server;
  let origin = '';
  /** Connections the server saw close, by path. */
  const closed = new Map<string, number>();
  let hits = 0;
  const doc = (path: string) =>
    JSON.stringify({
      client_id: `${origin}${path}`,
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });

  before(async () => {
    server = createServer(tls, (req, res) => {
      const path = req.url ?? '/';
      hits++;
      res.on('close', () => closed.set(path, (closed.get(path) ?? 0) + 1));
      if (path === '/drip.json') {
        // Answers at once, then one byte every 300 ms: each byte keeps a socket idle timeout happy.
        res.writeHead(200, { 'content-type': 'application/json' });
        const body = doc(path);
        let i = 0;
        const t = setInterval(() => {
          if (i < body.length) res.write(body[i++] as string);
          else {
            clearInterval(t);
            res.end();
          }
        }, 300);
        res.on('close', () => clearInterval(t));
      } else if (path === '/slow.json') {
        setTimeout(() => res.writeHead(200).end(doc(path)), 400);
      } else if (path === '/hang.json') {
        // Never answers.
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `https://localhost:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('cuts a fetch that answers and then drips at its one overall deadline (5 s by default)', async () => {
    const l = captureLogger('info');
    const r = new CimdResolver({ allowPrivateHosts: ['localhost'], extraCa: [tls.cert], log: l.log });
    const t0 = Date.now();
    const outcome = await Promise.race([
      r.resolve(`${origin}/drip.json`).then(
        () => 'resolved',
        () => 'refused',
      ),
      new Promise((resolve) => setTimeout(() => resolve('still fetching'), 12_000)),
    ]);
    const took = (Date.now() - t0) / 1000;
    process.stdout.write(`# dripping CIMD fetch cut after ${took.toFixed(2)} s\n`);
    assert.equal(outcome, 'refused');
    assert.ok(took >= 4.9 && took < 6.5, `cut after ${took} s`);
    assert.match(JSON.stringify(l.lines()), /no whole answer within 5000 ms/);
  });

  it('fetches a URL once for many concurrent callers (single flight)', async () => {
    const r = new CimdResolver({ allowPrivateHosts: ['localhost'], extraCa: [tls.cert], timeoutMs: 3000 });
    const before = hits;
    const all = await Promise.all(Array.from({ length: 8 }, () => r.resolve(`${origin}/slow.json`)));
    assert.equal(hits - before, 1);
    for (const c of all) assert.equal(c.clientId, `${origin}/slow.json`);
  });

  it('aborts the fetch when the last caller stops waiting (the browser left), not before', async () => {
    const r = new CimdResolver({ allowPrivateHosts: ['localhost'], extraCa: [tls.cert], timeoutMs: 20_000 });
    const id = `${origin}/hang.json`;
    const first = new AbortController();
    const second = new AbortController();
    const a = r.resolve(id, { signal: first.signal }).catch((e: unknown) => e);
    const b = r.resolve(id, { signal: second.signal }).catch((e: unknown) => e);
    await new Promise((res) => setTimeout(res, 300));
    const t0 = Date.now();
    first.abort();
    assert.ok((await a) instanceof OAuthError);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(closed.get('/hang.json') ?? 0, 0, 'the other caller still waits: the fetch goes on');
    second.abort();
    assert.ok((await b) instanceof OAuthError);
    const deadline = Date.now() + 2000;
    while ((closed.get('/hang.json') ?? 0) === 0 && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    assert.equal(closed.get('/hang.json'), 1, 'the document server saw the fetch aborted');
    assert.ok(Date.now() - t0 < 2000);
    // An abandoned fetch is not a failure of the document: it is not cached as one.
    const h0 = hits;
    const again = new AbortController();
    const c = r.resolve(id, { signal: again.signal }).catch((e: unknown) => e);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(hits, h0 + 1, 'fetched anew');
    again.abort();
    assert.ok((await c) instanceof OAuthError);
  });
});

describe('a CIMD fetch behind /oauth/authorize', () => {
  it('is aborted when the browser leaves, and a failing one shows the page the generic reason only', async () => {
    const tls = selfSignedCert();
    const seen: { closedAt?: number } = {};
    const server = createServer(tls, (req, res) => {
      if (req.url === '/hang.json') res.on('close', () => (seen.closedAt = Date.now()));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `https://localhost:${(server.address() as { port: number }).port}`;
    const stack = await startStack({
      env: { BROKER_CIMD_ALLOW_PRIVATE_HOSTS: 'localhost', BROKER_CIMD_TIMEOUT: '20s' },
      cimdExtraCa: [tls.cert],
    });
    try {
      const url = (path: string) =>
        authorizeUrl(stack.url, {
          clientId: `${origin}${path}`,
          redirectUri: 'http://127.0.0.1/cb',
          challenge: pkce().challenge,
        });
      const browser = new AbortController();
      const page = fetch(url('/hang.json'), { signal: browser.signal }).catch(() => 'left');
      await new Promise((r) => setTimeout(r, 400));
      const leftAt = Date.now();
      browser.abort();
      assert.equal(await page, 'left');
      const deadline = Date.now() + 3000;
      while (seen.closedAt === undefined && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.closedAt !== undefined, 'the document server never saw the fetch end');
      assert.ok(
        seen.closedAt - leftAt < 2000,
        `the fetch ended ${seen.closedAt - leftAt} ms after the browser left`,
      );

      const missing = await fetch(url('/missing.json'));
      assert.equal(missing.status, 400);
      const text = await missing.text();
      assert.match(text, new RegExp(UNUSABLE_DOCUMENT));
      assert.doesNotMatch(text, /404|HTTP/);
    } finally {
      await stack.closeAll();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
