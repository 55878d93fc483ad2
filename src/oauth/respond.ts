// The authorization server speaks in plain requests and responses; src/http maps them to Fastify.
export type Params = Record<string, string | string[] | undefined>;

export type OAuthRequest = {
  query: Params;
  /** Parsed form or JSON body. */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  ip: string;
  /** Parameters of the route's path (`/oauth/register/:clientId`). */
  params?: Record<string, string>;
  /** Aborted once the answer is no longer awaited (the client went away, or it was sent). */
  signal?: AbortSignal;
};

export type OAuthResponse = {
  status: number;
  headers: Record<string, string | string[]>;
  body?: string | Record<string, unknown>;
};

export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  constructor(error: string, description: string, status = 400) {
    super(description);
    this.error = error;
    this.status = status;
  }
}

export function json(
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): OAuthResponse {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, body };
}

export function errorJson(e: OAuthError, headers: Record<string, string> = {}): OAuthResponse {
  return json(e.status, { error: e.error, error_description: e.message }, headers);
}

export function redirect(url: string, headers: Record<string, string | string[]> = {}): OAuthResponse {
  // 303 everywhere: Claude.ai breaks on 307 after the consent POST.
  return { status: 303, headers: { location: url, 'cache-control': 'no-store', ...headers } };
}

/** A single string parameter; a repeated one is refused (RFC 6749 §3.1). */
export function one(params: Params, name: string, required: true): string;
export function one(params: Params, name: string, required?: false): string | undefined;
export function one(params: Params, name: string, required = false): string | undefined {
  const v = params[name];
  if (Array.isArray(v)) throw new OAuthError('invalid_request', `${name} is repeated`);
  if (v === undefined || v === '') {
    if (required) throw new OAuthError('invalid_request', `${name} is required`);
    return undefined;
  }
  if (v.length > 4096) throw new OAuthError('invalid_request', `${name} is too long`);
  return v;
}

export function header(req: OAuthRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function readCookie(req: OAuthRequest, name: string): string | undefined {
  for (const part of (header(req, 'cookie') ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
