// The README's troubleshooting table is keyed by the exact text a user sees. Each quoted text in its
// first column must still be written by the code (src/, or emulator/ for Forgejo's and forgejo-mcp's
// own messages, which the emulators copy), so a reworded message cannot leave the table stale.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const README = join(ROOT, 'README.md');

function sourceTexts(): string[] {
  const texts: string[] = [];
  for (const dir of ['src', 'emulator']) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts')) {
        texts.push(readFileSync(join(entry.parentPath, entry.name), 'utf8'));
      }
    }
  }
  return texts;
}

/** The first-column code spans of every row of the README's "Troubleshooting" table. */
function quotedTexts(readme: string): string[][] {
  const start = readme.indexOf('\n## Troubleshooting\n');
  assert.ok(start >= 0, 'README has a "## Troubleshooting" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const rows = section.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---'));
  assert.match(rows[0] ?? '', /^\| what you see \|/, 'the table starts with its header row');
  return rows.slice(1).map((row) => {
    const first = row.split('|')[1] ?? '';
    return [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
  });
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Whether one source file writes `quoted`: its parts between `…` (where the code puts a value)
 * appear in order, close together. The longest part must be long enough to mean something.
 */
function written(quoted: string, sources: string[]): boolean {
  const parts = quoted
    .split('…')
    .map((p) => p.trim())
    .filter(Boolean);
  assert.ok(Math.max(...parts.map((p) => p.length)) >= 12, `"${quoted}" is too short to identify a message`);
  const re = new RegExp(parts.map(escapeRegExp).join('[\\s\\S]{0,200}?'));
  return sources.some((s) => re.test(s));
}

it('every text quoted in the README troubleshooting table is written verbatim by the code', () => {
  const sources = sourceTexts();
  const rows = quotedTexts(readFileSync(README, 'utf8'));
  assert.ok(rows.length >= 20, `the table has ${rows.length} rows`);
  const missing: string[] = [];
  for (const quotes of rows) {
    assert.ok(quotes.length > 0, 'every row quotes the text a user sees');
    for (const q of quotes) if (!written(q, sources)) missing.push(q);
  }
  assert.deepEqual(missing, [], 'quoted in README.md but written nowhere in src/ or emulator/');
});

it('the check finds a message with a value in it, and not a text the code never writes', () => {
  const sources = sourceTexts();
  assert.equal(written('all … MCP server processes are busy; try again shortly', sources), true);
  assert.equal(written('all MCP server processes are busy; try again shortly', sources), false);
  assert.equal(written('the token was eaten by a grue', sources), false);
});
