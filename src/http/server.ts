import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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

/**
 * A path served straight from node:http, before Fastify's routing, hooks and body parsers: /mcp,
 * where every tool call passes and the framework's per-request machinery was most of the broker's
 * own cost. The handler does its own checks (the gateway's gate, body limits); the request line and
 * the HTTP metrics are written here, exactly as for Fastify's routes.
 */
export type RawRoute = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

const rawRoutes = new WeakMap<object, Map<string, RawRoute>>();

/** Serves `path` (exactly, any query string) with `route` instead of Fastify. */
export function addRawRoute(app: App, path: string, route: RawRoute): void {
  rawRoutes.get(app)?.set(path, route);
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function createHttpServer(deps: HttpDeps): App {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const raw = new Map<string, RawRoute>();
  let closing = false;
  let nextReqId = 0;
  const serveRaw = (route: RawRoute, path: string, req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const reqId = `mcp-${++nextReqId}`;
    res.once('close', () => {
      const ms = performance.now() - started;
      const aborted = !res.writableFinished;
      metrics.httpRequests.inc({ route: path, method: req.method ?? '', status: String(res.statusCode) });
      metrics.httpDuration.observe({ route: path }, ms / 1000);
      deps.log.info(
        {
          reqId,
          method: req.method,
          route: path,
          status: res.statusCode,
          ms: Math.round(ms * 10) / 10,
          ...(aborted ? { aborted: true } : {}),
        },
        'request',
      );
    });
    if (closing) {
      // What Fastify's return503OnClosing answers on its own routes.
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: 'unavailable', message: 'the server is shutting down' }));
      return;
    }
    route(req, res).catch((err: unknown) => {
      deps.log.error({ err, route: path }, 'request failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'internal error' } }),
        );
      } else res.destroy();
    });
  };
  const app = Fastify({
    serverFactory: (handler) =>
      createServer(
        {
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          requestTimeout: 2 * limits.bodyTimeoutMs,
          headersTimeout: limits.bodyTimeoutMs,
          connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.bodyTimeoutMs / 4))),
        },
        (req, res) => {
          const path = pathOf(req.url);
          const route = raw.get(path);
          if (route) serveRaw(route, path, req, res);
          else handler(req, res);
        },
      ),
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
  });
  rawRoutes.set(app, raw);
  // Fastify closes a server it did not create only when it listened itself (listen() here calls the
  // server's own): new connections stop, idle ones close, and close() resolves once the rest end.
  app.addHook('preClose', (done) => {
    closing = true;
    if (!app.server.listening) {
      done();
      return;
    }
    app.server.close(() => done());
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
