// An MCP client's OAuth provider (the SDK v1 and v2 interfaces share this shape) whose "browser" is
// headless Chromium: it opens the authorization URL, approves the broker's consent page, signs in
// on Gitea's real login form and approves its real authorize page, and reads the broker's redirect
// to the client's redirect_uri (whatever its scheme) from the broker callback's response.
import type { BrowserContext, Page } from 'playwright-core';
import type { Login } from './scripted-oauth.ts';

export type ClientShape = {
  name: string;
  redirectUrl: string;
  /** The client's registration metadata (DCR), or undefined for a metadata-document client id. */
  metadata: Record<string, unknown>;
  /** A Client ID Metadata Document URL the SDK presents as its client_id. */
  clientMetadataUrl?: string;
};

export type BrowserStep = 'broker consent' | 'forge login' | 'forge authorize';

export class ChromiumOAuthProvider<Info, Tokens, Discovery> {
  readonly shape: ClientShape;
  readonly #who: Login;
  readonly #context: () => Promise<BrowserContext>;
  readonly #brokerUrl: string;
  info: Info | undefined;
  stored: Tokens | undefined;
  discovery: Discovery | undefined;
  verifier = '';
  callback: URL | undefined;
  redirects = 0;
  /** The pages the last walk went through, in order. */
  steps: BrowserStep[] = [];
  /** Set to make any further authorization attempt fail, as a user closing the browser would. */
  refuse = false;
  /** The browser tab of the last walk, still signed in to the forge (for its settings pages). */
  page: Page | undefined;

  constructor(o: {
    shape: ClientShape;
    who: Login;
    brokerUrl: string;
    context: () => Promise<BrowserContext>;
  }) {
    this.shape = o.shape;
    this.#who = o.who;
    this.#context = o.context;
    this.#brokerUrl = o.brokerUrl;
  }

  get redirectUrl(): string {
    return this.shape.redirectUrl;
  }
  get clientMetadata() {
    return this.shape.metadata as { redirect_uris: string[] } & Record<string, unknown>;
  }
  get clientMetadataUrl(): string | undefined {
    return this.shape.clientMetadataUrl;
  }
  clientInformation(): Info | undefined {
    return this.info;
  }
  saveClientInformation(i: Info): void {
    this.info = i;
  }
  tokens(): Tokens | undefined {
    return this.stored;
  }
  saveTokens(t: Tokens): void {
    this.stored = t;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
  saveDiscoveryState(d: Discovery): void {
    this.discovery = d;
  }
  discoveryState(): Discovery | undefined {
    return this.discovery;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.redirects++;
    if (this.refuse) throw new Error('the user declined to sign in again');
    const context = await this.#context();
    const page = await context.newPage();
    this.page = page;
    this.steps = [];
    // Where the client would be sent: any scheme (https://claude.ai, cursor://, loopback).
    const back = page.waitForResponse((r) => r.url().startsWith(`${this.#brokerUrl}/oauth/callback`), {
      timeout: 60_000,
    });
    await page.goto(url.href);
    let done = false;
    void back.then(() => {
      done = true;
    });
    for (let i = 0; i < 8 && !done; i++) {
      await page.waitForLoadState('domcontentloaded');
      if (done) break;
      if (await page.$('#consent-approve')) {
        this.steps.push('broker consent');
        await Promise.all([page.waitForNavigation().catch(() => {}), page.click('#consent-approve')]);
      } else if (await page.$('form[action*="/user/login"] input[name="user_name"]')) {
        this.steps.push('forge login');
        await page.fill('input[name="user_name"]', this.#who.login);
        await page.fill('input[name="password"]', this.#who.password);
        await Promise.all([
          page.waitForNavigation().catch(() => {}),
          page.click('form[action*="/user/login"] button.primary'),
        ]);
      } else if (await page.$('form[action$="/login/oauth/grant"] button[name="granted"][value="true"]')) {
        this.steps.push('forge authorize');
        await Promise.all([
          page.waitForNavigation().catch(() => {}),
          page.click('form[action$="/login/oauth/grant"] button[name="granted"][value="true"]'),
        ]);
      } else {
        await Promise.race([back, page.waitForNavigation({ timeout: 10_000 })]).catch(() => {});
      }
    }
    const response = await back;
    const location = response.headers()['location'];
    if (!location) {
      throw new Error(
        `the broker's callback answered ${response.status()}: ${(await response.text()).slice(0, 400)}`,
      );
    }
    this.callback = new URL(location);
  }

  code(): string {
    const code = this.callback?.searchParams.get('code');
    if (!code) throw new Error(`no authorization code at the callback: ${this.callback?.href}`);
    return code;
  }
}
