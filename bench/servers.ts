// The stdio MCP servers every path wraps, and the tool call measured on each.
import { join } from 'node:path';

export const REPO_ROOT = join(import.meta.dirname, '..');

export type StdioServer = {
  /** short name used in the report */
  name: string;
  label: string;
  command: string;
  args: string[];
  /** extra environment for the server process */
  env: Record<string, string>;
  tool: string;
  toolArgs: Record<string, unknown>;
  /** the result's first text content contains this (checked on every call) */
  expectText: string;
};

export function everythingServer(): StdioServer {
  return {
    name: 'everything',
    label: "server-everything's echo",
    command: process.execPath,
    args: [join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'],
    env: {},
    tool: 'echo',
    toolArgs: { message: 'bench' },
    expectText: 'Echo: bench',
  };
}

/** The forgejo-mcp stand-in; it checks FORGEJO_URL at start, so a Forgejo (emulator) must be up. */
export function standinServer(forgejoUrl: string): StdioServer {
  return {
    name: 'standin',
    label: 'forgejo-mcp stand-in version tool',
    command: process.execPath,
    args: [join(REPO_ROOT, 'emulator/forgejo-mcp/main.ts')],
    env: { FORGEJO_URL: forgejoUrl, FORGEJO_ACCESS_TOKEN: '' },
    tool: 'get_forgejo_mcp_server_version',
    toolArgs: {},
    expectText: 'Forgejo MCP Server version:',
  };
}

/** The server's command line as one shell string, for wrappers that take one (supergateway). */
export function shellCommand(server: StdioServer): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const env = Object.entries(server.env).map(([k, v]) => `${k}=${quote(v)}`);
  const parts = [server.command, ...server.args].map(quote);
  return (env.length > 0 ? ['env', ...env, ...parts] : parts).join(' ');
}
