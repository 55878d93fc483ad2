// The catalogue against the REAL forgejo-mcp: exactly the same tool names both ways, so an upgrade
// cannot add an unclassified tool or leave a stale row, and a hidden tool's refusal is the real
// child's own answer for an unknown one. It needs the Go binary: FORGEJO_MCP=/path/to/forgejo-mcp,
// or forgejo-mcp on PATH. Without it the test is reported as a TODO that says NOT RUN — never
// as passed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { resolveCommand } from '../../src/config/command.ts';
import { catalogueDrift, FORGEJO_MCP_VERSION } from '../../src/policy/catalogue.ts';
import { notFound } from '../../src/policy/policy.ts';
import { loginTokens, startWorld } from '../emulator/fixture.ts';
import { childTools, type ListedTool } from './child-tools.ts';

function findReal(): string | undefined {
  try {
    return resolveCommand(process.env['FORGEJO_MCP'] || 'forgejo-mcp');
  } catch {
    return undefined;
  }
}

const real = findReal();
const NOT_RUN = `NOT RUN: no real forgejo-mcp ${FORGEJO_MCP_VERSION} binary (set FORGEJO_MCP or put forgejo-mcp on PATH); the catalogue is unverified against it`;

if (!real) {
  process.stderr.write(`${NOT_RUN}\n`);
  describe('tool catalogue against the real forgejo-mcp', () => {
    it('lists exactly the tools of the table', { todo: NOT_RUN });
  });
} else {
  let emu: ForgejoEmulator;
  let listed: { tools: ListedTool[]; unknownToolError: unknown };
  before(async () => {
    ({ emu } = await startWorld());
    const c = await childTools(real, ['--transport', 'stdio'], emu, (await loginTokens(emu)).access_token);
    listed = c;
    await c.close();
  });
  after(() => emu.close());

  describe(`tool catalogue against the real forgejo-mcp (${real})`, () => {
    it('lists exactly the tools of the table', () => {
      assert.deepEqual(catalogueDrift(listed.tools.map((t) => t.name)), { unclassified: [], absent: [] });
    });
    it("a hidden tool's refusal is the real child's answer for an unknown tool", () => {
      const e = listed.unknownToolError as { code?: number; message?: string };
      const mine = notFound.tool('no_such_tool_xyz');
      assert.equal(e.code, mine.code);
      assert.ok(e.message?.endsWith(mine.message), `${e.message} ends with ${mine.message}`);
    });
  });
}
