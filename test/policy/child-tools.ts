// Lists the tools of a forgejo-mcp (the real binary or the stand-in) started against the Forgejo
// emulator with a user's real token, over stdio, exactly as the pool starts it.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';

export type ListedTool = { name: string; annotations?: Record<string, unknown> };

export async function childTools(
  command: string,
  args: string[],
  emu: ForgejoEmulator,
  token: string,
): Promise<{ tools: ListedTool[]; unknownToolError: unknown; close(): Promise<void> }> {
  const client = new Client({ name: 'catalogue-test', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command,
      args: [...args, '--url', emu.url],
      env: { FORGEJO_ACCESS_TOKEN: token, PATH: '/usr/bin:/bin' },
      stderr: 'ignore',
    }),
  );
  const tools: ListedTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  const unknownToolError = await client.callTool({ name: 'no_such_tool_xyz', arguments: {} }).then(
    () => undefined,
    (e: { code?: number; message?: string }) => e,
  );
  return { tools, unknownToolError, close: () => client.close() };
}
