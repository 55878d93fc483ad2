// A real third-party client: the official MCP SDK's OAuth support runs discovery, registration,
// authorization (its browser step driven by headless Chromium) and the token exchange.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  auth,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { type Stack, startStack } from '../support/oauth-stack.ts';

describe('the official MCP SDK client against the broker', () => {
  let s: Stack;
  let browser: Browser;
  let cb: { server: Server; port: number };

  before(async () => {
    s = await startStack();
    browser = await launchChromium();
    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cb = { server, port: (server.address() as { port: number }).port };
  });
  after(async () => {
    await browser.close();
    cb.server.closeAllConnections();
    await new Promise((r) => cb.server.close(r));
    await s.closeAll();
  });

  it('discovery → DCR → authorization in Chromium → token exchange ends with a valid token', async () => {
    const redirectUrl = `http://127.0.0.1:${cb.port}/callback`;
    let info: StoredOAuthClientInformation | undefined;
    let tokens: StoredOAuthTokens | undefined;
    let verifier = '';
    let callback: URL | undefined;
    let discovery: OAuthDiscoveryState | undefined;
    const provider: OAuthClientProvider = {
      saveDiscoveryState: (d) => {
        discovery = d;
      },
      discoveryState: () => discovery,
      get redirectUrl() {
        return redirectUrl;
      },
      get clientMetadata(): OAuthClientMetadata {
        return {
          client_name: 'MCP SDK test client',
          redirect_uris: [redirectUrl],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        };
      },
      clientInformation: () => info,
      saveClientInformation: (i) => {
        info = i;
      },
      tokens: () => tokens,
      saveTokens: (t) => {
        tokens = t;
      },
      saveCodeVerifier: (v) => {
        verifier = v;
      },
      codeVerifier: () => verifier,
      redirectToAuthorization: async (url) => {
        const page = await browser.newPage();
        try {
          await page.goto(url.href);
          await Promise.all([page.waitForNavigation(), page.click('#consent-approve')]);
          await page.fill('input[name="user_name"]', 'alice');
          await page.fill('input[name="password"]', 'alice-pw');
          await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
          if (await page.$('#grant-approve'))
            await Promise.all([page.waitForNavigation(), page.click('#grant-approve')]);
          await page.waitForURL((u) => u.href.startsWith(redirectUrl), { timeout: 5000 });
          callback = new URL(page.url());
        } finally {
          await page.close();
        }
      },
    };

    const serverUrl = `${s.url}/mcp`;
    assert.equal(await auth(provider, { serverUrl }), 'REDIRECT');
    assert.ok(info?.client_id, 'the SDK registered a client');
    assert.ok(callback, 'the browser reached the client callback');
    const code = callback.searchParams.get('code') as string;
    const iss = callback.searchParams.get('iss') as string;
    assert.equal(iss, s.url);
    assert.equal(await auth(provider, { serverUrl, authorizationCode: code, iss }), 'AUTHORIZED');
    assert.ok(tokens?.access_token);
    const p = await s.broker.auth.verifyBearer(`Bearer ${tokens.access_token}`);
    assert.ok(p.ok, JSON.stringify(p));
    assert.equal(p.principal.clientId, info.client_id);
    assert.equal(p.principal.login, 'alice');

    // Without a code, the SDK refreshes with the stored refresh token (client_secret_basic).
    const first = tokens;
    assert.equal(await auth(provider, { serverUrl }), 'AUTHORIZED');
    assert.notEqual(tokens.refresh_token, first.refresh_token, 'the refresh token rotated');
    assert.notEqual(tokens.access_token, first.access_token);
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${tokens.access_token}`)).ok);
  });
});
