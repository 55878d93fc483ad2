// The browser step of a real MCP client's OAuth flow, scripted with the cookie-jar user agent: from
// the broker's authorization URL through consent, the emulator's login and grant pages, up to the
// redirect to the client's callback (which is returned, not followed, unless asked to). The forms
// are found by what they post to, so a real Gitea's pages work as the emulator's do.
import { walkForge } from './forge-walk.ts';
import { UserAgent } from './user-agent.ts';

export type Login = { login: string; password: string };

/**
 * Walks an authorization URL as a user approving everything would. Stops at the first redirect
 * accepted by `isCallback` and returns its URL.
 */
export async function walkAuthorization(
  authorizationUrl: string | URL,
  isCallback: (u: URL) => boolean,
  who: Login,
  ua = new UserAgent(),
): Promise<URL> {
  return (await walkForge(ua, authorizationUrl, who, isCallback)).location;
}

/**
 * An OAuthClientProvider (the SDK v1 and v2 interfaces have this shape) that keeps everything in
 * memory and whose "browser" is the scripted walk above. The callback URL it reached is kept in
 * `callback` for the test to finish the flow with.
 */
export class ScriptedOAuthProvider<Info, Tokens, Discovery> {
  readonly #redirectUrl: string;
  readonly #who: Login;
  readonly #clientName: string;
  info: Info | undefined;
  stored: Tokens | undefined;
  discovery: Discovery | undefined;
  verifier = '';
  callback: URL | undefined;
  redirects = 0;
  /** Set to make any further authorization attempt fail, as a user closing the browser would. */
  refuse = false;

  constructor(opts: { redirectUrl: string; who: Login; clientName: string }) {
    this.#redirectUrl = opts.redirectUrl;
    this.#who = opts.who;
    this.#clientName = opts.clientName;
  }

  get redirectUrl(): string {
    return this.#redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: this.#clientName,
      redirect_uris: [this.#redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
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
    this.callback = await walkAuthorization(
      url,
      (u) => u.href.startsWith(`${this.#redirectUrl}?`),
      this.#who,
    );
  }

  /** The authorization code the walk brought back (throws if the walk did not happen or failed). */
  code(): string {
    const code = this.callback?.searchParams.get('code');
    if (!code) throw new Error(`no authorization code at the callback: ${this.callback?.href}`);
    return code;
  }
}
