import type { App } from '../http/server.ts';
import type { Gateway } from './gateway.ts';

/** The SDK's own limit for one POST to an MCP endpoint. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;

/**
 * /mcp in a scope of its own: the body arrives raw so the gateway answers every content problem in
 * JSON-RPC terms, and the gateway writes the response itself (JSON, SSE or 202).
 */
export function registerMcpRoutes(app: App, gateway: Pick<Gateway, 'handle'>): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MCP_BODY_LIMIT }, (_req, body, done) => {
      done(null, body);
    });
    scope.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      reply
        .code(status)
        .type('application/json')
        .send({
          jsonrpc: '2.0',
          id: null,
          error: { code: -32000, message: status < 500 ? err.message : 'internal error' },
        });
    });
    scope.route({
      method: ['GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH'],
      url: '/mcp',
      handler: async (req, reply) => {
        reply.hijack();
        await gateway.handle(req.raw, reply.raw, Buffer.isBuffer(req.body) ? req.body : undefined);
        // Hijacked replies skip Fastify's onResponse hook: log the request line here.
        req.log.info(
          {
            method: req.method,
            route: '/mcp',
            status: reply.raw.statusCode,
            ms: Math.round(reply.elapsedTime * 10) / 10,
          },
          'request',
        );
      },
    });
  });
}
