// Maps the authorization server onto Fastify: routes, CORS where browser clients call, rate
// limits, and OAuth-shaped errors for bodies Fastify itself refuses.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { metrics } from '../metrics/metrics.ts';
import type { AuthServer } from '../oauth/auth-server.ts';
import { rateKeys, slowDown } from '../oauth/rate-keys.ts';
import type { OAuthRequest, OAuthResponse, Params } from '../oauth/respond.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { App } from './server.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'Authorization, Content-Type, MCP-Protocol-Version',
  'access-control-expose-headers': 'WWW-Authenticate',
  'access-control-max-age': '600',
};

function toRequest(req: FastifyRequest): OAuthRequest {
  return {
    query: (req.query ?? {}) as Params,
    body: req.body,
    headers: req.headers,
    ip: req.ip,
    params: (req.params ?? {}) as Record<string, string>,
  };
}

/** `cors` is the route's methods for Access-Control-Allow-Methods, or undefined for none. */
function send(reply: FastifyReply, res: OAuthResponse, cors: Method[] | undefined): FastifyReply {
  reply.code(res.status).headers(res.headers);
  if (cors) reply.headers({ ...CORS, 'access-control-allow-methods': [...cors, 'OPTIONS'].join(', ') });
  return res.body === undefined ? reply.send() : reply.send(res.body);
}

/** `perKey` at the configured rate (the authorization server charges it too), `perIp` at ten times it. */
export type OAuthRateLimiters = { perKey: RateLimiter; perIp: RateLimiter };

export function registerOAuthRoutes(app: App, auth: AuthServer, limits: OAuthRateLimiters): void {
  const { perKey, perIp } = limits;

  /** 429 + Retry-After when the key's or the IP's bucket is empty, or the source failed too often. */
  const limited = (
    endpoint: Parameters<typeof rateKeys>[0],
    req: OAuthRequest,
  ): OAuthResponse | undefined => {
    const { key, ip, failures } = rateKeys(endpoint, req);
    const wait = Math.max(
      key === undefined ? 0 : perKey.take(key),
      perIp.take(ip),
      failures === undefined ? 0 : perKey.wait(failures),
    );
    if (wait === 0) return undefined;
    metrics.rateLimited.inc({ bucket: endpoint });
    return slowDown(wait);
  };

  const route = (
    method: Method | Method[],
    url: string,
    handler: (req: OAuthRequest, method: string) => Promise<OAuthResponse>,
    opts: { cors?: boolean; limit?: Parameters<typeof rateKeys>[0]; badBodyError?: string } = {},
  ) => {
    const methods = Array.isArray(method) ? method : [method];
    const cors = opts.cors ? methods : undefined;
    app.route({
      method: methods,
      url,
      handler: async (req, reply) => {
        const r = toRequest(req);
        const res = (opts.limit && limited(opts.limit, r)) || (await handler(r, req.method));
        return send(reply, res, cors);
      },
      // Bad JSON, a wrong content type or a too-large body, in the protocol's own error shape.
      errorHandler: (err: { statusCode?: number; message: string }, req, reply) => {
        const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
        if (status === 500) req.log.error({ err }, 'request failed');
        const body =
          status === 500
            ? { error: 'server_error', error_description: 'internal error' }
            : { error: opts.badBodyError ?? 'invalid_request', error_description: err.message };
        return send(
          reply,
          { status: status === 415 ? 400 : status, headers: { 'cache-control': 'no-store' }, body },
          cors,
        );
      },
    });
    if (cors) app.options(url, (_req, reply) => send(reply, { status: 204, headers: {} }, cors));
  };

  const document = (body: Record<string, unknown>) => async (): Promise<OAuthResponse> => ({
    status: 200,
    headers: { 'cache-control': 'public, max-age=300' },
    body,
  });
  route('GET', '/.well-known/oauth-protected-resource/mcp', document(auth.protectedResourceMetadata), {
    cors: true,
  });
  route('GET', '/.well-known/oauth-protected-resource', document(auth.protectedResourceMetadata), {
    cors: true,
  });
  route('GET', '/.well-known/oauth-authorization-server', document(auth.authorizationServerMetadata), {
    cors: true,
  });
  route('GET', '/.well-known/openid-configuration', document(auth.authorizationServerMetadata), {
    cors: true,
  });
  route('POST', '/oauth/register', auth.register, {
    cors: true,
    limit: 'register',
    badBodyError: 'invalid_client_metadata',
  });
  // RFC 7592: the registration's own URI, authenticated by its registration access token.
  const manage = { GET: auth.readClient, PUT: auth.updateClient, DELETE: auth.deleteClient };
  route(
    ['GET', 'PUT', 'DELETE'],
    '/oauth/register/:clientId',
    (req, m) => manage[m as keyof typeof manage](req),
    {
      cors: true,
      limit: 'manage',
      badBodyError: 'invalid_client_metadata',
    },
  );
  route('GET', '/oauth/authorize', auth.authorize, { limit: 'authorize' });
  route('POST', '/oauth/consent', auth.consent, { limit: 'consent' });
  route('GET', '/oauth/callback', auth.callback, { limit: 'consent' });
  route('POST', '/oauth/token', auth.token, { cors: true, limit: 'token' });
  route('POST', '/oauth/revoke', auth.revoke, { cors: true, limit: 'token' });
  route('GET', '/account', auth.account, { limit: 'consent' });
  route('GET', '/account/login', auth.accountLogin, { limit: 'consent' });
  for (const action of ['revoke', 'revoke-all', 'logout'] as const)
    route('POST', `/account/${action}`, (req) => auth.accountAction(req, action), { limit: 'consent' });
}
