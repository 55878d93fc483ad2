// Issue 16 acceptance, in the real browser: the connected-apps page at /account. A user with two
// apps signs in through Forgejo, sees both (name, redirect host, registration, mode, times, active
// sessions), revokes one, and exactly that app's access ends within a second (its session and
// stream close, its token fails) while the other keeps working. Screenshots go to docs/screenshots/.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { pkce, registerClient } from '../support/oauth-harness.ts';
import { authorizeUrl, type Stack, startStack } from '../support/oauth-stack.ts';
import { signInAs } from '../support/sign-in.ts';

// Every run writes to test-artifacts/; UPDATE_SCREENSHOTS=1 refreshes the checked-in ones in docs/.
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const DOCS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const PHONE = { width: 390, height: 844 };

async function connect(s: Stack, token: string): Promise<Client> {
  const client = new Client({ name: 'account test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  assert.ok(statSync(path).size > 5000, `${name} has content`);
  if (process.env['UPDATE_SCREENSHOTS'] === '1') copyFileSync(path, join(DOCS, name));
}

describe('connected apps page in headless Chromium', () => {
  let s: Stack;
  let browser: Browser;
  before(async () => {
    s = await startStack();
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
    await s.closeAll();
  });

  async function signedIn(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${s.url}/account`);
    assert.ok(await page.$('#account-sign-in'), 'signed out, the page offers the Forgejo sign-in');
    await Promise.all([page.waitForNavigation(), page.click('#account-sign-in')]);
    assert.ok(page.url().startsWith(`${s.emulator.url}/user/login`), page.url());
    await page.fill('input[name="user_name"]', 'alice');
    await page.fill('input[name="password"]', 'alice-pw');
    await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
    if (await page.$('#grant-approve'))
      await Promise.all([page.waitForNavigation(), page.click('#grant-approve')]);
    await page.waitForURL(`${s.url}/account`);
    return { context, page };
  }

  it('lists both apps of the user; revoking one ends exactly its access within a second', async (t) => {
    const a = await signInAs(s, { mode: 'write', clientName: 'Claude (example)' });
    const b = await signInAs(s, { mode: 'read', clientName: 'Cursor (example)' });
    const ca = await connect(s, a.token);
    const cb = await connect(s, b.token);
    t.after(async () => {
      await ca.close().catch(() => {});
      await cb.close().catch(() => {});
    });
    await ca.listTools();
    await cb.listTools();
    const grants = await s.broker.store.listGrants(1001);
    const grantA = grants.find((g) => g.clientId === a.clientId)?.grantId as string;
    const grantB = grants.find((g) => g.clientId === b.clientId)?.grantId as string;
    assert.ok(s.broker.gateway.activeConnections(grantA) >= 1);

    const { context, page } = await signedIn();
    t.after(() => context.close());
    const appA = page.locator(`li.app[data-grant="${grantA}"]`);
    const appB = page.locator(`li.app[data-grant="${grantB}"]`);
    assert.equal(await page.locator('li.app').count(), 2);
    assert.match((await appA.locator('h2').textContent()) ?? '', /Claude \(example\).*name not verified/);
    assert.equal(await appA.locator('.mode').textContent(), 'read and write');
    assert.equal(await appB.locator('.mode').textContent(), 'read only');
    assert.equal(await appA.locator('.redirect-host').textContent(), '127.0.0.1:47311');
    assert.equal(await appA.locator('.sessions').textContent(), '1');
    assert.match((await appA.textContent()) ?? '', /dynamic registration \(DCR\)/);
    assert.doesNotMatch((await appA.textContent()) ?? '', /Last used\s*never/);
    // Readable on a phone: nothing wider than the screen.
    const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(width <= PHONE.width, `page is ${width}px wide on a ${PHONE.width}px screen`);
    await shot(page, 'connected-apps.png');

    // From the click, watch app A's token and connections while the browser is still navigating.
    const clicked = Date.now();
    const navigated = Promise.all([page.waitForNavigation(), appA.locator('button').click()]);
    let ended = Number.POSITIVE_INFINITY;
    while (Date.now() - clicked < 5000) {
      const refused = !(await s.broker.auth.verifyBearer(`Bearer ${a.token}`)).ok;
      if (refused && s.broker.gateway.activeConnections(grantA) === 0) {
        ended = Date.now() - clicked;
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(ended < 1000, `app A's access ended ${ended} ms after the click`);
    await navigated;
    await assert.rejects(ca.listTools(), /401|invalid_token|Unauthorized|404|Session not found/i);
    // The other app keeps working, on its open session.
    assert.equal((await cb.listTools()).tools.length, 4);
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${b.token}`)).ok);
    assert.ok(await page.$('#notice'));
    assert.ok(
      s.logs
        .lines()
        .some((l) => l['event'] === 'grant_revoked' && l['by'] === 'user' && l['grantId'] === grantA),
      'the revocation is in the audit trail',
    );
    assert.equal(await page.locator('li.app').count(), 1);
    await shot(page, 'connected-apps-revoked.png');

    await Promise.all([page.waitForNavigation(), page.click('#revoke-all button')]);
    assert.ok(await page.$('#no-apps'));
    await assert.rejects(cb.listTools());
  });

  it('the page cannot be framed and its forms refuse a request without the CSRF token or session', async (t) => {
    const { context, page } = await signedIn();
    t.after(() => context.close());
    const res = await page.request.get(`${s.url}/account`);
    assert.equal(res.headers()['x-frame-options'], 'DENY');
    assert.match(res.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.match(res.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.doesNotMatch(await res.text(), /<script/i);
    const c = await signInAs(s, { clientName: 'Kept app' });
    const grant = (await s.broker.store.listGrants(1001)).find((g) => g.clientId === c.clientId)?.grantId;
    const forged = await page.request.post(`${s.url}/account/revoke`, {
      form: { grant: grant as string, csrf: 'x'.repeat(64) },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    const anonymous = await fetch(`${s.url}/account/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant: grant as string, csrf: 'x' }),
      redirect: 'manual',
    });
    assert.equal(anonymous.status, 401);
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${c.token}`)).ok, 'the grant survived');
    // Another user's grant cannot be revoked from alice's page either.
    const bobs = await signInAs(s, { clientName: 'Bob app', login: 'bob' });
    const bobGrant = (await s.broker.store.listGrants(1002))[0]?.grantId as string;
    const csrf = (await page.getAttribute(
      'form[action="/account/logout"] input[name="csrf"]',
      'value',
    )) as string;
    await page.request.post(`${s.url}/account/revoke`, { form: { grant: bobGrant, csrf }, maxRedirects: 0 });
    assert.ok((await s.broker.auth.verifyBearer(`Bearer ${bobs.token}`)).ok, "bob's grant survived");
  });

  it('the consent page with the read/write choice, on a phone', async (t) => {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 1 });
    t.after(() => context.close());
    const page = await context.newPage();
    const c = await registerClient(s.url, {
      client_name: 'Claude (example)',
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
    const consentUrl = authorizeUrl(s.url, {
      clientId: c.client_id,
      redirectUri: 'http://127.0.0.1:47311/cb',
      challenge: pkce().challenge,
    });
    await page.goto(consentUrl);
    assert.ok(await page.isChecked('#mode-write'));
    await page.check('#mode-read');
    const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(width <= PHONE.width, `consent page is ${width}px wide`);
    await shot(page, 'consent-page.png');
  });
});
