// Load from the official SDK v1 client in this process: what an SDK-based client sees, client
// cost included (on 2 cores the client is a large share of an HTTP path's ceiling).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { StdioServer } from '../servers.ts';
import type { Running } from '../targets/target.ts';
import { resultOk, runPlan } from './load.ts';
import type { DriverPlan, DriverRun } from './result.ts';

export type SdkConnection = { client: Client; pid: number; close: () => Promise<void> };

export async function connectSdk(running: Running): Promise<SdkConnection> {
  const client = new Client({ name: 'forgejo-mcp-broker-bench', version: '1' }, { capabilities: {} });
  if (running.kind === 'stdio') {
    const stdio = new StdioClientTransport({
      command: running.server.command,
      args: running.server.args,
      env: { ...getDefaultEnvironment(), ...running.server.env },
      stderr: 'ignore',
    });
    await client.connect(stdio);
    const pid = stdio.pid;
    if (pid === null) throw new Error('stdio server has no pid');
    return { client, pid, close: () => client.close() };
  }
  const http = new StreamableHTTPClientTransport(new URL(running.url), {
    requestInit: { headers: running.headers },
  });
  await client.connect(http);
  return {
    client,
    pid: running.pid,
    close: async () => {
      await http.terminateSession().catch(() => {});
      await client.close();
    },
  };
}

export async function runSdkDriver(
  running: Running,
  server: StdioServer,
  plan: DriverPlan,
): Promise<DriverRun> {
  const { client, pid, close } = await connectSdk(running);
  try {
    return await runPlan(
      async () => {
        const result = await client.callTool({ name: server.tool, arguments: server.toolArgs });
        if (!resultOk(result, server.expectText))
          throw new Error(`unexpected result: ${JSON.stringify(result).slice(0, 200)}`);
      },
      pid,
      plan,
      'sdk',
    );
  } finally {
    await close();
  }
}
