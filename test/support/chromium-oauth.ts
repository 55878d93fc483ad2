// An MCP client's OAuth provider (the SDK v1 and v2 interfaces share this shape) whose "browser" is
// headless Chromium: it opens the authorization URL, approves the broker's consent page, signs in
// on Gitea's real login form and approves its real authorize page, and reads the broker's redirect
// to the client's redirect_uri (whatever its scheme) from the broker callback's response.
import type { BrowserContext, Page } from 'playwright-core';
import { type Login, ScriptedOAuthProvider } from './scripted-oauth.ts';

export type ClientShape = {
  name: string;
  redirectUrl: string;
  /** The client's registration metadata (DCR), or undefined for a metadata-document client id. */
  metadata: Record<string, unknown>;
  /** A Client ID Metadata Document URL the SDK presents as its client_id. */
  clientMetadataUrl?: string;
};

export type BrowserStep = 'broker consent' | 'forge login' | 'forge authorize';

export class ChromiumOAuthProvider<Info, Tokens, Discovery> extends ScriptedOAuthProvider<
  Info,
  Tokens,
  Discovery
> {
  readonly shape: ClientShape;
  readonly #who: Login;
  readonly #context: () => Promise<BrowserContext>;
  readonly #brokerUrl: string;
  /** The pages the last walk went through, in order. */
  steps: BrowserStep[] = [];
  /** The browser tab of the last walk, still signed in to the forge (for its settings pages). */
  page: Page | undefined;

  constructor(o: {
    shape: ClientShape;
    who: Login;
    brokerUrl: string;
    context: () => Promise<BrowserContext>;
  }) {
    super({ redirectUrl: o.shape.redirectUrl, who: o.who, clientName: o.shape.name });
    this.shape = o.shape;
    this.#who = o.who;
    this.#context = o.context;
    this.#brokerUrl = o.brokerUrl;
  }

  // The shape's own registration metadata (what that client sends), not the scripted default.
  override get clientMetadata(): ScriptedOAuthProvider<Info, Tokens, Discovery>['clientMetadata'] {
    return this.shape.metadata as ScriptedOAuthProvider<Info, Tokens, Discovery>['clientMetadata'];
  }
  get clientMetadataUrl(): string | undefined {
    return this.shape.clientMetadataUrl;
  }

  /** What a real client does when the server refuses its credentials: forget them. */
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'tokens') this.stored = undefined;
    if (scope === 'all' || scope === 'client') this.info = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = '';
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }

  override async redirectToAuthorization(url: URL): Promise<void> {
    this.redirects++;
    if (this.refuse) throw new Error('the user declined to sign in again');
    const context = await this.#context();
    const page = await context.newPage();
    this.page = page;
    this.steps = [];
    // The broker's redirect to the client, whatever its scheme (https://claude.ai, cursor://,
    // loopback), is read from the raw response headers Chromium reports over CDP: a redirect to a
    // custom scheme never becomes a request Playwright could see or route.
    let answer: ((a: { status: number; location?: string; body: string }) => void) | undefined;
    const back = new Promise<{ status: number; location?: string; body: string }>((r) => {
      answer = r;
    });
    let done = false;
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.responseReceivedExtraInfo', (ev) => {
      const headers = Object.fromEntries(
        Object.entries(ev.headers).map(([k, v]) => [k.toLowerCase(), String(v)]),
      );
      const location = headers['location'];
      if (location?.startsWith(`${this.shape.redirectUrl}?`) && !done) {
        done = true;
        answer?.({ status: ev.statusCode, location, body: '' });
      }
    });
    // A broker error page instead of a redirect ends the walk too.
    page.on('response', (r) => {
      const redirect = r.status() >= 300 && r.status() < 400;
      if (r.url().startsWith(`${this.#brokerUrl}/oauth/callback`) && !redirect && !done) {
        done = true;
        void r.text().then((body) => answer?.({ status: r.status(), body }));
      }
    });
    await page.goto(url.href);
    const login = 'form[action*="/user/login"]';
    const grant = 'form[action$="/login/oauth/grant"] button[name="granted"][value="true"]';
    // Each step clicks, then waits for the page to change; a check that races a navigation is retried.
    const act = async (step: BrowserStep, run: () => Promise<void>) => {
      const before = page.url();
      this.steps.push(step);
      await run();
      await page.waitForURL((u) => u.href !== before, { timeout: 15_000 }).catch(() => {});
    };
    for (let i = 0; i < 40 && !done; i++) {
      try {
        await page.waitForLoadState('domcontentloaded');
        if (done) break;
        if (await page.$('#consent-approve')) {
          await act('broker consent', () => page.click('#consent-approve'));
        } else if (await page.$(`${login} input[name="user_name"]`)) {
          await act('forge login', async () => {
            await page.fill(`${login} input[name="user_name"]`, this.#who.login);
            await page.fill(`${login} input[name="password"]`, this.#who.password);
            await page.click(`${login} button.primary`);
          });
        } else if (await page.$(grant)) {
          await act('forge authorize', () => page.click(grant));
        } else {
          await page.waitForTimeout(100);
        }
      } catch (e) {
        if (!/context was destroyed|navigation/i.test((e as Error).message)) throw e;
      }
    }
    const response = await Promise.race([
      back,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`the walk stopped at ${page.url()} (${this.steps.join(', ')})`)),
          15_000,
        ),
      ),
    ]);
    const location = response.location;
    if (!location) {
      throw new Error(`the broker's callback answered ${response.status}: ${response.body.slice(0, 400)}`);
    }
    this.callback = new URL(location);
  }
}
