// `make demo`: the Forgejo emulator seeded with two users, and the real broker in front of it, on
// loopback. The child is the real forgejo-mcp when one is on PATH, else the stand-in. Ctrl-C stops
// everything and leaves no process behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startForgejoEmulator } from '../emulator/forgejo/emulator.ts';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demoSeedFor } from '../emulator/forgejo/seed.ts';
import { resolveCommand } from '../src/pool/command.ts';

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

let emulator: Awaited<ReturnType<typeof startForgejoEmulator>>;
try {
  emulator = await startForgejoEmulator({
    ...demoSeedFor(`${publicUrl}/oauth/callback`),
    port: Number(values['forgejo-port']),
  });
} catch (e) {
  process.stderr.write(
    `demo: cannot start the Forgejo emulator on port ${values['forgejo-port']}: ${(e as Error).message}\n`,
  );
  process.stderr.write('demo: set DEMO_FORGEJO_PORT (and DEMO_PORT for the broker) to free ports.\n');
  process.exit(1);
}

mkdirSync(values.data as string, { recursive: true });
const broker: ChildProcess = spawn(
  process.execPath,
  ['--import', join(ROOT, 'scripts', 'exit-with-parent.ts'), join(ROOT, 'src', 'main', 'main.ts')],
  {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      BROKER_PUBLIC_URL: publicUrl,
      BROKER_LISTEN: `127.0.0.1:${port}`,
      FORGEJO_URL: emulator.url,
      FORGEJO_CLIENT_ID: DEMO_CLIENT_ID,
      FORGEJO_CLIENT_SECRET: DEMO_CLIENT_SECRET,
      BROKER_DB: join(values.data as string, 'broker.db'),
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
      `  Forgejo        ${emulator.url}  (emulator)`,
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
  await emulator.close();
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
