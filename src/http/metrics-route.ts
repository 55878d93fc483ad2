// /metrics is never public: either on its own listen address (BROKER_METRICS_LISTEN, to be kept
// on a private interface), or on the main address for requests that carry BROKER_METRICS_TOKEN.
import { createServer, type Server } from 'node:http';
import { registry } from '../metrics/metrics.ts';
import { safeEqual } from '../store/secrets.ts';
import type { App } from './server.ts';

export function registerMetricsRoute(app: App, token: string): void {
  app.get('/metrics', async (req, reply) => {
    const auth = req.headers.authorization ?? '';
    const given = /^Bearer (.+)$/i.exec(auth)?.[1] ?? '';
    if (!safeEqual(given, token)) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="metrics"')
        .header('cache-control', 'no-store')
        .send({ error: 'unauthorized', message: 'send Authorization: Bearer <BROKER_METRICS_TOKEN>' });
    }
    return reply
      .header('content-type', registry.contentType)
      .header('cache-control', 'no-store')
      .send(await registry.metrics());
  });
}

/** A listener that serves only GET /metrics. */
export async function startMetricsListener(
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) =>
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text),
      (e: Error) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
    );
  });
  // Scrapers keep connections open; they must not hold the broker's shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as { port: number }).port };
}
