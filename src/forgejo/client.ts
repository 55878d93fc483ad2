// The broker as an OAuth client of Forgejo (a confidential app, client_secret_post), built on
// oauth4webapi. Endpoints are Forgejo's fixed paths, so no discovery call is needed at startup.
import * as oauth from 'oauth4webapi';

export type ForgejoClientOptions = {
  forgejoUrl: string;
  clientId: string;
  clientSecret: string;
  /** `<public>/oauth/callback`, registered in the Forgejo app. */
  redirectUri: string;
  /** Space-separated Forgejo scopes; kept stable because a grant with another scope string fails. */
  scope: string;
  timeoutMs?: number;
};

export type UpstreamTokens = { accessToken: string; refreshToken: string; expiresAt: number };
export type ForgejoUser = { id: number; login: string; groups: string[] };

/** Forgejo said the credential is dead (grant revoked, refresh token used or expired). */
export class UpstreamGrantError extends Error {
  override name = 'UpstreamGrantError';
}

/**
 * Forgejo's own words when it refused a token request (`error`, `error_description`), for the log:
 * oauth4webapi's message alone says only "server responded with an error in the response body".
 */
export function forgejoErrorFields(e: unknown): { forgejoError?: string; forgejoErrorDescription?: string } {
  if (!(e instanceof oauth.ResponseBodyError)) return {};
  return {
    forgejoError: e.error,
    ...(e.error_description ? { forgejoErrorDescription: e.error_description } : {}),
  };
}

export class ForgejoClient {
  readonly #as: oauth.AuthorizationServer;
  readonly #client: oauth.Client;
  readonly #auth: oauth.ClientAuth;
  readonly #opts: ForgejoClientOptions;

  constructor(opts: ForgejoClientOptions) {
    this.#opts = opts;
    const root = opts.forgejoUrl.replace(/\/+$/, '');
    this.#as = {
      issuer: root,
      authorization_endpoint: `${root}/login/oauth/authorize`,
      token_endpoint: `${root}/login/oauth/access_token`,
      userinfo_endpoint: `${root}/login/oauth/userinfo`,
    };
    this.#client = { client_id: opts.clientId };
    this.#auth = oauth.ClientSecretPost(opts.clientSecret);
  }

  #http(): { signal: AbortSignal; [oauth.allowInsecureRequests]: boolean } {
    return {
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 10_000),
      // Forgejo over plain http is allowed by the settings (internal networks, the emulator).
      [oauth.allowInsecureRequests]: this.#opts.forgejoUrl.startsWith('http:'),
    };
  }

  /** Where the browser goes after consent, with the broker's own state and PKCE challenge. */
  async authorizationUrl(state: string, codeVerifier: string): Promise<string> {
    const url = new URL(this.#as.authorization_endpoint as string);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.#opts.clientId,
      redirect_uri: this.#opts.redirectUri,
      scope: this.#opts.scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    }).toString();
    return url.href;
  }

  /** Exchanges the callback's code; `callback` is the full query of the callback request. */
  async exchangeCode(
    callback: URLSearchParams,
    state: string,
    codeVerifier: string,
  ): Promise<UpstreamTokens> {
    const params = oauth.validateAuthResponse(this.#as, this.#client, callback, state);
    const sentAt = Date.now();
    const response = await oauth.authorizationCodeGrantRequest(
      this.#as,
      this.#client,
      this.#auth,
      params,
      this.#opts.redirectUri,
      codeVerifier,
      this.#http(),
    );
    return tokens(await oauth.processAuthorizationCodeResponse(this.#as, this.#client, response), sentAt);
  }

  async refresh(refreshToken: string): Promise<UpstreamTokens> {
    const sentAt = Date.now();
    try {
      const response = await oauth.refreshTokenGrantRequest(
        this.#as,
        this.#client,
        this.#auth,
        refreshToken,
        this.#http(),
      );
      return tokens(await oauth.processRefreshTokenResponse(this.#as, this.#client, response), sentAt);
    } catch (e) {
      // Forgejo answers a revoked grant with invalid_grant, a used or expired refresh token with
      // unauthorized_client: either way this credential can never be refreshed again.
      if (
        e instanceof oauth.ResponseBodyError &&
        ['invalid_grant', 'unauthorized_client'].includes(e.error)
      ) {
        throw new UpstreamGrantError(`Forgejo refused the refresh: ${e.error}`, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Whether Forgejo refuses this access token (401 from its userinfo endpoint). Any other answer,
   * including an error of Forgejo's own, is not taken as a verdict on the token.
   */
  async accessTokenRejected(accessToken: string): Promise<boolean> {
    const res = await fetch(this.#as.userinfo_endpoint as string, {
      headers: { authorization: `Bearer ${accessToken}` },
      signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 10_000),
    });
    await res.body?.cancel();
    return res.status === 401;
  }

  async userinfo(accessToken: string): Promise<ForgejoUser> {
    const response = await oauth.userInfoRequest(this.#as, this.#client, accessToken, this.#http());
    const info = await oauth.processUserInfoResponse(
      this.#as,
      this.#client,
      oauth.skipSubjectCheck,
      response,
    );
    const id = Number(info.sub);
    const login = info.preferred_username;
    if (!Number.isSafeInteger(id) || id <= 0 || typeof login !== 'string' || login === '') {
      throw new Error('Forgejo userinfo lacks a numeric sub or preferred_username');
    }
    const groups = Array.isArray(info['groups']) ? info['groups'].filter((g) => typeof g === 'string') : [];
    return { id, login, groups };
  }
}

/**
 * Forgejo dates a token from the whole second it was issued in, so it may die up to a second
 * before `expires_in` counted from the response says: count from the request, one second less.
 */
function tokens(r: oauth.TokenEndpointResponse, sentAt: number): UpstreamTokens {
  if (!r.refresh_token) throw new Error('Forgejo returned no refresh token');
  return {
    accessToken: r.access_token,
    refreshToken: r.refresh_token,
    expiresAt: sentAt + ((r.expires_in ?? 3600) - 1) * 1000,
  };
}
