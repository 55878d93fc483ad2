// A real browser: headless Chromium clicks through the consent page and the emulator's login.
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { pkce, registerClient } from '../support/oauth-harness.ts';
import { authorizeUrl, type Stack, startStack, tokenRequest } from '../support/oauth-stack.ts';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

/** The MCP client's loopback redirect target, and an attacker's pages on another site (localhost). */
async function startSite(
  pages: Record<string, string>,
): Promise<{ port: number; server: Server; hits: URL[] }> {
  const hits: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.push(url);
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(pages[url.pathname] ?? '<p>client got the redirect</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server, hits };
}

describe('headless Chromium', () => {
  let s: Stack;
  let browser: Browser;
  let site: Awaited<ReturnType<typeof startSite>>;
  let client: { client_id: string };
  const attackerPages: Record<string, string> = {};

  before(async () => {
    s = await startStack();
    browser = await launchChromium();
    site = await startSite(attackerPages);
    client = await registerClient(s.url, {
      client_name: 'Browser Test Client',
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
  });
  after(async () => {
    await browser.close();
    site.server.closeAllConnections();
    await new Promise((r) => site.server.close(r));
    await s.closeAll();
  });

  const consentUrl = (challenge: string) =>
    authorizeUrl(s.url, {
      clientId: client.client_id,
      redirectUri: `http://127.0.0.1:${site.port}/cb`,
      challenge,
      state: 'br-state',
    });

  async function untilClient(page: Page): Promise<URL> {
    for (let i = 0; i < 5; i++) {
      const url = new URL(page.url());
      if (url.port === String(site.port) && url.pathname === '/cb') return url;
      if (await page.$('#grant-approve')) {
        await Promise.all([page.waitForNavigation(), page.click('#grant-approve')]);
        continue;
      }
      await page.waitForURL((u) => u.port === String(site.port), { timeout: 5000 });
    }
    throw new Error(`never reached the client: ${page.url()}`);
  }

  it('clicks through consent and the Forgejo login, and the code buys a token; the consent page is screenshotted', async (t) => {
    const { verifier, challenge } = pkce();
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    await page.goto(consentUrl(challenge));
    assert.equal(await page.textContent('#client-name'), 'Browser Test Client');
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'consent-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 1000);
    const cookies = await context.cookies(s.url);
    assert.ok(
      cookies.some(
        (c) => c.name.startsWith('__Host-fmb-browser-') && c.secure && c.httpOnly && c.sameSite === 'Lax',
      ),
      'Chromium kept the __Host- cookie on http loopback',
    );

    await Promise.all([page.waitForNavigation(), page.click('#consent-approve')]);
    assert.ok(page.url().startsWith(`${s.emulator.url}/user/login`), page.url());
    await page.fill('input[name="user_name"]', 'alice');
    await page.fill('input[name="password"]', 'alice-pw');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    const back = await untilClient(page);
    assert.equal(back.searchParams.get('state'), 'br-state');
    assert.equal(back.searchParams.get('iss'), s.url);
    const r = await tokenRequest(s.url, {
      grant_type: 'authorization_code',
      code: back.searchParams.get('code') as string,
      redirect_uri: `http://127.0.0.1:${site.port}/cb`,
      code_verifier: verifier,
      client_id: client.client_id,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${r.body['access_token']}`)).ok);
  });

  it('the consent page cannot be framed, and a forged POST without the CSRF token fails', async (t) => {
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();
    const url = consentUrl(pkce().challenge);
    // Another site frames the consent page; a harmless page of its own in a second frame shows
    // that framing as such works in this browser.
    attackerPages['/frame'] =
      `<iframe id="victim" src="${url}"></iframe><iframe id="own" src="/own"></iframe>`;
    attackerPages['/own'] = '<p id="own-content">own page</p>';
    await page.goto(`http://localhost:${site.port}/frame`, { waitUntil: 'domcontentloaded', timeout: 5000 });
    await page.waitForTimeout(500);
    const own = page.frames().find((f) => f.url().endsWith('/own'));
    assert.ok(await own?.$('#own-content'), 'the control frame rendered');
    const urls = page.frames().map((f) => f.url());
    assert.ok(
      !urls.some((u) => u.startsWith(`${s.url}/oauth/authorize`)),
      `the consent page loaded in a frame: ${urls}`,
    );
    assert.ok(urls.includes('chrome-error://chromewebdata/'), `the framed consent page was blocked: ${urls}`);

    // The user has a live consent page; an attacker who learned its request handle posts without CSRF.
    const victim = await context.newPage();
    await victim.goto(url);
    const requestId = await victim.getAttribute('input[name="request"]', 'value');
    assert.ok(requestId);
    const emulatorHitsBefore = s.emulator.requests.length;
    attackerPages['/forge'] = `<form id="f" method="post" action="${s.url}/oauth/consent">
      <input name="request" value="${requestId}"><input name="decision" value="approve"></form>
      <button id="go" onclick="document.getElementById('f').submit()">go</button>`;
    await page.goto(`http://localhost:${site.port}/forge`);
    const response = await Promise.all([page.waitForNavigation(), page.click('#go')]).then(([r]) => r);
    assert.ok(
      response && response.status() >= 400 && response.status() < 500,
      `forged POST answered ${response?.status()}`,
    );
    assert.ok(page.url().startsWith(`${s.url}/oauth/consent`));
    assert.match((await page.textContent('#error-message')) ?? '', /csrf is required|did not come from/);
    assert.equal(s.emulator.requests.length, emulatorHitsBefore, 'nothing went to Forgejo');

    // The genuine page still works afterwards.
    await Promise.all([victim.waitForNavigation(), victim.click('#consent-approve')]);
    assert.ok(victim.url().startsWith(`${s.emulator.url}/user/login`));
  });
});
