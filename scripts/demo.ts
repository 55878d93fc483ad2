// `make demo`: the Forgejo emulator seeded with two users, and the real broker in front of it, on
// loopback. `DEMO_FORGEJO=real make demo` runs a real Gitea instead (built first by
// scripts/real-deps.sh when needed; Forgejo cannot be built here), seeded with the same users. The
// child is the real forgejo-mcp when one is on PATH, else the stand-in. Ctrl-C stops everything and
// leaves no process behind.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startForgejoEmulator } from '../emulator/forgejo/emulator.ts';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demoSeedFor } from '../emulator/forgejo/seed.ts';
import { resolveCommand } from '../src/pool/command.ts';
import { type GiteaWorld, seedWorld, startRealGitea } from './real-gitea.ts';

const ROOT = join(import.meta.dirname, '..');

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['DEMO_PORT'] ?? '8080' },
    'forgejo-port': { type: 'string', default: process.env['DEMO_FORGEJO_PORT'] ?? '3000' },
    data: { type: 'string', default: process.env['DEMO_DATA'] ?? join(ROOT, 'data', 'demo') },
  },
  strict: true,
});
const port = Number(values.port);
const publicUrl = `http://127.0.0.1:${port}`;

function realForgejoMcp(): string | undefined {
  try {
    return resolveCommand('forgejo-mcp');
  } catch {
    return undefined;
  }
}

const real = realForgejoMcp();
const childCommand = real
  ? `"${real}" --transport stdio`
  : `"${process.execPath}" "${join(ROOT, 'emulator', 'forgejo-mcp', 'main.ts')}" --transport stdio`;

type Forge = { url: string; clientId: string; clientSecret: string; label: string; close(): Promise<void> };
const callback = `${publicUrl}/oauth/callback`;
const forgePort = Number(values['forgejo-port']);
const useReal = process.env['DEMO_FORGEJO'] === 'real';

async function emulatorForge(): Promise<Forge> {
  const emulator = await startForgejoEmulator({ ...demoSeedFor(callback), port: forgePort });
  return {
    url: emulator.url,
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_CLIENT_SECRET,
    label: 'emulator',
    close: () => emulator.close(),
  };
}

/** The demo seed's users, repositories, issues and organisations, created in a real Gitea. */
async function giteaForge(): Promise<Forge> {
  process.stderr.write('demo: DEMO_FORGEJO=real: building (or reusing) Gitea\n');
  const build = spawnSync('bash', [join(ROOT, 'scripts', 'real-deps.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) {
    process.stderr.write(
      'demo: no Gitea to run (above); `make demo` without DEMO_FORGEJO=real uses the emulator.\n',
    );
    process.exit(1);
  }
  const { users } = demoSeedFor(callback);
  const world: GiteaWorld = {
    // Gitea puts an organisation's creator in its Owners team by itself.
    orgs: users.flatMap((u) =>
      (u.orgs ?? []).map((o) => ({
        name: o.name,
        by: u.login,
        teams: (o.teams ?? [])
          .filter((t) => t.toLowerCase() !== 'owners')
          .map((t) => ({ name: t, members: [u.login] })),
      })),
    ),
    repos: users.flatMap((u) =>
      (u.repos ?? []).map((r) => ({
        owner: u.login,
        name: r.name,
        private: r.private ?? false,
        description: r.description ?? '',
        issues: (r.issues ?? []).map((i) => ({
          title: i.title,
          body: i.body ?? '',
          closed: i.state === 'closed',
        })),
      })),
    ),
    pulls: [],
  };
  process.stderr.write(
    `demo: starting Gitea on port ${forgePort} and seeding ${users.map((u) => u.login).join(', ')}\n`,
  );
  const g = await startRealGitea({
    port: forgePort,
    parentDir: values.data as string,
    redirectUris: [callback],
    users: users.map((u) => ({
      login: u.login,
      password: u.password,
      ...(u.fullName ? { fullName: u.fullName } : {}),
    })),
    seed: (api, made) => seedWorld(api, made, world),
  });
  process.stderr.write(`demo: Gitea ${g.version} is up at ${g.url}\n`);
  return {
    url: g.url,
    clientId: g.app.clientId,
    clientSecret: g.app.clientSecret,
    label: `real Gitea ${g.version}; admin ${g.admin.login} / ${g.admin.password}`,
    close: () => g.close(),
  };
}

let forge: Forge;
try {
  forge = useReal ? await giteaForge() : await emulatorForge();
} catch (e) {
  process.stderr.write(
    `demo: cannot start ${useReal ? 'Gitea' : 'the Forgejo emulator'} on port ${values['forgejo-port']}: ${(e as Error).message}\n`,
  );
  process.stderr.write('demo: set DEMO_FORGEJO_PORT (and DEMO_PORT for the broker) to free ports.\n');
  process.exit(1);
}
// A real Gitea starts empty every time: the broker's state of an earlier run would point at it.
if (useReal) rmSync(join(values.data as string, 'real'), { recursive: true, force: true });
const dataDir = useReal ? join(values.data as string, 'real') : (values.data as string);

mkdirSync(dataDir, { recursive: true });
const broker: ChildProcess = spawn(
  process.execPath,
  ['--import', join(ROOT, 'scripts', 'exit-with-parent.ts'), join(ROOT, 'src', 'main', 'main.ts')],
  {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      BROKER_PUBLIC_URL: publicUrl,
      BROKER_LISTEN: `127.0.0.1:${port}`,
      FORGEJO_URL: forge.url,
      FORGEJO_CLIENT_ID: forge.clientId,
      FORGEJO_CLIENT_SECRET: forge.clientSecret,
      BROKER_DB: join(dataDir, 'broker.db'),
      BROKER_CHILD_COMMAND: childCommand,
      LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    },
    // stdin: a pipe this script holds and never writes; its end tells the broker the demo is gone.
    stdio: ['pipe', 'inherit', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches only this script, which forwards exactly one
    // SIGTERM (two signals would make the broker skip its graceful stop).
    detached: true,
  },
);

let started = false;
let stopping = false;
broker.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
  process.stderr.write(chunk);
  if (!started && chunk.includes('"msg":"broker started"')) {
    started = true;
    banner();
  }
});

function banner(): void {
  const mcp = `${publicUrl}/mcp`;
  process.stdout.write(
    [
      '',
      '  forgejo-mcp-broker demo is running',
      '',
      `  MCP URL        ${mcp}`,
      `  Forgejo        ${forge.url}  (${forge.label})`,
      `  MCP server     ${real ? `forgejo-mcp from PATH (${real})` : 'the forgejo-mcp stand-in (no forgejo-mcp on PATH)'}`,
      '  Demo users     alice / alice-password    bob / bob-password',
      '',
      '  Connect with the MCP Inspector:',
      '    npx @modelcontextprotocol/inspector',
      `    (Add Servers → + Add manually, Transport: streamable-http, URL: ${mcp}, Add,`,
      '     then the switch on the server card: sign in, and the Tools tab runs the tools)',
      '  Connect with mcp-remote (stdio bridge for Claude Desktop and others):',
      `    npx mcp-remote ${mcp}`,
      '',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (broker.exitCode === null && broker.signalCode === null) {
    broker.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const hard = setTimeout(() => {
        broker.kill('SIGKILL');
        resolve();
      }, 5000);
      broker.once('exit', () => {
        clearTimeout(hard);
        resolve();
      });
    });
  }
  await forge.close();
  process.exit(code);
}

broker.once('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`demo: the broker exited (status ${code}); stopping\n`);
    void stop(code === 0 ? 0 : 1);
  }
});
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
