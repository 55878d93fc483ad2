import type { IncomingMessage } from 'node:http';
import { limitRefusal, settleBeforeRefusal, vouchForBody } from '../http/limits.ts';
import type { App } from '../http/server.ts';
import type { Principal } from './gate.ts';
import type { Gateway } from './gateway.ts';

/** The SDK's own limit for one POST to an MCP endpoint. */
export const MCP_BODY_LIMIT = 4 * 1024 * 1024;

/**
 * /mcp in a scope of its own: the body arrives raw so the gateway answers every content problem in
 * JSON-RPC terms, and the gateway writes the response itself (JSON, SSE or 202).
 *
 * The gate runs on the headers, before a single body byte is read: a request without a valid token
 * (or from a foreign Host or Origin) is answered at once, and unless its body is small the
 * connection closes with the answer, so a stranger cannot make the broker hold a 4 MiB upload.
 */
export function registerMcpRoutes(app: App, gateway: Pick<Gateway, 'admit' | 'handle'>): void {
  const admitted = new WeakMap<IncomingMessage, Principal>();
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      const principal = await gateway.admit(req.raw, reply.raw, () =>
        settleBeforeRefusal(app, req.raw, reply.raw),
      );
      if (!principal) {
        reply.hijack();
        return;
      }
      admitted.set(req.raw, principal);
      vouchForBody(req.raw);
    });
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MCP_BODY_LIMIT }, (_req, body, done) => {
      done(null, body);
    });
    scope.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
      const refused = limitRefusal(err);
      const status = refused
        ? refused.status
        : err.statusCode && err.statusCode >= 400 && err.statusCode < 500
          ? err.statusCode
          : 500;
      reply
        .code(status)
        .headers(refused?.headers ?? {})
        .type('application/json')
        .send({
          jsonrpc: '2.0',
          id: null,
          error: {
            code: -32000,
            message: refused?.message ?? (status < 500 ? err.message : 'internal error'),
          },
        });
    });
    scope.route({
      method: ['GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH'],
      url: '/mcp',
      handler: async (req, reply) => {
        reply.hijack();
        // Fastify still runs its onResponse hook for a hijacked reply, once the response is finished,
        // so the request line is logged there with the real status and duration.
        const principal = admitted.get(req.raw) as Principal;
        await gateway.handle(req.raw, reply.raw, Buffer.isBuffer(req.body) ? req.body : undefined, principal);
      },
    });
  });
}
