// `make demo`: the Forgejo emulator seeded with two users, and the real broker in front of it, on
// loopback. `DEMO_FORGEJO=real make demo` runs a real Gitea instead (built first by
// scripts/real-deps.sh when needed; Forgejo cannot be built here), seeded with the same users. The
// child is the real forgejo-mcp when one is on PATH, else the stand-in. The broker's log goes to a
// file; the terminal shows the banner and the broker's warnings only, and Enter shows the banner
// again. Ctrl-C stops everything and leaves no process behind.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startForgejoEmulator } from '../emulator/forgejo/emulator.ts';
import {
  DEMO_CLIENT_ID,
  DEMO_CLIENT_SECRET,
  demoSeedFor,
  EMULATOR_DEFAULT_PORT,
} from '../emulator/forgejo/seed.ts';
import { resolveCommand } from '../src/config/command.ts';
import { type GiteaWorld, seedWorld, startRealGitea } from './real-gitea.ts';

const ROOT = join(import.meta.dirname, '..');

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['DEMO_PORT'] ?? '8080' },
    'forgejo-port': {
      type: 'string',
      default: process.env['DEMO_FORGEJO_PORT'] ?? String(EMULATOR_DEFAULT_PORT),
    },
    data: { type: 'string', default: process.env['DEMO_DATA'] ?? join(ROOT, 'data', 'demo') },
  },
  strict: true,
});
const port = Number(values.port);
const forgejoPort = Number(values['forgejo-port']);
const publicUrl = `http://127.0.0.1:${port}`;
const useReal = process.env['DEMO_FORGEJO'] === 'real';
// A real Gitea starts empty every time: the broker's state of an earlier run would point at it.
const data = useReal ? join(values.data as string, 'real') : (values.data as string);
const logPath = join(data, 'broker.log');
const callback = `${publicUrl}/oauth/callback`;

/** The Forgejo the demo's broker signs users in with. */
type DemoForgejo = {
  url: string;
  label: string;
  clientId: string;
  clientSecret: string;
  users: string;
  close: () => Promise<void>;
};

async function emulatedForgejo(): Promise<DemoForgejo> {
  const emulator = await startForgejoEmulator({
    ...demoSeedFor(callback),
    port: forgejoPort,
  });
  return {
    url: emulator.url,
    label: 'emulator',
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_CLIENT_SECRET,
    users: 'alice / alice-password    bob / bob-password',
    close: () => emulator.close(),
  };
}

/** The demo seed's users, repositories, issues and organisations, created in a real Gitea. */
async function realGitea(): Promise<DemoForgejo> {
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
    `demo: starting Gitea on port ${forgejoPort} and seeding ${users.map((u) => u.login).join(', ')}\n`,
  );
  const g = await startRealGitea({
    port: forgejoPort,
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
    users: 'alice / alice-password    bob / bob-password',
    close: () => g.close(),
  };
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(1);
}

/** Which setting moves each of the demo's ports, for the hint when one is taken. */
const PORT_SETTINGS = [
  { port, what: 'the broker', env: 'DEMO_PORT', example: 8090 },
  {
    port: forgejoPort,
    what: useReal ? 'Gitea' : 'the Forgejo emulator',
    env: 'DEMO_FORGEJO_PORT',
    example: 8091,
  },
];

function portInUseHint(p: { port: number; what: string; env: string; example: number }): string {
  return (
    `port ${p.port} (${p.what}) is already in use on 127.0.0.1; ` +
    `choose another with ${p.env}, e.g. \`${p.env}=${p.example} make demo\``
  );
}

/** Refuses early, with the setting to change, when a port is taken (the broker would only fail later). */
async function checkPortsFree(): Promise<void> {
  for (const p of PORT_SETTINGS) {
    if (p.port === 0) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p.port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) fail(portInUseHint(p));
  }
}

function realForgejoMcp(): string | undefined {
  try {
    return resolveCommand('forgejo-mcp');
  } catch {
    return undefined;
  }
}

await checkPortsFree();
const real = realForgejoMcp();
const childCommand = real
  ? `"${real}" --transport stdio`
  : `"${process.execPath}" "${join(ROOT, 'emulator', 'forgejo-mcp', 'main.ts')}" --transport stdio`;

let forgejo: DemoForgejo;
try {
  forgejo = useReal ? await realGitea() : await emulatedForgejo();
} catch (e) {
  const busy = (e as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test((e as Error).message);
  fail(
    busy
      ? portInUseHint(PORT_SETTINGS[1]!)
      : `cannot start ${PORT_SETTINGS[1]!.what} on port ${forgejoPort}: ${(e as Error).message}`,
  );
}

if (useReal) rmSync(data, { recursive: true, force: true });
mkdirSync(data, { recursive: true });
const logFile = createWriteStream(logPath, { flags: 'a' });
const broker: ChildProcess = spawn(
  process.execPath,
  ['--import', join(ROOT, 'scripts', 'exit-with-parent.ts'), join(ROOT, 'src', 'main', 'main.ts')],
  {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      BROKER_PUBLIC_URL: publicUrl,
      BROKER_LISTEN: `127.0.0.1:${port}`,
      FORGEJO_URL: forgejo.url,
      FORGEJO_CLIENT_ID: forgejo.clientId,
      FORGEJO_CLIENT_SECRET: forgejo.clientSecret,
      BROKER_DB: join(data, 'broker.db'),
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

const SHOWN_LEVELS = new Set(['warn', 'error', 'fatal']);
let started = false;
let stopping = false;
let sawPortInUse = false;

/** One line of the broker's stderr: all of it goes to the log file, warnings and worse to the terminal. */
function brokerLine(line: string): void {
  logFile.write(`${line}\n`);
  let entry: { level?: string; msg?: string; [k: string]: unknown } | undefined;
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {}
  if (/EADDRINUSE/.test(line)) sawPortInUse = true;
  if (!entry || typeof entry !== 'object') {
    // Not a log entry: the broker's own plain message before it could log (a configuration error).
    if (line.trim()) process.stderr.write(`broker: ${line}\n`);
    return;
  }
  if (!started && entry.msg === 'broker started') {
    started = true;
    banner();
  }
  if (SHOWN_LEVELS.has(String(entry.level))) {
    const { level, msg, time: _t, pid: _p, ...rest } = entry;
    const details = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    process.stderr.write(`broker ${level}: ${msg}${details}\n`);
  }
}

let pending = '';
broker.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
  pending += chunk;
  for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
    brokerLine(pending.slice(0, i));
    pending = pending.slice(i + 1);
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
      `  Forgejo        ${forgejo.url}  (${forgejo.label})`,
      `  MCP server     ${real ? `forgejo-mcp from PATH (${real})` : 'the forgejo-mcp stand-in (no forgejo-mcp on PATH)'}`,
      `  Demo users     ${forgejo.users}`,
      `  Broker log     ${logPath}  (here: warnings and errors only)`,
      '',
      '  Connect with the MCP Inspector:',
      '    npx @modelcontextprotocol/inspector',
      `    (Add Servers → + Add manually, Transport: streamable-http, URL: ${mcp}, Add,`,
      '     then the switch on the server card: sign in, and the Tools tab runs the tools)',
      '  Connect with mcp-remote (stdio bridge for Claude Desktop and others):',
      `    npx mcp-remote ${mcp}`,
      '',
      '  Enter shows this again; Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

// Enter (any line on stdin) repeats the banner once the broker is up.
process.stdin.setEncoding('utf8').on('data', (d: string) => {
  if (started && d.includes('\n')) banner();
});
process.stdin.on('error', () => {});

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
  await forgejo.close();
  if (pending) brokerLine(pending);
  await new Promise<void>((resolve) => logFile.end(() => resolve()));
  process.exit(code);
}

// 'close', not 'exit': the last of its stderr (a port in use, say) has been read by then.
broker.once('close', (code) => {
  if (!stopping) {
    process.stderr.write(`demo: the broker exited (status ${code}); its log: ${logPath}\n`);
    if (sawPortInUse) process.stderr.write(`demo: ${portInUseHint(PORT_SETTINGS[0]!)}\n`);
    void stop(code === 0 ? 0 : 1);
  }
});
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
