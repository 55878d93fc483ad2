import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { README, renderReadme } from '../../scripts/settings-table.ts';

it('README settings table matches src/config/settings.ts (run `make docs` after adding a setting)', () => {
  const readme = readFileSync(README, 'utf8');
  assert.ok(readme === renderReadme(readme), 'README.md settings table is stale: run `make docs`');
});

it('README starts with the two commands a newcomer runs', () => {
  const head = readFileSync(README, 'utf8').split('\n').slice(0, 6).join('\n');
  assert.match(head, /^make (run|demo) /m);
  assert.match(head, /^make test /m);
});
