import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OAuthClientInformationFullSchema } from '@modelcontextprotocol/core';
import { hashSecret } from '../../src/store/secrets.ts';
import {
  type BrokerHarness,
  dumpTables,
  registerClient,
  startBrokerInProcess,
} from '../support/oauth-harness.ts';

describe('POST /oauth/register', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startBrokerInProcess({ env: { BROKER_UNUSED_CLIENT_TTL: '1h' } });
  });
  after(() => h.close());

  it('registers Claude.ai (client_secret_post); the secret is shown once and stored hashed', async () => {
    const res = await fetch(`${h.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://claude.ai' },
      body: JSON.stringify({
        client_name: 'Claude',
        redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        scope: 'claudeai',
      }),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const info = OAuthClientInformationFullSchema.parse(await res.json());
    assert.ok(info.client_secret?.startsWith('mcpcs_'));
    assert.equal(info.client_secret_expires_at, 0);
    assert.equal(info.token_endpoint_auth_method, 'client_secret_post');
    const row = h.broker.store.db
      .prepare('SELECT * FROM oauth_client WHERE client_id = ?')
      .get(info.client_id);
    assert.equal(row?.['secret_hash'], hashSecret(info.client_secret as string));
    assert.ok(!JSON.stringify(dumpTables(h.broker)).includes(info.client_secret as string));
  });

  it('registers Cursor (custom scheme, public) and VS Code (loopback and vscode.dev URIs)', async () => {
    const cursor = await registerClient(h.url, {
      client_name: 'Cursor',
      redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
      token_endpoint_auth_method: 'none',
    });
    assert.equal(cursor.client_secret, undefined);
    const vscode = await registerClient(h.url, {
      client_name: 'Visual Studio Code',
      redirect_uris: [
        'https://vscode.dev/redirect',
        'https://insiders.vscode.dev/redirect',
        'http://127.0.0.1/',
        'http://127.0.0.1:33418/',
      ],
      token_endpoint_auth_method: 'none',
    });
    assert.deepEqual(vscode['grant_types'], ['authorization_code']);
    const basic = await registerClient(h.url, { redirect_uris: ['https://app.example/cb'] });
    assert.equal(basic['token_endpoint_auth_method'], 'client_secret_basic', 'RFC 7591 default');
    assert.equal(basic['client_name'], 'Unnamed MCP client');
  });

  it('purges registrations never used after the configured age, and keeps fresh ones', async () => {
    const old = await registerClient(h.url, { redirect_uris: ['https://old.example/cb'] });
    const fresh = await registerClient(h.url, { redirect_uris: ['https://fresh.example/cb'] });
    h.broker.store.db
      .prepare('UPDATE oauth_client SET created_at = ? WHERE client_id = ?')
      .run(Date.now() - 2 * 3_600_000, old.client_id);
    const purged = await h.broker.auth.purge();
    assert.ok(purged >= 1);
    assert.equal(await h.broker.store.getClient(old.client_id), undefined);
    assert.ok(await h.broker.store.getClient(fresh.client_id));
  });
});
