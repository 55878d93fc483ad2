// The table of malformed requests: each gets the error its spec prescribes, none a 5xx, and the
// database is byte-for-byte the same afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type BrokerHarness,
  dumpTables,
  form,
  pkce,
  registerClient,
  startBrokerInProcess,
} from '../support/oauth-harness.ts';

type Expect =
  | { status: number; error?: string } // JSON error (or a bare status)
  | { page: number; error?: string }; // HTML error page naming the error, never a redirect (RFC 9700 §4.11.2)

type Case = { name: string; req: () => [string, RequestInit?]; expect: Expect };

describe('bad input table', () => {
  let h: BrokerHarness;
  let conf: { client_id: string; client_secret?: string };
  let basic: { client_id: string; client_secret?: string };
  let pub: { client_id: string };
  const { challenge } = pkce();
  const cases: Case[] = [];

  before(async () => {
    h = await startBrokerInProcess({});
    conf = await registerClient(h.url, {
      redirect_uris: ['https://app.example/cb'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    basic = await registerClient(h.url, { redirect_uris: ['https://basic.example/cb'] });
    pub = await registerClient(h.url, {
      redirect_uris: ['http://127.0.0.1/cb', 'cursor://anysphere.cursor-mcp/oauth/callback'],
      token_endpoint_auth_method: 'none',
    });
  });
  after(() => h.close());

  // --- register ---
  const reg =
    (body: string, type = 'application/json') =>
    (): [string, RequestInit] => [
      '/oauth/register',
      { method: 'POST', headers: { 'content-type': type }, body },
    ];
  const regJson = (m: unknown) => reg(JSON.stringify(m));
  const ok = { redirect_uris: ['https://ok.example/cb'] };
  const metaErr = { status: 400, error: 'invalid_client_metadata' };
  const uriErr = { status: 400, error: 'invalid_redirect_uri' };
  cases.push(
    { name: 'register: body is not JSON', req: reg('{not json'), expect: metaErr },
    { name: 'register: body is an array', req: regJson([ok]), expect: metaErr },
    { name: 'register: body is a string', req: regJson('x'), expect: metaErr },
    { name: 'register: body is text/plain', req: reg(JSON.stringify(ok), 'text/plain'), expect: metaErr },
    {
      name: 'register: body over the size limit',
      req: regJson({ ...ok, client_name: 'x'.repeat(70_000) }),
      expect: { status: 413 },
    },
    { name: 'register: no redirect_uris', req: regJson({ client_name: 'x' }), expect: uriErr },
    { name: 'register: empty redirect_uris', req: regJson({ redirect_uris: [] }), expect: uriErr },
    {
      name: 'register: redirect_uris is a string',
      req: regJson({ redirect_uris: 'https://a.example/cb' }),
      expect: uriErr,
    },
    {
      name: 'register: redirect_uris holds a number',
      req: regJson({ redirect_uris: [123] }),
      expect: uriErr,
    },
    {
      name: 'register: http on a non-loopback host',
      req: regJson({ redirect_uris: ['http://app.example/cb'] }),
      expect: uriErr,
    },
    {
      name: 'register: redirect URI with a fragment',
      req: regJson({ redirect_uris: ['https://a.example/cb#x'] }),
      expect: uriErr,
    },
    {
      name: 'register: custom scheme for a confidential client',
      req: regJson({ redirect_uris: ['cursor://x/cb'] }),
      expect: uriErr,
    },
    {
      name: 'register: javascript: URI for a public client',
      req: regJson({ redirect_uris: ['javascript:alert(1)'], token_endpoint_auth_method: 'none' }),
      expect: uriErr,
    },
    { name: 'register: relative redirect URI', req: regJson({ redirect_uris: ['/cb'] }), expect: uriErr },
    {
      name: 'register: credentials in the redirect URI',
      req: regJson({ redirect_uris: ['https://u:p@a.example/cb'] }),
      expect: uriErr,
    },
    {
      name: 'register: one bad URI among good ones fails the whole registration',
      req: regJson({ redirect_uris: ['https://a.example/cb', 'http://evil.example/cb'] }),
      expect: uriErr,
    },
    {
      name: 'register: 21 redirect URIs',
      req: regJson({ redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) }),
      expect: uriErr,
    },
    {
      name: 'register: private_key_jwt',
      req: regJson({ ...ok, token_endpoint_auth_method: 'private_key_jwt' }),
      expect: metaErr,
    },
    {
      name: 'register: client_credentials grant',
      req: regJson({ ...ok, grant_types: ['client_credentials'] }),
      expect: metaErr,
    },
    {
      name: 'register: refresh_token grant alone',
      req: regJson({ ...ok, grant_types: ['refresh_token'] }),
      expect: metaErr,
    },
    {
      name: 'register: implicit response type',
      req: regJson({ ...ok, response_types: ['token'] }),
      expect: metaErr,
    },
    { name: 'register: numeric client_name', req: regJson({ ...ok, client_name: 5 }), expect: metaErr },
    {
      name: 'register: client_name with a control character',
      req: regJson({ ...ok, client_name: 'a\u0007b' }),
      expect: metaErr,
    },
    {
      name: 'register: client_name of 300 characters',
      req: regJson({ ...ok, client_name: 'n'.repeat(300) }),
      expect: metaErr,
    },
    { name: 'register: numeric scope', req: regJson({ ...ok, scope: 5 }), expect: metaErr },
  );

  // --- authorize ---
  const authz = (params: Record<string, string | string[]>) => (): [string] => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, x);
    return [`/oauth/authorize?${q}`];
  };
  const good = () => ({
    response_type: 'code',
    client_id: conf.client_id,
    redirect_uri: 'https://app.example/cb',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st',
  });
  const a = (name: string, change: (p: Record<string, string | string[]>) => void, expect: Expect): Case => ({
    name: `authorize: ${name}`,
    req: () => {
      const p: Record<string, string | string[]> = good();
      change(p);
      return authz(p)();
    },
    expect,
  });
  cases.push(
    { name: 'authorize: no parameters', req: authz({}), expect: { page: 400 } },
    a('unknown client_id', (p) => (p['client_id'] = 'nope'), { page: 400 }),
    a('client_id repeated', (p) => (p['client_id'] = [conf.client_id, conf.client_id]), { page: 400 }),
    a('unregistered redirect_uri', (p) => (p['redirect_uri'] = 'https://evil.example/cb'), { page: 400 }),
    a('redirect_uri with another path', (p) => (p['redirect_uri'] = 'https://app.example/cb2'), {
      page: 400,
    }),
    a('redirect_uri with an added query', (p) => (p['redirect_uri'] = 'https://app.example/cb?x=1'), {
      page: 400,
    }),
    a(
      'no redirect_uri for a client with several',
      (p) => {
        p['client_id'] = pub.client_id;
        delete p['redirect_uri'];
      },
      { page: 400 },
    ),
    a(
      'loopback redirect on another loopback host',
      (p) => {
        p['client_id'] = pub.client_id;
        p['redirect_uri'] = 'http://localhost:5555/cb';
      },
      { page: 400 },
    ),
    a('http:// URL as a client id', (p) => (p['client_id'] = 'http://app.example/client.json'), {
      page: 400,
    }),
    a('response_type token', (p) => (p['response_type'] = 'token'), {
      page: 400,
      error: 'unsupported_response_type',
    }),
    a('no response_type', (p) => delete p['response_type'], { page: 400, error: 'invalid_request' }),
    a('response_type repeated', (p) => (p['response_type'] = ['code', 'code']), {
      page: 400,
      error: 'invalid_request',
    }),
    a('no code_challenge (PKCE missing)', (p) => delete p['code_challenge'], {
      page: 400,
      error: 'invalid_request',
    }),
    a('code_challenge_method plain', (p) => (p['code_challenge_method'] = 'plain'), {
      page: 400,
      error: 'invalid_request',
    }),
    a('no code_challenge_method', (p) => delete p['code_challenge_method'], {
      page: 400,
      error: 'invalid_request',
    }),
    a('code_challenge too short', (p) => (p['code_challenge'] = 'abc'), {
      page: 400,
      error: 'invalid_request',
    }),
    a('resource of another server', (p) => (p['resource'] = 'https://other.example/mcp'), {
      page: 400,
      error: 'invalid_target',
    }),
    a('resource with a trailing slash', (p) => (p['resource'] = `${h.url}/mcp/`), {
      page: 400,
      error: 'invalid_target',
    }),
    a('resource repeated', (p) => (p['resource'] = [`${h.url}/mcp`, `${h.url}/mcp`]), {
      page: 400,
      error: 'invalid_request',
    }),
    a('state repeated', (p) => (p['state'] = ['a', 'b']), { page: 400, error: 'invalid_request' }),
  );

  // --- token ---
  const tok =
    (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    (): [string, RequestInit] => {
      const init = form(fields);
      return [
        '/oauth/token',
        { ...init, headers: { ...(init.headers as Record<string, string>), ...headers } },
      ];
    };
  const confAuth = () => ({ client_id: conf.client_id, client_secret: conf.client_secret as string });
  const codeReq = () => ({
    ...confAuth(),
    grant_type: 'authorization_code',
    code: 'mcpac_unknown',
    redirect_uri: 'https://app.example/cb',
    code_verifier: 'v'.repeat(43),
  });
  const basicHeader = (id: string, secret: string) => ({
    authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
  });
  const invalidClient = { status: 401, error: 'invalid_client' };
  cases.push(
    {
      name: 'token: JSON body',
      req: () => [
        '/oauth/token',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(codeReq()) },
      ],
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: text/plain body',
      req: () => [
        '/oauth/token',
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'grant_type=x' },
      ],
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: no grant_type',
      req: () => tok(confAuth())(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: grant_type password',
      req: () => tok({ ...confAuth(), grant_type: 'password' })(),
      expect: { status: 400, error: 'unsupported_grant_type' },
    },
    {
      name: 'token: unknown client',
      req: () => tok({ ...codeReq(), client_id: 'nope' })(),
      expect: invalidClient,
    },
    {
      name: 'token: wrong client secret',
      req: () => tok({ ...codeReq(), client_secret: 'wrong' })(),
      expect: invalidClient,
    },
    {
      name: 'token: client_secret_post client using Basic',
      req: () =>
        tok(
          { ...codeReq(), client_id: '', client_secret: '' },
          basicHeader(conf.client_id, conf.client_secret as string),
        )(),
      expect: invalidClient,
    },
    {
      name: 'token: client_secret_basic client using the body',
      req: () =>
        tok({ ...codeReq(), client_id: basic.client_id, client_secret: basic.client_secret as string })(),
      expect: invalidClient,
    },
    {
      name: 'token: Basic client with a wrong secret',
      req: () =>
        tok({ ...codeReq(), client_id: '', client_secret: '' }, basicHeader(basic.client_id, 'wrong'))(),
      expect: invalidClient,
    },
    {
      name: 'token: public client sending a secret',
      req: () => tok({ ...codeReq(), client_id: pub.client_id, client_secret: 'x' })(),
      expect: invalidClient,
    },
    {
      name: 'token: confidential client without its secret',
      req: () => tok({ ...codeReq(), client_secret: '' })(),
      expect: invalidClient,
    },
    {
      name: 'token: no client authentication',
      req: () => tok({ ...codeReq(), client_id: '', client_secret: '' })(),
      expect: invalidClient,
    },
    {
      name: 'token: malformed Basic header',
      req: () => tok({ grant_type: 'authorization_code' }, { authorization: 'Basic !!!' })(),
      expect: invalidClient,
    },
    {
      name: 'token: Basic and client_secret together',
      req: () =>
        tok({ ...codeReq(), client_id: '' }, basicHeader(basic.client_id, basic.client_secret as string))(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: grant_type repeated',
      req: () => [
        '/oauth/token',
        { ...form(confAuth()), body: `${new URLSearchParams(confAuth())}&grant_type=a&grant_type=b` },
      ],
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: no code',
      req: () => tok({ ...codeReq(), code: '' })(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: unknown code',
      req: () => tok(codeReq())(),
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'token: no code_verifier (PKCE missing)',
      req: () => tok({ ...codeReq(), code_verifier: '' })(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: code_verifier too short',
      req: () => tok({ ...codeReq(), code_verifier: 'short' })(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: no redirect_uri',
      req: () => tok({ ...codeReq(), redirect_uri: '' })(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: no refresh_token',
      req: () => tok({ ...confAuth(), grant_type: 'refresh_token' })(),
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'token: unknown refresh_token',
      req: () => tok({ ...confAuth(), grant_type: 'refresh_token', refresh_token: 'mcprt_nope' })(),
      expect: { status: 400, error: 'invalid_grant' },
    },
    {
      name: 'token: refresh for another resource',
      req: () =>
        tok({
          ...confAuth(),
          grant_type: 'refresh_token',
          refresh_token: 'mcprt_nope',
          resource: 'https://x.example/mcp',
        })(),
      expect: { status: 400, error: 'invalid_target' },
    },
  );

  // --- revoke ---
  const rev = (fields: Record<string, string>) => (): [string, RequestInit] => [
    '/oauth/revoke',
    form(fields),
  ];
  cases.push(
    {
      name: 'revoke: no token',
      req: () => rev(confAuth())(),
      expect: { status: 400, error: 'invalid_request' },
    },
    { name: 'revoke: no client authentication', req: () => rev({ token: 'x' })(), expect: invalidClient },
    {
      name: 'revoke: wrong client secret',
      req: () => rev({ ...confAuth(), client_secret: 'no', token: 'x' })(),
      expect: invalidClient,
    },
    {
      name: 'revoke: unsupported token_type_hint',
      req: () => rev({ ...confAuth(), token: 'x', token_type_hint: 'id_token' })(),
      expect: { status: 400, error: 'unsupported_token_type' },
    },
    {
      name: 'revoke: JSON body',
      req: () => [
        '/oauth/revoke',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":"x"}' },
      ],
      expect: { status: 400, error: 'invalid_request' },
    },
    {
      name: 'revoke: unknown token is 200 (RFC 7009 §2.2)',
      req: () => rev({ ...confAuth(), token: 'mcpat_unknown' })(),
      expect: { status: 200 },
    },
  );

  it(`has at least 50 cases (${cases.length})`, () => assert.ok(cases.length >= 50));

  it('each malformed request gets its spec error, none a 5xx, and the database is unchanged', async () => {
    const before = JSON.stringify(dumpTables(h.broker));
    for (const c of cases) {
      const [path, init] = c.req();
      const res = await fetch(`${h.url}${path}`, { ...init, redirect: 'manual' });
      const body = await res.text();
      assert.ok(res.status < 500, `${c.name}: got ${res.status}`);
      if ('page' in c.expect) {
        assert.equal(res.status, c.expect.page, c.name);
        assert.match(res.headers.get('content-type') ?? '', /text\/html/, c.name);
        assert.equal(res.headers.get('location'), null, `${c.name}: must not redirect`);
        if (c.expect.error) assert.ok(body.includes(`${c.expect.error}: `), `${c.name}: ${body}`);
      } else {
        assert.equal(res.status, c.expect.status, `${c.name}: ${body}`);
        if (c.expect.error) {
          assert.equal((JSON.parse(body) as { error: string }).error, c.expect.error, `${c.name}: ${body}`);
          assert.equal(res.headers.get('cache-control'), 'no-store', c.name);
        }
        if (c.expect.status === 401)
          assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/, c.name);
      }
    }
    assert.equal(JSON.stringify(dumpTables(h.broker)), before);
  });
});
