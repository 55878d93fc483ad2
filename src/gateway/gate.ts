// What every /mcp request passes before anything else: Host and Origin checks (DNS rebinding),
// CORS for browser clients, and the bearer check.
import type { IncomingMessage, ServerResponse } from 'node:http';
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

function hostOf(hostHeader: string): string {
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return '';
  }
}

export class Gate {
  readonly #publicOrigin: string;
  readonly #publicHost: string;
  readonly #origins: Set<string>;
  readonly #anyOrigin: boolean;
  readonly #hosts: Set<string>;
  readonly resourceMetadataUrl: string;

  constructor(opts: GateOptions) {
    const pub = new URL(opts.publicUrl);
    this.#publicOrigin = pub.origin;
    this.#publicHost = pub.host.toLowerCase();
    this.#anyOrigin = opts.allowedOrigins.includes('*');
    this.#origins = new Set(opts.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
    this.#hosts = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));
    this.resourceMetadataUrl = `${pub.origin}/.well-known/oauth-protected-resource${pub.pathname.replace(/\/+$/, '')}/mcp`;
  }

  hostAllowed(host: string | undefined): boolean {
    if (!host) return false;
    const h = host.toLowerCase();
    return h === this.#publicHost || this.#hosts.has(h) || isLoopbackHost(hostOf(h));
  }

  /** An absent Origin (non-browser clients) is fine; a present one must be allowed. */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    const o = origin.toLowerCase();
    if (this.#anyOrigin || o === this.#publicOrigin || this.#origins.has(o)) return true;
    try {
      return isLoopbackHost(new URL(o).hostname);
    } catch {
      return false;
    }
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
