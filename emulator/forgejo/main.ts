// `node emulator/forgejo/main.ts --port 8081 --seed demo [--host 127.0.0.1] [--redirect-uri URI]
//   [--access-ttl SECONDS] [--refresh-ttl SECONDS]` runs the Forgejo emulator until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { type EmulatorOptions, startForgejoEmulator } from './emulator.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_CLIENT_SECRET,
  DEMO_REDIRECT_URI,
  demoSeedFor,
  EMULATOR_DEFAULT_PORT,
} from './seed.ts';

const USAGE =
  'usage: node emulator/forgejo/main.ts [--port N] [--host H] [--seed demo|empty] [--redirect-uri URI] ' +
  '[--access-ttl SECONDS] [--refresh-ttl SECONDS]';

function fail(message: string): never {
  process.stderr.write(`forgejo-emulator: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    fail(`--${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: String(EMULATOR_DEFAULT_PORT) },
      host: { type: 'string', default: '127.0.0.1' },
      seed: { type: 'string', default: 'demo' },
      'redirect-uri': { type: 'string' },
      'access-ttl': { type: 'string' },
      'refresh-ttl': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values['help']) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const str = (name: string) => values[name] as string | undefined;
const seedName = str('seed');
if (seedName !== 'demo' && seedName !== 'empty') fail('--seed must be demo or empty');
const redirectUri = str('redirect-uri') ?? DEMO_REDIRECT_URI;
try {
  new URL(redirectUri);
} catch {
  fail('--redirect-uri must be an absolute URL');
}

const seed = seedName === 'demo' ? demoSeedFor(redirectUri) : { users: [], apps: [] };
const options: EmulatorOptions = {
  ...seed,
  host: str('host'),
  port: integer('port', str('port'), 0, 65535),
  accessTokenTtlSeconds: integer('access-ttl', str('access-ttl'), 1, 2 ** 31),
  refreshTokenTtlSeconds: integer('refresh-ttl', str('refresh-ttl'), 1, 2 ** 31),
};

const emulator = await startForgejoEmulator(options);
// Signal handlers first: whoever reads the URL line may stop us at once.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

const app = seedName === 'demo' ? ` client_id=${DEMO_CLIENT_ID} client_secret=${DEMO_CLIENT_SECRET}` : '';
process.stdout.write(
  `forgejo emulator listening on ${emulator.url}${app}${app ? ` redirect_uri=${redirectUri}` : ''}\n`,
);
