// The admin command reads SQLite databases only for now: on a PostgreSQL BROKER_DB it says so and
// exits 2 (usage/configuration) before touching anything, and never prints the URL's password.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runAdmin } from '../../src/admin/admin.ts';
import { loadConfig } from '../../src/config/config.ts';
import { STANDIN_COMMAND } from '../support/standin.ts';

it('refuses a PostgreSQL database with a pointer to the docs (exit 2), the password unsaid', async () => {
  const loaded = loadConfig(
    {
      BROKER_PUBLIC_URL: 'https://mcp.example.com',
      FORGEJO_URL: 'https://forgejo.example.com',
      FORGEJO_CLIENT_ID: 'id',
      FORGEJO_CLIENT_SECRET: 'secret-value',
      // Port 9 (discard): nothing may connect to it anyway.
      BROKER_DB: 'postgres://broker:s3cret-pw@127.0.0.1:9/broker',
      BROKER_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'),
      BROKER_CHILD_COMMAND: STANDIN_COMMAND,
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    },
    [],
  );
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
  let out = '';
  let err = '';
  const code = await runAdmin(['users'], loaded.config, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  });
  assert.equal(code, 2);
  assert.equal(out, '');
  assert.equal(
    await runAdmin(['restore', '/nonexistent'], loaded.config, { out: () => {}, err: () => {} }),
    2,
  );
  assert.match(err, /SQLite databases only for now; on PostgreSQL, see docs\/operations\.md/);
  assert.ok(!err.includes('s3cret-pw'));
  assert.equal(
    await runAdmin(['new-key'], loaded.config, { out: () => {}, err: () => {} }),
    0,
    'new-key needs no database',
  );
});
