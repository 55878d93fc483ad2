// The OAuth edges an outside security review found (issue 12): each test here failed on the code
// before the fix.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CimdResolver } from '../../src/oauth/cimd.ts';
import { OAuthError } from '../../src/oauth/respond.ts';
import { pkce, registerClient } from '../support/oauth-harness.ts';
import { authorizeUrl, type Stack, startStack } from '../support/oauth-stack.ts';
import { selfSignedCert, startHttpsServer } from '../support/tls.ts';
import { UserAgent } from '../support/user-agent.ts';

const EVIL = 'https://evil.example/landing';

describe('names and redirect URIs a consent page must not show or follow', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.closeAll());

  const register = (metadata: Record<string, unknown>) =>
    fetch(`${s.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], ...metadata }),
    });

  it('refuses client names with bidi controls or zero-width characters', async () => {
    for (const name of [
      'Claude\u202E',
      'Cl\u202Eedua',
      'Visual\u2066 Studio\u2069 Code',
      'Cla\u200Bude',
      'Cla\u200Dude',
      '\uFEFFClaude',
      'Claude\u3164',
    ]) {
      const res = await register({ client_name: name });
      assert.equal(res.status, 400, JSON.stringify(name));
      const body = (await res.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, /bidi or invisible/);
    }
    assert.equal((await register({ client_name: 'Zoë’s 日本 client' })).status, 201);
  });

  it('refuses view-source: and other non-navigable schemes, and blanks, as redirect URIs', async () => {
    for (const uri of [
      'view-source:https://evil.example/',
      'filesystem:https://evil.example/temporary/x',
      'jar:https://evil.example/x.jar!/',
      'mhtml:https://evil.example/x.mht',
      'intent://evil#Intent;end',
      'chrome://settings',
      'blob:https://evil.example/uuid',
      ' javascript:alert(1)',
      'https://app.example/cb\t',
    ]) {
      const res = await register({ redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      assert.equal(res.status, 400, uri);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_redirect_uri', uri);
    }
    const ok = await register({
      redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
      token_endpoint_auth_method: 'none',
    });
    assert.equal(ok.status, 201, 'a custom app scheme stays allowed for public clients');
  });

  it('refuses a Client ID Metadata Document whose name has a bidi control', async () => {
    const tls = selfSignedCert();
    let origin = '';
    const srv = await startHttpsServer(tls, {
      '/bidi.json': () => ({
        body: JSON.stringify({
          client_id: `${origin}/bidi.json`,
          client_name: 'Claude Code\u202E',
          redirect_uris: ['http://127.0.0.1/callback'],
          token_endpoint_auth_method: 'none',
        }),
      }),
    });
    origin = srv.origin;
    try {
      const resolver = new CimdResolver({ allowPrivateHosts: ['localhost'], extraCa: [tls.cert] });
      const err = await resolver.resolve(`${origin}/bidi.json`).catch((e: unknown) => e);
      assert.ok(err instanceof OAuthError, String(err));
      assert.equal(err.error, 'invalid_client');
      assert.match(err.message, /client_name/);
    } finally {
      await srv.close();
    }
  });
});

describe('authorize is not an open redirector (RFC 9700 §4.11.2)', () => {
  let s: Stack;
  let client: { client_id: string };
  before(async () => {
    s = await startStack();
    client = await registerClient(s.url, { client_name: 'Evil', redirect_uris: [EVIL] });
  });
  after(() => s.closeAll());

  const valid = () =>
    new URL(
      authorizeUrl(s.url, { clientId: client.client_id, redirectUri: EVIL, challenge: pkce().challenge }),
    );

  it('a registered client’s malformed request shows a page and never sends the browser to its redirect URI', async () => {
    const cases: [string, (q: URLSearchParams) => void, RegExp][] = [
      ['response_type=token', (q) => q.set('response_type', 'token'), /unsupported_response_type/],
      ['no response_type', (q) => q.delete('response_type'), /response_type is required/],
      ['no PKCE', (q) => q.delete('code_challenge'), /PKCE/],
      ['plain PKCE', (q) => q.set('code_challenge_method', 'plain'), /S256/],
      ['short challenge', (q) => q.set('code_challenge', 'abc'), /S256 challenge/],
      ['another resource', (q) => q.set('resource', 'https://other.example/mcp'), /invalid_target/],
      ['repeated state', (q) => q.append('state', 'again'), /state is repeated/],
    ];
    for (const [name, change, why] of cases) {
      const url = valid();
      change(url.searchParams);
      const res = await fetch(url, { redirect: 'manual' });
      assert.equal(res.status, 400, name);
      assert.equal(res.headers.get('location'), null, `${name}: no redirect`);
      const body = await res.text();
      assert.match(body, why, name);
      assert.ok(!body.includes('evil.example/landing?'), `${name}: no link with the error either`);
      assert.doesNotMatch(body, /http-equiv="refresh"/, `${name}: no automatic redirect`);
    }
    const ok = await new UserAgent().get(valid());
    assert.equal(ok.status, 200, 'the same client’s valid request reaches the consent page');
    assert.match(ok.body, /consent-form/);
  });
});
