// A Claude.ai custom connector as the field reports it (2026), written from those reports and the
// MCP and OAuth specifications, not from the broker's code:
// - discovery: POST the connector URL without a token, then protected-resource metadata at the
//   path-suffixed URL and at the root, then the authorization server's RFC 8414 metadata;
// - registration: DCR with `client_secret_post`, sometimes twice per attempt, a new client per
//   connection; it silently gives up ("Couldn't reach the MCP server") without
//   `registration_client_uri` in the answer, and registers anew after `401 invalid_client`;
// - authorization in the user's browser, whose redirects after the consent POST must be 302 or 303
//   (a 307 re-posts the consent form to the next site); `scope=claudeai`, `resource`, PKCE S256;
// - the code exchanged with `client_secret_post`;
// - MCP: since August 2026 it opens with `server/discover` on 2026-07-28 and falls back to
//   `initialize` only where the Streamable HTTP binding says so (a 400 whose body is not a modern
//   error); before that it opened with `initialize`. It sends `Mcp-Method`/`Mcp-Name` on 2025
//   requests too, no longer reuses an `Mcp-Session-Id` (it initializes again for each exchange),
//   and identifies as `Claude-User` (its OAuth calls as `python-httpx`);
// - an expired access token: refreshed, or (as also reported) a new authorization instead;
// - tool calls time out at 300 s; results longer than about 150k characters are cut.
//
// Claude.ai uses a Client ID Metadata Document instead of DCR when the AS advertises CIMD and
// `none`; its document URL is on claude.ai, out of reach of tests, so the simulator takes the DCR
// path — the one the `registration_client_uri` reports are about.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type HtmlForm, parseForms, UserAgent } from './user-agent.ts';

export const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';
export const CLAUDE_MCP_UA = 'Claude-User';
export const CLAUDE_OAUTH_UA = 'python-httpx/0.28.1';
export const MODERN = '2026-07-28';
export const LEGACY = '2025-11-25';
/** Where Claude.ai cuts a tool result (characters of text). */
export const CLAUDE_RESULT_LIMIT = 150_000;
const TOOL_TIMEOUT_MS = 300_000;
/** Its requests from "Connect" to tokens, as `METHOD path status`, for a server with DCR. */
export const CLAUDE_AI_OPENING = [
  'POST /mcp 401',
  'GET /.well-known/oauth-protected-resource/mcp 200',
  'GET /.well-known/oauth-protected-resource 200',
  'GET /.well-known/oauth-authorization-server 200',
  'POST /oauth/register 201',
  'POST /oauth/register 201',
  'POST /oauth/token 200',
];
/** What a simulator sent, in CLAUDE_AI_OPENING's form. */
export const openingOf = (c: ClaudeAi): string[] =>
  c.sent.map((r) => `${r.method} ${new URL(r.url).pathname} ${r.status}`);
/** Modern JSON-RPC errors: a 400 carrying one comes from a 2026 server (no fallback). */
const MODERN_ERRORS = new Set([-32020, -32021, -32022]);

/** What Claude.ai shows when it gives up; the tests assert on these. */
export class ClaudeAiError extends Error {
  override name = 'ClaudeAiError';
}

export type ClaudeAiOptions = {
  /** The connector URL the user typed. */
  url: string;
  /** The Forgejo account the user signs in with (Forgejo's login form: user_name, password). */
  login: { login: string; password: string };
  /** `discover` since August 2026; `initialize` before. */
  opening?: 'discover' | 'initialize';
  /** What it does when the access token is refused as expired. */
  onExpiry?: 'refresh' | 'reauthorize';
  /** Registrations per connection attempt (1 or 2, as reported). */
  registrations?: number;
};

type Req = Omit<RequestInit, 'headers'> & { headers?: Record<string, string> };

type Sent = { method: string; url: string; headers: Record<string, string>; status: number; body?: unknown };

type Tokens = { access: string; refresh?: string };

type Client = { id: string; secret: string; configurationUri: string; registrationToken: string };

type AsMetadata = {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  registration_endpoint?: string;
  code_challenge_methods_supported?: string[];
};

export type ToolResult = { content?: { type: string; text?: string }[]; isError?: boolean } & Record<
  string,
  unknown
>;

export class ClaudeAi {
  readonly o: Required<ClaudeAiOptions>;
  /** Every request it sent, in order (headers lower-cased; no bodies of secrets are asserted on). */
  readonly sent: Sent[] = [];
  /** Registration answers, in order. */
  readonly registrations: Record<string, unknown>[] = [];
  /** Redirect statuses the user's browser followed. */
  readonly redirects: number[] = [];
  /** grant_type of each token request, in order. */
  readonly grants: string[] = [];
  /** Times the user was sent through the browser. */
  authorizations = 0;
  era: 'modern' | 'legacy' | undefined;
  client: Client | undefined;
  tokens: Tokens | undefined;
  /** Results Claude.ai had to cut itself (over CLAUDE_RESULT_LIMIT). */
  cut = 0;
  #as: AsMetadata | undefined;
  #resource: string | undefined;
  #browser = new UserAgent();
  #id = 0;

  constructor(o: ClaudeAiOptions) {
    this.o = { opening: 'discover', onExpiry: 'refresh', registrations: 2, ...o };
  }

  async #send(url: string, init: Req): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: 'manual' });
    const headers = Object.fromEntries(
      Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    this.sent.push({ method: init.method ?? 'GET', url, headers, status: res.status });
    return res;
  }

  #oauth(url: string, init: Req = {}): Promise<Response> {
    return this.#send(url, { ...init, headers: { 'user-agent': CLAUDE_OAUTH_UA, ...init.headers } });
  }

  /** The whole connection as the user's "Connect" starts it: discovery to tokens. */
  async connect(): Promise<void> {
    const probe = await this.#send(this.o.url, {
      method: 'POST',
      headers: {
        'user-agent': CLAUDE_MCP_UA,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(this.#discoverMessage()),
    });
    await probe.body?.cancel();
    if (probe.status !== 401) throw new ClaudeAiError(`Couldn't reach the MCP server (${probe.status})`);
    await this.#discover();
    await this.#register();
    await this.#authorize();
  }

  async #discover(): Promise<void> {
    const u = new URL(this.o.url);
    const suffixed = `${u.origin}/.well-known/oauth-protected-resource${u.pathname.replace(/\/$/, '')}`;
    const root = `${u.origin}/.well-known/oauth-protected-resource`;
    let prm: { resource?: string; authorization_servers?: string[] } | undefined;
    for (const url of [suffixed, root]) {
      const res = await this.#oauth(url);
      if (res.ok) prm ??= (await res.json()) as typeof prm;
      else await res.body?.cancel();
    }
    const issuer = prm?.authorization_servers?.[0];
    if (!prm || prm.resource !== this.o.url || !issuer)
      throw new ClaudeAiError("Couldn't reach the MCP server (no usable protected resource metadata)");
    this.#resource = prm.resource;
    const iu = new URL(issuer);
    const path = iu.pathname === '/' ? '' : iu.pathname;
    let as: AsMetadata | undefined;
    for (const url of [
      `${iu.origin}/.well-known/oauth-authorization-server${path}`,
      `${iu.origin}/.well-known/openid-configuration${path}`,
    ]) {
      const res = await this.#oauth(url);
      if (res.ok) {
        as = (await res.json()) as AsMetadata;
        break;
      }
      await res.body?.cancel();
    }
    if (!as || as.issuer !== issuer || !as.code_challenge_methods_supported?.includes('S256'))
      throw new ClaudeAiError('Authorization with the MCP server failed (authorization server metadata)');
    this.#as = as;
  }

  async #register(): Promise<void> {
    const endpoint = this.#as?.registration_endpoint;
    if (!endpoint) throw new ClaudeAiError("Couldn't reach the MCP server (no registration endpoint)");
    for (let i = 0; i < this.o.registrations; i++) {
      const res = await this.#oauth(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          client_name: 'Claude',
          redirect_uris: [CLAUDE_CALLBACK],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
          scope: 'claudeai',
        }),
      });
      const body = (await res.json()) as Record<string, unknown>;
      this.registrations.push(body);
      const ok =
        (res.status === 201 || res.status === 200) &&
        typeof body['client_id'] === 'string' &&
        typeof body['client_secret'] === 'string' &&
        typeof body['registration_client_uri'] === 'string';
      // The reported failure: a registration without registration_client_uri is dropped silently.
      if (!ok) throw new ClaudeAiError("Couldn't reach the MCP server");
      this.client = {
        id: body['client_id'] as string,
        secret: body['client_secret'] as string,
        configurationUri: body['registration_client_uri'] as string,
        registrationToken: body['registration_access_token'] as string,
      };
    }
  }

  /** Authorization in the user's browser, then the code exchange; re-registers on invalid_client. */
  async #authorize(): Promise<void> {
    const as = this.#as as AsMetadata;
    const client = this.client as Client;
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: client.id,
      redirect_uri: CLAUDE_CALLBACK,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      scope: 'claudeai',
      resource: this.#resource as string,
    });
    this.authorizations++;
    const back = await this.#userBrowser(`${as.authorization_endpoint}?${q}`);
    if (back.searchParams.get('state') !== state)
      throw new ClaudeAiError('Authorization with the MCP server failed (state)');
    const iss = back.searchParams.get('iss');
    if (iss !== null && iss !== as.issuer)
      throw new ClaudeAiError('Authorization with the MCP server failed (iss)');
    const code = back.searchParams.get('code');
    if (!code)
      throw new ClaudeAiError(`Authorization with the MCP server failed (${back.searchParams.get('error')})`);
    const res = await this.#token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: CLAUDE_CALLBACK,
      code_verifier: verifier,
      resource: this.#resource as string,
    });
    if (res.status === 401 && res.body['error'] === 'invalid_client') {
      await this.#register();
      return this.#authorize();
    }
    if (res.status !== 200)
      throw new ClaudeAiError(`Authorization with the MCP server failed (${res.status})`);
    this.#takeTokens(res.body);
  }

  #takeTokens(body: Record<string, unknown>): void {
    assert.equal(String(body['token_type']).toLowerCase(), 'bearer');
    this.tokens = {
      access: body['access_token'] as string,
      ...(typeof body['refresh_token'] === 'string' ? { refresh: body['refresh_token'] } : {}),
    };
  }

  async #token(fields: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const client = this.client as Client;
    this.grants.push(fields['grant_type'] as string);
    const res = await this.#oauth((this.#as as AsMetadata).token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ ...fields, client_id: client.id, client_secret: client.secret }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** The user's browser: cookies, forms, and only 302/303 followed (the consent POST's answer included). */
  async #userBrowser(start: string): Promise<URL> {
    let url = new URL(start);
    let init: RequestInit = {};
    for (let hop = 0; hop < 30; hop++) {
      const res = await this.#browser.fetch(url, init);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        if (res.status !== 302 && res.status !== 303)
          throw new ClaudeAiError(`Authorization with the MCP server failed (a ${res.status} redirect)`);
        this.redirects.push(res.status);
        const next = new URL(location, url);
        if (next.href.startsWith(`${CLAUDE_CALLBACK}?`)) return next;
        url = next;
        init = {};
        continue;
      }
      const html = await res.text();
      if (res.status !== 200)
        throw new ClaudeAiError(
          `Authorization with the MCP server failed (${res.status} at ${url.pathname})`,
        );
      const step = this.#nextForm(html, url);
      if (!step)
        throw new ClaudeAiError(`Authorization with the MCP server failed (stuck at ${url.pathname})`);
      url = step.action;
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
        body: step.body.toString(),
      };
    }
    throw new ClaudeAiError('Authorization with the MCP server failed (too many steps)');
  }

  /** What the user does on a page: approve the consent, sign in to Forgejo, authorize the app. */
  #nextForm(html: string, page: URL): { action: URL; body: URLSearchParams } | undefined {
    const forms = parseForms(html).filter((f) => f.method === 'post');
    const click = (
      f: HtmlForm,
      fields: Record<string, string>,
      button?: { name?: string; value: string },
    ) => {
      const body = new URLSearchParams();
      for (const [k, v] of f.fields) if (!(k in fields)) body.append(k, v);
      for (const [k, v] of Object.entries(fields)) body.append(k, v);
      if (button?.name) body.append(button.name, button.value);
      return { action: new URL(f.action || page.href, page), body };
    };
    for (const f of forms) {
      const approve = f.buttons.find((b) => /^(approve|allow)$/i.test(b.value));
      if (approve) return click(f, {}, approve);
      if (f.fields.some(([k]) => k === 'password') || /user\/login$/.test(f.action))
        return click(f, { user_name: this.o.login.login, password: this.o.login.password });
      const grant = f.buttons.find((b) => b.name === 'granted' && b.value === 'true');
      if (grant) return click(f, {}, grant);
    }
    return undefined;
  }

  // --- MCP ---

  #meta(): Record<string, unknown> {
    return {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientInfo': { name: 'claude-ai', version: '0.1.0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
  }

  #discoverMessage(): Record<string, unknown> {
    return { jsonrpc: '2.0', id: ++this.#id, method: 'server/discover', params: { _meta: this.#meta() } };
  }

  async #post(
    message: Record<string, unknown>,
    version: string,
    sessionId?: string,
  ): Promise<{ status: number; headers: Headers; messages: Record<string, unknown>[] }> {
    const method = message['method'] as string;
    const params = (message['params'] ?? {}) as Record<string, unknown>;
    const name = method === 'resources/read' ? params['uri'] : params['name'];
    const res = await this.#send(this.o.url, {
      method: 'POST',
      signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
      headers: {
        'user-agent': CLAUDE_MCP_UA,
        authorization: `Bearer ${this.tokens?.access}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        // Sent on 2025 requests too, as Claude.ai does; the initialize request carries no version header.
        ...(method === 'initialize' ? {} : { 'mcp-protocol-version': version }),
        'mcp-method': method,
        ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
        ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
      },
      body: JSON.stringify(message),
    });
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    let messages: Record<string, unknown>[] = [];
    if (type.startsWith('text/event-stream')) {
      messages = text
        .split(/\r?\n\r?\n/)
        .map((ev) =>
          ev
            .split(/\r?\n/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n'),
        )
        .filter((d) => d !== '')
        .map((d) => JSON.parse(d));
    } else if (text !== '') {
      try {
        messages = [JSON.parse(text)];
      } catch {
        messages = [];
      }
    }
    return { status: res.status, headers: res.headers, messages };
  }

  /** The response to request `id` among the messages, or the 401 that says the token is gone. */
  #answer(r: { status: number; messages: Record<string, unknown>[] }, id: number): Record<string, unknown> {
    const found = r.messages.find((m) => m['id'] === id && ('result' in m || 'error' in m));
    if (!found) throw new ClaudeAiError(`Couldn't reach the MCP server (${r.status}, no answer)`);
    return found;
  }

  /** Decides the era once, as the spec's backward-compatibility rules say. */
  async #openEra(): Promise<void> {
    if (this.era) return;
    if (this.o.opening === 'initialize') {
      this.era = 'legacy';
      return;
    }
    const msg = this.#discoverMessage();
    const r = await this.#post(msg, MODERN);
    if (r.status === 401) throw new Expired();
    if (r.status === 200) {
      const result = this.#answer(r, msg['id'] as number)['result'] as
        | { supportedVersions?: string[] }
        | undefined;
      if (!result?.supportedVersions?.includes(MODERN))
        throw new ClaudeAiError("Couldn't reach the MCP server (no common protocol version)");
      this.era = 'modern';
      return;
    }
    const error = r.messages[0]?.['error'] as { code?: number } | undefined;
    if (r.status === 400 && !(error && MODERN_ERRORS.has(error.code as number))) {
      this.era = 'legacy';
      return;
    }
    throw new ClaudeAiError(`Couldn't reach the MCP server (${r.status} to server/discover)`);
  }

  /** A fresh legacy session for one exchange: Claude.ai no longer reuses an Mcp-Session-Id. */
  async #initialize(): Promise<string> {
    const id = ++this.#id;
    const r = await this.#post(
      {
        jsonrpc: '2.0',
        id,
        method: 'initialize',
        params: {
          protocolVersion: LEGACY,
          capabilities: {},
          clientInfo: { name: 'claude-ai', version: '0.1.0' },
        },
      },
      LEGACY,
    );
    if (r.status === 401) throw new Expired();
    const answer = this.#answer(r, id);
    const session = r.headers.get('mcp-session-id');
    if (!('result' in answer) || !session)
      throw new ClaudeAiError("Couldn't reach the MCP server (initialize failed)");
    const note = await this.#post({ jsonrpc: '2.0', method: 'notifications/initialized' }, LEGACY, session);
    if (note.status !== 202) throw new ClaudeAiError(`Couldn't reach the MCP server (${note.status})`);
    return session;
  }

  /** One request in the server's era; an expired token is refreshed or re-authorized, once. */
  async request(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#openEra();
        const id = ++this.#id;
        const session = this.era === 'legacy' ? await this.#initialize() : undefined;
        const message = {
          jsonrpc: '2.0',
          id,
          method,
          params: this.era === 'modern' ? { ...params, _meta: this.#meta() } : params,
        };
        const r = await this.#post(message, this.era === 'modern' ? MODERN : LEGACY, session);
        if (r.status === 401) throw new Expired();
        const answer = this.#answer(r, id);
        if ('error' in answer) throw new ClaudeAiError(`Error: ${JSON.stringify(answer['error'])}`);
        return answer['result'] as Record<string, unknown>;
      } catch (e) {
        if (!(e instanceof Expired) || attempt > 0) throw e;
        await this.#renew();
      }
    }
  }

  async #renew(): Promise<void> {
    if (this.o.onExpiry === 'refresh' && this.tokens?.refresh) {
      const res = await this.#token({
        grant_type: 'refresh_token',
        refresh_token: this.tokens.refresh,
        resource: this.#resource as string,
      });
      if (res.status === 200) return this.#takeTokens(res.body);
      if (res.status === 401 && res.body['error'] === 'invalid_client') await this.#register();
    }
    await this.#authorize();
  }

  async listTools(): Promise<string[]> {
    const r = await this.request('tools/list');
    return (r['tools'] as { name: string }[]).map((t) => t.name);
  }

  async callTool(name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
    const r = (await this.request('tools/call', { name, arguments: args })) as ToolResult;
    const text = (r.content ?? []).map((c) => c.text ?? '').join('');
    if (text.length > CLAUDE_RESULT_LIMIT) this.cut++;
    return r;
  }
}

class Expired extends Error {}
