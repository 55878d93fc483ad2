#!/usr/bin/env node
import { EXIT, runAdmin, USAGE } from '../admin/admin.ts';
import { type Config, helpText, loadConfig } from '../config/config.ts';
import { startDraining } from '../http/healthz.ts';
import { startMetricsListener } from '../http/metrics-route.ts';
import { listen } from '../http/server.ts';
import { createLogger } from '../log/log.ts';
import { describePostgresUrl } from '../store/postgres/postgres-store.ts';
import { type Broker, buildBroker } from './broker.ts';
import { forgejoCheckOf, logForgejoCheck, runCheck } from './check.ts';
import { installSignalHandlers } from './lifecycle.ts';

const CONFIG_ERROR_EXIT = 2;

/** The configuration, or every problem with it on stderr and exit status 2. */
function configOrExit(argv: string[], opts: { prepare?: boolean } = {}): Config {
  const loaded = loadConfig(process.env, argv, opts);
  if (loaded.ok) return loaded.config;
  process.stderr.write(
    `forgejo-mcp-broker: invalid configuration\n${loaded.errors.map((e) => `  ${e}\n`).join('')}`,
  );
  process.exit(CONFIG_ERROR_EXIT);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'admin') return admin(argv.slice(1));
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (argv[0] === 'check') {
    const config = configOrExit(argv.slice(1), { prepare: false });
    process.exitCode = await runCheck(config, (line) => process.stdout.write(`${line}\n`));
    return;
  }
  const config = configOrExit(argv);
  const log = createLogger(config.logLevel);

  let broker: Broker;
  try {
    broker = buildBroker(config, log);
    // PostgreSQL connects and migrates in the background: nothing listens before it can be used.
    await broker.store.ready();
  } catch (e) {
    // A store it cannot use (another key, a file that is not SQLite): said once, plainly, exit 2.
    process.stderr.write(`forgejo-mcp-broker: cannot start: ${(e as Error).message}\n`);
    process.exit(CONFIG_ERROR_EXIT);
  }
  const { app, store, gateway, pool, supervisor, buildInfo } = broker;
  installSignalHandlers({
    log,
    graceMs: config.shutdownGrace,
    drainMs: config.drain,
    onDrain: () => startDraining(app),
    steps: [
      // Standalone streams never end by themselves: closing them lets the HTTP server drain.
      { name: 'streams', run: async () => gateway.close() },
      {
        name: 'http',
        run: async (deadline) => {
          // Fastify's close waits for in-flight requests; past the grace, cut what is left.
          const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(0, deadline - Date.now()));
          // close() drops only the connections idle at that moment: a keep-alive connection whose
          // response ends later would hold the close (and the exit) until the deadline.
          const idle = setInterval(() => app.server.closeIdleConnections(), 50);
          await app.close();
          clearTimeout(cut);
          clearInterval(idle);
        },
      },
      { name: 'children', run: (deadline) => pool.stopAll(deadline) },
      // Anything the pool did not own (a child still starting) is stopped too: none outlives us.
      { name: 'supervisor', run: () => supervisor.stopAll(300, 100) },
      {
        name: 'store',
        run: async () => {
          broker.stopPurge();
          await broker.audit.close();
          await store.close();
        },
      },
    ],
  });

  const bound = await listen(app, config.listen.host, config.listen.port);
  const metricsServer = config.metricsListen
    ? await startMetricsListener(config.metricsListen.host, config.metricsListen.port)
    : undefined;
  if (metricsServer) {
    metricsServer.server.unref();
    process.once('beforeExit', () => metricsServer.server.close());
  }
  const address = `${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`;
  log.info(
    {
      address,
      publicUrl: config.publicUrl,
      forgejoUrl: config.forgejoUrl,
      db: config.dbKind === 'postgres' ? describePostgresUrl(config.db) : config.db,
      keySource: config.secretKeySource,
      isolation: supervisor.isolation.kind,
      migrationsApplied: store.appliedMigrations,
      ...(metricsServer && config.metricsListen
        ? {
            metrics: `${config.metricsListen.host.includes(':') ? `[${config.metricsListen.host}]` : config.metricsListen.host}:${metricsServer.port}`,
          }
        : {}),
      ...buildInfo,
    },
    'broker started',
  );
  // Not awaited: Forgejo being down at startup must not stop the broker; the log says what is wrong.
  forgejoCheckOf(config).then(
    (result) => logForgejoCheck(result, log),
    (e: Error) => log.error({ err: { message: e.message } }, 'Forgejo check failed to run'),
  );
}

/** The admin command reads the broker's settings from the environment only: its flags are its own. */
async function admin(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    process.exitCode = argv.length === 0 ? EXIT.usage : EXIT.ok;
    return;
  }
  const loaded = loadConfig(process.env, []);
  if (!loaded.ok) {
    process.stderr.write(
      `forgejo-mcp-broker admin: invalid configuration\n${loaded.errors.map((e) => `  ${e}\n`).join('')}`,
    );
    process.exit(EXIT.usage);
  }
  process.exitCode = await runAdmin(argv, loaded.config, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`forgejo-mcp-broker: ${(e as Error).message}\n`);
  process.exit(1);
});
