// What every /mcp request passes before anything else: Host and Origin checks (DNS rebinding),
// CORS for browser clients, and the bearer check.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { isLoopbackHost } from '../config/loopback.ts';

export type Principal = {
  userId: number;
  login: string;
  grantId: string;
  clientId: string;
  scopes: string[];
  resource: string;
  /** The grant's mode; absent means read and write. */
  mode?: 'read' | 'write';
  expiresAt: number;
  /** Hash of the bearer token used; a revocation of that token closes what it opened. */
  tokenHash?: string;
};

export type BearerResult =
  | { ok: true; principal: Principal }
  | { ok: false; error: 'invalid_token' | 'insufficient_scope'; description: string };

export type VerifyBearer = (authorization: string | undefined) => Promise<BearerResult>;

export type GateOptions = {
  publicUrl: string;
  /** Extra allowed Origins (`*` allows any); the public URL's origin and loopback origins always are. */
  allowedOrigins: readonly string[];
  /** Extra allowed Host values; the public URL's host and loopback hosts always are. */
  allowedHosts: readonly string[];
};

const ALLOW_HEADERS =
  'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, last-event-id';
const EXPOSE_HEADERS = 'mcp-session-id, mcp-protocol-version, www-authenticate';

// RFC 9110 §7.2 / RFC 6454 §7: a DNS name or IP literal and an optional port; no userinfo, path
// or anything else a lenient URL parser would skip over (`evil.example@127.0.0.1` is refused, not
// read as 127.0.0.1).
const NAME = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*';
const HOST_RE = new RegExp(`^(?:\\[([0-9a-f:.]+)\\]|(${NAME}))(?::(\\d{1,5}))?$`);
const ORIGIN_RE = new RegExp(`^(https?)://(\\[[0-9a-f:.]+\\]|${NAME})(?::(\\d{1,5}))?$`);

type HostPort = { host: string; port: string };

/** A Host header (or an allowed-hosts entry) as host and port, or undefined when malformed. */
export function parseHost(raw: string, defaultPort: string): HostPort | undefined {
  const m = HOST_RE.exec(raw.toLowerCase());
  if (!m) return undefined;
  if (m[1] !== undefined && isIP(m[1]) !== 6) return undefined;
  const port = m[3] ?? defaultPort;
  if (Number(port) > 65535) return undefined;
  return { host: m[1] !== undefined ? `[${m[1]}]` : (m[2] as string), port };
}

/** An Origin header's host, when it is exactly scheme://host[:port] (RFC 6454 serialization). */
function originHost(origin: string): string | undefined {
  const m = ORIGIN_RE.exec(origin);
  if (!m) return undefined;
  const host = m[2] as string;
  if (host.startsWith('[') && isIP(host.slice(1, -1)) !== 6) return undefined;
  if (m[3] !== undefined && Number(m[3]) > 65535) return undefined;
  return host;
}

export class Gate {
  readonly #publicOrigin: string;
  readonly #defaultPort: string;
  readonly #origins: Set<string>;
  readonly #anyOrigin: boolean;
  /** `host:port` of the public URL and of every extra allowed host, ports made explicit. */
  readonly #hosts: Set<string>;
  readonly resourceMetadataUrl: string;

  constructor(opts: GateOptions) {
    const pub = new URL(opts.publicUrl);
    this.#publicOrigin = pub.origin;
    this.#defaultPort = pub.protocol === 'https:' ? '443' : '80';
    this.#anyOrigin = opts.allowedOrigins.includes('*');
    this.#origins = new Set(opts.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
    this.#hosts = new Set();
    for (const h of [pub.host, ...opts.allowedHosts]) {
      const hp = parseHost(h, this.#defaultPort);
      if (hp) this.#hosts.add(`${hp.host}:${hp.port}`);
    }
    this.resourceMetadataUrl = `${pub.origin}/.well-known/oauth-protected-resource${pub.pathname.replace(/\/+$/, '')}/mcp`;
  }

  // Every request carries the same Host (and a browser the same Origin): the last header value
  // that passed is remembered, so only a new value is parsed.
  #lastHost: string | undefined;
  #lastOrigin: string | undefined;

  /** The public host or an allowed one, exactly (port included), or a loopback name on any port. */
  hostAllowed(host: string | undefined): boolean {
    if (host !== undefined && host === this.#lastHost) return true;
    const hp = host === undefined ? undefined : parseHost(host, this.#defaultPort);
    if (!hp) return false;
    const ok = this.#hosts.has(`${hp.host}:${hp.port}`) || isLoopbackHost(hp.host);
    if (ok) this.#lastHost = host;
    return ok;
  }

  /** An absent Origin (non-browser clients) is fine; a present one must be well-formed and allowed. */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    if (origin === this.#lastOrigin) return true;
    const o = origin.toLowerCase();
    const host = originHost(o);
    if (host === undefined) return false;
    const ok = this.#anyOrigin || o === this.#publicOrigin || this.#origins.has(o) || isLoopbackHost(host);
    if (ok) this.#lastOrigin = origin;
    return ok;
  }

  corsHeaders(origin: string | undefined): Record<string, string> {
    if (!origin || !this.originAllowed(origin)) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-expose-headers': EXPOSE_HEADERS,
      vary: 'Origin',
    };
  }

  preflight(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(204, {
      ...this.corsHeaders(req.headers.origin),
      'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
      'access-control-allow-headers': ALLOW_HEADERS,
      'access-control-max-age': '600',
    });
    res.end();
  }

  /** The 401/403 challenge (RFC 6750 §3, RFC 9728 §5.1). */
  challenge(
    result: Extract<BearerResult, { ok: false }>,
    tokenGiven: boolean,
  ): { status: number; header: string } {
    const parts = [`resource_metadata="${this.resourceMetadataUrl}"`];
    if (result.error === 'insufficient_scope') {
      parts.push('error="insufficient_scope"', 'scope="mcp"', `error_description="${result.description}"`);
      return { status: 403, header: `Bearer ${parts.join(', ')}` };
    }
    if (tokenGiven) parts.push('error="invalid_token"', `error_description="${result.description}"`);
    return { status: 401, header: `Bearer ${parts.join(', ')}` };
  }
}
