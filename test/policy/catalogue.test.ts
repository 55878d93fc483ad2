// The tool catalogue against the forgejo-mcp stand-in shipped for tests (whose tools are a subset
// of the real one's): every tool it lists is classified, and the comparison catches a tool the
// table lost. The comparison with the real binary is test/policy/catalogue-real.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { CATALOGUE, catalogueDrift, classify, FORGEJO_MCP_VERSION } from '../../src/policy/catalogue.ts';
import { loginTokens, startWorld } from '../emulator/fixture.ts';
import { STANDIN } from '../support/standin.ts';
import { childTools, type ListedTool } from './child-tools.ts';

let emu: ForgejoEmulator;
let standin: ListedTool[];
before(async () => {
  ({ emu } = await startWorld());
  const token = (await loginTokens(emu)).access_token;
  const c = await childTools(process.execPath, [STANDIN, '--transport', 'stdio'], emu, token);
  standin = c.tools;
  await c.close();
});
after(() => emu.close());

describe('tool catalogue', () => {
  it(`holds the 141 tools of forgejo-mcp ${FORGEJO_MCP_VERSION}: 67 read, 38 write, 36 destructive`, () => {
    assert.equal(CATALOGUE.size, 141);
    const count = { read: 0, write: 0, destructive: 0 };
    for (const e of CATALOGUE.values()) count[e.class]++;
    assert.deepEqual(count, { read: 67, write: 38, destructive: 36 });
  });

  it('annotations follow the class: reads are read-only and idempotent, destructive tools say so', () => {
    for (const [name, e] of CATALOGUE) {
      assert.equal(e.annotations.readOnlyHint, e.class === 'read', name);
      assert.equal(e.annotations.destructiveHint, e.class === 'destructive', name);
      if (e.class === 'read') assert.equal(e.annotations.idempotentHint, true, name);
      assert.ok(e.annotations.title.length > 0, name);
    }
    assert.equal(classify('delete_org').class, 'destructive');
    assert.equal(classify('merge_pull_request').class, 'destructive');
    assert.equal(classify('create_issue').class, 'write');
    assert.equal(classify('list_my_repos').class, 'read');
  });

  it('a tool the table does not know is destructive, with no promise of idempotence', () => {
    const e = classify('purge_everything');
    assert.equal(e.class, 'destructive');
    assert.deepEqual(
      { ...e.annotations },
      {
        title: 'purge_everything',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: true,
      },
    );
  });

  it('classifies every tool of the stand-in, which declares no annotations of its own (like forgejo-mcp)', () => {
    assert.equal(standin.length, 5);
    assert.deepEqual(catalogueDrift(standin.map((t) => t.name)).unclassified, []);
    for (const t of standin) assert.equal(t.annotations, undefined, t.name);
  });

  it('the comparison fails when a tool is removed from the table', () => {
    const without = new Map(CATALOGUE);
    without.delete('create_issue');
    assert.deepEqual(
      catalogueDrift(
        standin.map((t) => t.name),
        without,
      ).unclassified,
      ['create_issue'],
    );
    // …and names every table entry a child no longer lists.
    const drift = catalogueDrift(['create_issue', 'list_my_repos']);
    assert.equal(drift.absent.length, 139);
    assert.ok(drift.absent.includes('delete_org'));
  });
});
