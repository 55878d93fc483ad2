// The README's "Deploy for real" names the variables an operator sets and the file each goes in; they
// must be the ones deploy/compose actually reads, and the commands must be the ones it documents.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const COMPOSE = readFileSync(join(ROOT, 'deploy', 'compose', 'compose.yaml'), 'utf8');
const ENV_EXAMPLE = readFileSync(join(ROOT, 'deploy', 'compose', 'broker.env.example'), 'utf8');

function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a "## ${title}" section`);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** Rows of the "| variable | file | value |" table: variable name → file. */
function variableTable(): Map<string, string> {
  const lines = section('Deploy for real').split('\n');
  const header = lines.findIndex((l) => l.startsWith('| variable | file |'));
  assert.ok(header >= 0, 'the deploy section has a variable table');
  const rows = new Map<string, string>();
  for (const l of lines.slice(header + 2)) {
    if (!l.startsWith('|')) break;
    const m = /^\| `([A-Z_]+)` \| `([^`]+)` \|/.exec(l);
    assert.ok(m, `row "${l}" names a variable and a file`);
    rows.set(m[1] as string, m[2] as string);
  }
  return rows;
}

it('the README’s deploy variables are exactly those the compose files read, each in its file', () => {
  const table = variableTable();
  assert.equal(table.size, 5);
  const inExample = [...ENV_EXAMPLE.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1] as string);
  for (const [name, file] of table) {
    if (file === 'broker.env') assert.ok(inExample.includes(name), `${name} is in broker.env.example`);
    else if (file === '.env') assert.match(COMPOSE, new RegExp(`\\$\\{${name}:\\?`), `compose needs ${name}`);
    else assert.fail(`${name}: unexpected file ${file}`);
  }
  // Everything the example asks to fill in (all but the log level) is in the table.
  for (const name of inExample.filter((n) => n !== 'LOG_LEVEL')) {
    assert.equal(table.get(name), 'broker.env', `${name} from broker.env.example is in the README`);
  }
});

it('the README’s deploy commands are the ones compose.yaml documents', () => {
  const deploy = section('Deploy for real');
  for (const line of [
    'cp broker.env.example broker.env',
    'echo BROKER_DOMAIN=mcp.example.com > .env',
    'docker compose up -d --build',
  ]) {
    assert.ok(deploy.includes(line), `README: ${line}`);
  }
  assert.ok(COMPOSE.includes('docker compose up -d --build'));
  assert.ok(COMPOSE.includes('cp broker.env.example broker.env'));
  assert.ok(deploy.includes('`<BROKER_PUBLIC_URL>/oauth/callback`'), 'the Forgejo redirect URI');
});
