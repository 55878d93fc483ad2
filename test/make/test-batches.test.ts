import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BATCHES, batchFiles, runAll } from '../../scripts/test-batches.ts';

describe('make test batches (scripts/test-batches.ts)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'batches-'));
    const t = "import { it } from 'node:test';\n";
    writeFileSync(
      join(dir, 'a-fail.test.ts'),
      `${t}it('one', () => {});\nit('two', () => { throw new Error('boom'); });\n`,
    );
    writeFileSync(join(dir, 'b-pass.test.ts'), `${t}it('three', () => {});\nit('four', () => {});\n`);
    writeFileSync(
      join(dir, 'lib.ts'),
      'export function half(x: number): number {\n  if (x > 0) return x / 2;\n  const y = -x;\n  return y / 2;\n}\n',
    );
    writeFileSync(
      join(dir, 'c-cover.test.ts'),
      `${t}import { half } from './lib.ts';\nit('five', () => { if (half(2) !== 1) throw new Error(); });\n`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every batch after a failing one, says which were not run and why, and ends with one total', async () => {
    let echoed = '';
    const { outcomes, text, ok } = await runAll(
      [
        { name: 'first', files: ['a-*.test.ts'] },
        { name: 'second', files: ['*.test.ts'], exclude: ['a-*.test.ts', 'c-*.test.ts'] },
        {
          name: 'gated',
          files: ['c-*.test.ts'],
          options: [
            '--experimental-test-coverage',
            '--test-coverage-include=lib.ts',
            '--test-coverage-lines=100',
          ],
        },
        {
          name: 'real server',
          files: ['b-*.test.ts'],
          notRunBecause: () => 'no server binary: build it first',
        },
      ],
      {
        cwd: dir,
        echo: (s) => {
          echoed += s;
        },
      },
    );
    assert.equal(ok, false);
    assert.deepEqual(
      outcomes.map((o) => (o.ran ? [o.name, o.passed, o.failed] : [o.name, 'not run'])),
      [
        ['first', 1, 1],
        ['second', 2, 0],
        ['gated', 1, 1],
        ['real server', 'not run'],
      ],
    );
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.at(-1), '4 passed, 2 failed');
    assert.ok(lines.includes('✖ first: 1 passed, 1 failed'), text);
    assert.ok(lines.includes('✔ second: 2 passed, 0 failed'), text);
    assert.match(
      text,
      /^✖ gated: 1 passed, 1 failed \(Error: [\d.]+% line coverage does not meet threshold of 100%\.\)$/m,
    );
    assert.match(text, /^- real server: NOT RUN \(no server binary: build it first\)$/m);
    assert.match(text, /^1 of 4 batches NOT RUN: their tests are counted neither as passed nor as failed$/m);
    // Node's own runner lines are passed through.
    assert.match(echoed, /✖ two/);
    assert.match(echoed, /✔ four/);
  });

  it('passes when every batch that ran passed, and narrows batches to TEST_FILES', async () => {
    const { text, ok, outcomes } = await runAll(
      [
        { name: 'first', files: ['a-*.test.ts'] },
        { name: 'second', files: ['*.test.ts'], exclude: ['a-*.test.ts'] },
      ],
      { cwd: dir, only: ['b-pass.test.ts'], echo: () => {} },
    );
    assert.equal(ok, true);
    assert.deepEqual(outcomes[0], { name: 'first', ran: false, why: 'TEST_FILES selects none of its files' });
    assert.equal(text.trimEnd().split('\n').at(-1), '2 passed, 0 failed');
  });

  it('a batch that did not run fails make test where it is required (CI), and only there', async () => {
    const real = (required: boolean) => ({
      name: 'real server',
      files: ['b-*.test.ts'],
      notRunBecause: () => 'no suitable Go',
      required: () => required,
    });
    const optional = await runAll([{ name: 'first', files: ['b-*.test.ts'] }, real(false)], {
      cwd: dir,
      echo: () => {},
    });
    assert.equal(optional.ok, true);
    assert.match(optional.text, /^- real server: NOT RUN \(no suitable Go\)$/m);
    const required = await runAll([{ name: 'first', files: ['b-*.test.ts'] }, real(true)], {
      cwd: dir,
      echo: () => {},
    });
    assert.equal(required.ok, false);
    assert.match(
      required.text,
      /^- real server: NOT RUN \(no suitable Go\) — required here, so make test fails$/m,
    );
    assert.equal(required.text.trimEnd().split('\n').at(-1), '2 passed, 0 failed');
  });

  it("make test's batches together take every test file of the repository once", () => {
    const root = join(import.meta.dirname, '..', '..');
    const all = batchFiles({ name: 'all', files: ['test/*/*.test.ts'] }, root);
    const taken = BATCHES.flatMap((b) => batchFiles(b, root));
    assert.deepEqual([...taken].sort(), all);
    assert.ok(all.includes('test/oauth/flow.test.ts') && all.includes('test/make/test-batches.test.ts'));
  });
});
