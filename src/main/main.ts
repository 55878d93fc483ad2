#!/usr/bin/env node
import { helpText, loadConfig } from '../config/config.ts';
import { readBuildInfo } from '../http/build-info.ts';
import { listen } from '../http/server.ts';
import { createLogger } from '../log/log.ts';
import { type Broker, buildBroker } from './broker.ts';
import { installSignalHandlers } from './lifecycle.ts';

const CONFIG_ERROR_EXIT = 2;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const loaded = loadConfig(process.env, argv);
  if (!loaded.ok) {
    process.stderr.write(
      `forgejo-mcp-broker: invalid configuration\n${loaded.errors.map((e) => `  ${e}\n`).join('')}`,
    );
    process.exit(CONFIG_ERROR_EXIT);
  }
  const config = loaded.config;
  const log = createLogger(config.logLevel);
  const buildInfo = readBuildInfo();

  let broker: Broker;
  try {
    broker = buildBroker(config, log);
  } catch (e) {
    log.fatal({ err: { message: (e as Error).message } }, 'cannot open the store');
    process.exit(CONFIG_ERROR_EXIT);
  }
  const { app, store } = broker;
  installSignalHandlers({
    log,
    graceMs: config.shutdownGrace,
    steps: [
      {
        name: 'http',
        run: async (deadline) => {
          // Fastify's close waits for in-flight requests; past the grace, cut what is left.
          const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(0, deadline - Date.now()));
          await app.close();
          clearTimeout(cut);
        },
      },
      {
        name: 'store',
        run: async () => {
          broker.stopPurge();
          await store.close();
        },
      },
    ],
  });

  const bound = await listen(app, config.listen.host, config.listen.port);
  const address = `${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`;
  log.info(
    {
      address,
      publicUrl: config.publicUrl,
      forgejoUrl: config.forgejoUrl,
      db: config.db,
      keySource: config.secretKeySource,
      migrationsApplied: store.appliedMigrations,
      ...buildInfo,
    },
    'broker started',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`forgejo-mcp-broker: ${(e as Error).message}\n`);
  process.exit(1);
});
