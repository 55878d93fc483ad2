import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from '../log/log.ts';
import { metrics } from '../metrics/metrics.ts';
import type { Store } from '../store/store.ts';
import type { BuildInfo } from './build-info.ts';
import { registerHealthz } from './healthz.ts';
import { DEFAULT_HTTP_LIMITS, guardBodies, type HttpLimits, limitRefusal } from './limits.ts';

export type HttpDeps = {
  log: Logger;
  store: Store;
  buildInfo: BuildInfo;
  /** Default cap on request bodies; routes that need more say so themselves. */
  bodyLimit?: number;
  /** Proxies whose X-Forwarded-For is believed (addresses or CIDRs). */
  trustedProxies?: string[];
  /** Deadlines and the unauthenticated body budget (src/http/limits.ts). */
  limits?: Partial<HttpLimits>;
};

/** The broker's Fastify app, typed with its pino logger. */
export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export type FormBody = Record<string, string | string[]>;

/** Form fields; a field given twice becomes an array so OAuth can refuse repeated parameters. */
export function parseForm(body: string): FormBody {
  const out: FormBody = {};
  for (const [k, v] of new URLSearchParams(body)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

export function createHttpServer(deps: HttpDeps): App {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const app = Fastify({
    loggerInstance: deps.log,
    // Fastify's own request lines carry the full URL (query strings hold OAuth codes): we log our own.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 16 * 1024,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    trustProxy: deps.trustedProxies?.length ? deps.trustedProxies : false,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node's own check that a whole request (headers, then body) arrives: a backstop behind the
    // precise body deadline in limits.ts. It runs every connectionsCheckingInterval.
    requestTimeout: 2 * limits.bodyTimeoutMs,
    handlerTimeout: limits.requestTimeoutMs,
    http: {
      headersTimeout: limits.bodyTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.bodyTimeoutMs / 4))),
    },
  });
  app.server.headersTimeout = limits.bodyTimeoutMs;
  guardBodies(app, limits);

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseForm(body as string));
  });

  const logged = new WeakSet<object>();
  const logRequest = (req: FastifyRequest, reply: FastifyReply, aborted: boolean): void => {
    if (logged.has(req)) return;
    logged.add(req);
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
    req.log.info(
      {
        method: req.method,
        route: req.routeOptions.url ?? null,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(aborted ? { aborted: true } : {}),
      },
      'request',
    );
  };
  // Fastify's onResponse runs only for a response that finished; one the client closed first (an
  // SSE stream it drops without a DELETE, as MCP Inspector 2 does) is logged when it closes.
  app.addHook('onRequest', (req, reply, done) => {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) logRequest(req, reply, true);
    });
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    logRequest(req, reply, false);
    done();
  });

  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).send({ error: 'not_found', message: 'no such route' });
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const refused = limitRefusal(err);
    if (refused) {
      reply
        .code(refused.status)
        .headers(refused.headers)
        .send({ error: refused.code, message: refused.message });
      return;
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    // Client errors from Fastify (body too large, bad JSON, bad content type) are safe to explain;
    // a 5xx never shows its internals.
    const message = status < 500 ? err.message : 'internal error';
    reply
      .code(status)
      .send({ error: status < 500 ? (err.code ?? 'bad_request') : 'internal_error', message });
  });

  registerHealthz(app, deps);
  return app;
}

/** Listens without Fastify's own "Server listening" line: startup is logged once, by main. */
export async function listen(app: App, host: string, port: number): Promise<{ host: string; port: number }> {
  await app.ready();
  await new Promise<void>((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen({ host, port }, () => {
      app.server.off('error', reject);
      resolve();
    });
  });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('server has no TCP address');
  return { host: addr.address, port: addr.port };
}
