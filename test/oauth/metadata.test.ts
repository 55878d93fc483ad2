import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OAuthMetadataSchema, OAuthProtectedResourceMetadataSchema } from '@modelcontextprotocol/core';
import { type BrokerHarness, startBrokerInProcess } from '../support/oauth-harness.ts';

describe('discovery documents', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startBrokerInProcess({});
  });
  after(() => h.close());

  for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    it(`${path} is RFC 9728 metadata the SDK schema accepts`, async () => {
      const res = await fetch(`${h.url}${path}`, { headers: { origin: 'https://inspector.example' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      const doc = OAuthProtectedResourceMetadataSchema.parse(await res.json());
      assert.equal(doc.resource, `${h.url}/mcp`);
      assert.deepEqual(doc.authorization_servers, [h.url]);
    });
  }

  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    it(`${path} is RFC 8414 metadata the SDK schema accepts`, async () => {
      const res = await fetch(`${h.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      const raw = (await res.json()) as Record<string, unknown>;
      const doc = OAuthMetadataSchema.parse(raw);
      assert.equal(doc.issuer, h.url, 'issuer is BROKER_PUBLIC_URL byte for byte');
      assert.deepEqual(doc.code_challenge_methods_supported, ['S256']);
      assert.deepEqual(doc.token_endpoint_auth_methods_supported, [
        'client_secret_post',
        'client_secret_basic',
        'none',
      ]);
      assert.equal(doc.registration_endpoint, `${h.url}/oauth/register`);
      assert.equal(doc.revocation_endpoint, `${h.url}/oauth/revoke`);
      assert.deepEqual(doc.scopes_supported, ['mcp']);
      assert.equal(raw['authorization_response_iss_parameter_supported'], true);
      assert.equal(raw['client_id_metadata_document_supported'], true);
    });
  }

  it('answers CORS preflights on register and token, and not on authorize', async () => {
    for (const path of [
      '/oauth/register',
      '/oauth/token',
      '/oauth/revoke',
      '/.well-known/oauth-authorization-server',
    ]) {
      const res = await fetch(`${h.url}${path}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://inspector.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(res.status, 204, path);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/);
      assert.match(res.headers.get('access-control-expose-headers') ?? '', /WWW-Authenticate/);
    }
    const res = await fetch(`${h.url}/oauth/authorize`, { method: 'OPTIONS' });
    assert.equal(res.status, 404);
  });
});
