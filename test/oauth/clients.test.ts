// Each real client's shape (from their issue trackers) completes a flow.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerClient } from '../support/oauth-harness.ts';
import { browserFlow, fullFlow, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';
import { selfSignedCert, startHttpsServer } from '../support/tls.ts';

describe('client shapes', () => {
  const tls = selfSignedCert();
  let s: Stack;
  let cimd: Awaited<ReturnType<typeof startHttpsServer>>;
  let claudeCodeId = '';

  before(async () => {
    cimd = await startHttpsServer(tls, {
      '/oauth/claude-code-client-metadata': () => ({
        body: JSON.stringify({
          client_id: claudeCodeId,
          client_name: 'Claude Code',
          redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      }),
    });
    claudeCodeId = `${cimd.origin}/oauth/claude-code-client-metadata`;
    s = await startStack({ env: { BROKER_CIMD_ALLOW_PRIVATE_HOSTS: 'localhost' }, cimdExtraCa: [tls.cert] });
  });
  after(async () => {
    await s.closeAll();
    await cimd.close();
  });

  async function assertWorks(access: string, clientId: string) {
    const p = await s.broker.auth.verifyBearer(`Bearer ${access}`);
    assert.ok(p.ok, JSON.stringify(p));
    assert.equal(p.principal.clientId, clientId);
    assert.equal(p.principal.resource, `${s.url}/mcp`);
    assert.deepEqual(p.principal.scopes, ['mcp']);
  }

  it('Claude.ai: DCR, client_secret_post, its callback URL, scope=claudeai, no resource', async () => {
    const cb = 'https://claude.ai/api/mcp/auth_callback';
    const c = await registerClient(s.url, {
      client_name: 'Claude',
      redirect_uris: [cb, 'https://claude.com/api/mcp/auth_callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const { tokens } = await fullFlow(s.url, {
      clientId: c.client_id,
      redirectUri: cb,
      scope: 'claudeai',
      clientSecret: c.client_secret,
    });
    await assertWorks(tokens.access_token, c.client_id);
    const r = await tokenRequest(s.url, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: c.client_id,
      client_secret: c.client_secret as string,
    });
    assert.equal(r.status, 200);
  });

  it('Claude Code: a metadata-document client id over HTTPS, loopback redirect on a random port, no resource', async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const redirectUri = `http://localhost:${port}/callback`;
    const flow = await browserFlow(s.url, { clientId: claudeCodeId, redirectUri });
    assert.match(flow.consent.body, /Claude Code/);
    assert.match(flow.consent.body, /Identified by/);
    assert.equal(flow.params.get('iss'), s.url);
    const r = await tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code: flow.params.get('code') as string,
      redirect_uri: redirectUri,
      code_verifier: flow.verifier,
      client_id: claudeCodeId,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await assertWorks(r.body['access_token'] as string, claudeCodeId);
    assert.equal(
      cimd.hits.get('/oauth/claude-code-client-metadata'),
      1,
      'the document was fetched once and cached',
    );
  });

  it('Cursor: custom scheme, public client', async () => {
    const cb = 'cursor://anysphere.cursor-mcp/oauth/callback';
    const c = await registerClient(s.url, {
      client_name: 'Cursor',
      redirect_uris: [cb],
      token_endpoint_auth_method: 'none',
    });
    const { tokens } = await fullFlow(s.url, {
      clientId: c.client_id,
      redirectUri: cb,
      resource: `${s.url}/mcp`,
    });
    await assertWorks(tokens.access_token, c.client_id);
  });

  it('VS Code: registers its four URIs and falls back to a random loopback port', async () => {
    const c = await registerClient(s.url, {
      client_name: 'Visual Studio Code',
      redirect_uris: [
        'https://vscode.dev/redirect',
        'https://insiders.vscode.dev/redirect',
        'http://127.0.0.1/',
        'http://127.0.0.1:33418/',
      ],
      token_endpoint_auth_method: 'none',
    });
    const port = 40000 + Math.floor(Math.random() * 20000);
    const { tokens } = await fullFlow(s.url, {
      clientId: c.client_id,
      redirectUri: `http://127.0.0.1:${port}/`,
    });
    await assertWorks(tokens.access_token, c.client_id);
  });
});
