import type { App, HttpDeps } from './server.ts';

export function registerHealthz(app: App, { store, buildInfo }: HttpDeps): void {
  app.get('/healthz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    try {
      await store.health();
    } catch (e) {
      return reply.code(503).send({ status: 'unavailable', reason: (e as Error).message, ...buildInfo });
    }
    return { status: 'ok', ...buildInfo };
  });
}
