import type { App, HttpDeps } from './server.ts';

const draining = new WeakSet<object>();

/**
 * From now on /healthz answers 503 (the broker still serves everything else): a load balancer's
 * health check takes the replica out before it stops listening (BROKER_DRAIN).
 */
export function startDraining(app: App): void {
  draining.add(app);
}

export function registerHealthz(app: App, { store, buildInfo }: HttpDeps): void {
  app.get('/healthz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    if (draining.has(app)) return reply.code(503).send({ status: 'draining', ...buildInfo });
    try {
      await store.health();
    } catch (e) {
      return reply.code(503).send({ status: 'unavailable', reason: (e as Error).message, ...buildInfo });
    }
    return { status: 'ok', ...buildInfo };
  });
}
