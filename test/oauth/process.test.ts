// The real entry point wires the authorization server: a spawned broker serves it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startBroker } from '../support/broker-process.ts';
import { freePort } from '../support/oauth-harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'broker-oauth-proc-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

it('a spawned broker serves discovery and registration, and stops on SIGTERM', async () => {
  const port = await freePort();
  const b = await startBroker({
    BROKER_LISTEN: `127.0.0.1:${port}`,
    BROKER_PUBLIC_URL: `http://127.0.0.1:${port}`,
    FORGEJO_URL: 'http://127.0.0.1:3000',
    FORGEJO_CLIENT_ID: 'broker-app',
    FORGEJO_CLIENT_SECRET: 'forgejo-secret-for-process-test',
    BROKER_DB: join(tmp, 'broker.db'),
  });
  try {
    const meta = (await (await fetch(`${b.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(meta['issuer'], `http://127.0.0.1:${port}`);
    const reg = await fetch(`${b.url}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://a.example/cb'] }),
    });
    assert.equal(reg.status, 201);
    const secret = ((await reg.json()) as { client_secret: string }).client_secret;
    assert.ok(!b.stderr().includes(secret), 'the client secret is not logged');
    assert.ok(!b.stderr().includes('forgejo-secret-for-process-test'));
  } finally {
    b.proc.kill('SIGTERM');
    const exit = await b.exited;
    assert.equal(exit.code, 0);
  }
});
