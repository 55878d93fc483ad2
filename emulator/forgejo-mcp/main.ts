#!/usr/bin/env node
// A stand-in for goern/forgejo-mcp (v2.34.1) with the behaviours the broker depends on, for tests
// and the demo where the Go binary is absent: same flags and environment, the token read once from
// FORGEJO_ACCESS_TOKEN, GET /api/v1/version twice at startup and exit 1 on failure, colourful logs on
// stderr only, nothing on stdout before the first request, and tool failures as JSON-RPC -32603
// errors rather than isError results.
import { parseArgs } from 'node:util';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

export const STANDIN_VERSION = '2.34.1-standin';

const colour = { info: '\x1b[34mINFO\x1b[0m', error: '\x1b[31mERROR\x1b[0m', debug: '\x1b[35mDEBUG\x1b[0m' };
function log(level: keyof typeof colour, msg: string): void {
  process.stderr.write(`${new Date().toISOString()}\t${colour[level]}\t${msg}\n`);
}

type Args = { transport: string; url: string; token: string; debug: boolean };

function readArgs(): Args {
  const { values } = parseArgs({
    options: {
      transport: { type: 'string', short: 't', default: 'stdio' },
      url: { type: 'string' },
      token: { type: 'string' },
      debug: { type: 'boolean', short: 'd', default: false },
    },
    strict: true,
  });
  return {
    transport: values.transport as string,
    url: (values.url ?? process.env['FORGEJO_URL'] ?? '').replace(/\/+$/, ''),
    token: values.token ?? process.env['FORGEJO_ACCESS_TOKEN'] ?? '',
    debug: values.debug as boolean,
  };
}

class ApiError extends Error {}

function api(args: Args) {
  return async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${args.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `token ${args.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {}
      throw new ApiError(`${res.status} ${res.statusText}: ${message}`);
    }
    return text === '' ? null : JSON.parse(text);
  };
}

type Tool = {
  name: string;
  description: string;
  properties: Record<string, { type: string; description: string }>;
  required?: string[];
  run: (a: Record<string, unknown>) => Promise<unknown>;
};

function str(a: Record<string, unknown>, k: string): string {
  const v = a[k];
  return typeof v === 'string' ? v : '';
}
function num(a: Record<string, unknown>, k: string, d: number): number {
  const v = Number(a[k]);
  return Number.isFinite(v) && v > 0 ? v : d;
}

function tools(call: ReturnType<typeof api>): Tool[] {
  const repo = {
    owner: { type: 'string', description: 'Repository owner' },
    repo: { type: 'string', description: 'Repository name' },
  };
  return [
    {
      name: 'get_forgejo_mcp_server_version',
      description: 'Get forgejo mcp server version',
      properties: {},
      run: async () => `Forgejo MCP Server version: ${STANDIN_VERSION}`,
    },
    {
      name: 'get_my_user_info',
      description: 'Get my user info',
      properties: {},
      run: () => call('GET', '/user'),
    },
    {
      name: 'list_my_repos',
      description: 'List my repositories',
      properties: {},
      run: () => call('GET', '/user/repos?page=1&limit=100'),
    },
    {
      name: 'list_repo_issues',
      description: 'List repo issues',
      properties: {
        ...repo,
        state: { type: 'string', description: 'State (open|closed|all)' },
        page: { type: 'number', description: 'Page number' },
        limit: { type: 'number', description: 'Page size' },
      },
      required: ['owner', 'repo'],
      run: (a) => {
        const q = new URLSearchParams({
          state: str(a, 'state') || 'open',
          page: String(num(a, 'page', 1)),
          limit: String(num(a, 'limit', 20)),
        });
        return call(
          'GET',
          `/repos/${encodeURIComponent(str(a, 'owner'))}/${encodeURIComponent(str(a, 'repo'))}/issues?${q}`,
        );
      },
    },
    {
      name: 'create_issue',
      description: 'Create issue',
      properties: {
        ...repo,
        title: { type: 'string', description: 'Title' },
        body: { type: 'string', description: 'Body' },
      },
      required: ['owner', 'repo', 'title'],
      run: (a) =>
        call(
          'POST',
          `/repos/${encodeURIComponent(str(a, 'owner'))}/${encodeURIComponent(str(a, 'repo'))}/issues`,
          {
            title: str(a, 'title'),
            body: str(a, 'body'),
          },
        ),
    },
  ];
}

async function connectionTest(call: ReturnType<typeof api>): Promise<string> {
  // forgejo-mcp checks the connection twice (client construction and version probe).
  await call('GET', '/version');
  const v = (await call('GET', '/version')) as { version?: string };
  return v.version ?? 'unknown';
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = readArgs();
  } catch (e) {
    log('error', (e as Error).message);
    process.exit(1);
  }
  if (args.transport !== 'stdio') {
    log('error', `transport ${args.transport} is not supported by the stand-in (only stdio)`);
    process.exit(1);
  }
  try {
    new URL(args.url);
  } catch {
    log('error', `invalid Forgejo URL: ${JSON.stringify(args.url)}`);
    process.exit(1);
  }
  const call = api(args);
  try {
    const version = await connectionTest(call);
    log('info', `Connected to Forgejo ${version} at ${args.url}`);
  } catch (e) {
    log('error', `connection test failed: ${(e as Error).message}`);
    process.exit(1);
  }

  const list = tools(call);
  const server = new Server(
    { name: 'forgejo-mcp', version: STANDIN_VERSION },
    { capabilities: { tools: {} } },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: list.map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: {
        type: 'object' as const,
        properties: t.properties,
        ...(t.required ? { required: t.required } : {}),
      },
    })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => {
    const tool = list.find((t) => t.name === req.params.name);
    // mcp-go's exact answer for a name it has not registered (server.go handleToolCall).
    if (!tool)
      throw Object.assign(new Error(`tool '${req.params.name}' not found: tool not found`), {
        code: ErrorCode.InvalidParams,
      });
    if (args.debug) log('debug', `Called ${tool.name}`);
    try {
      const result = await tool.run(req.params.arguments ?? {});
      return { content: [{ type: 'text', text: JSON.stringify({ Result: result }) }] };
    } catch (e) {
      // mcp-go turns a tool handler's Go error into a JSON-RPC internal error whose message is the
      // Go error text alone (McpError would prefix "MCP error -32603:").
      throw Object.assign(new Error(`${tool.name} err: ${(e as Error).message}`), {
        code: ErrorCode.InternalError,
      });
    }
  });

  const transport = new StdioServerTransport();
  const exit = () => process.exit(0);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  process.stdin.on('end', exit);
  await server.connect(transport);
}

await main();
