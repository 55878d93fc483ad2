// The Forgejo check against the emulator, which answers the token endpoint as Forgejo does (see
// the emulator's token tests): the same function is meant to run against a real Forgejo or Gitea.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demoSeedFor } from '../../emulator/forgejo/seed.ts';
import { checkForgejo, type ForgejoCheckOptions } from '../../src/forgejo/check.ts';
import { freePort } from '../support/oauth-harness.ts';

const REDIRECT = 'http://127.0.0.1:8080/oauth/callback';

describe('checkForgejo', () => {
  let emulator: Awaited<ReturnType<typeof startForgejoEmulator>>;
  let good: ForgejoCheckOptions;
  before(async () => {
    emulator = await startForgejoEmulator({ ...demoSeedFor(REDIRECT), port: 0 });
    good = {
      forgejoUrl: emulator.url,
      clientId: DEMO_CLIENT_ID,
      clientSecret: DEMO_CLIENT_SECRET,
      redirectUri: REDIRECT,
    };
  });
  after(() => emulator.close());

  it('passes with the right URL, client ID and secret', async () => {
    const r = await checkForgejo(good);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.passed, [
      `Forgejo's discovery document at ${emulator.url}/.well-known/openid-configuration`,
      `FORGEJO_CLIENT_ID and FORGEJO_CLIENT_SECRET accepted by ${emulator.url}/login/oauth/access_token`,
    ]);
  });

  it('names a wrong client secret, with Forgejo’s words and the fix', async () => {
    const r = await checkForgejo({ ...good, clientSecret: 'not-the-secret' });
    assert.deepEqual(r.problems, [
      {
        severity: 'error',
        problem: `Forgejo refuses FORGEJO_CLIENT_SECRET for the application ${DEMO_CLIENT_ID} (unauthorized_client: invalid client secret)`,
        fix: "copy the secret again, or regenerate it on the application's page in Forgejo (Site administration → Integrations → Applications (or Settings → Applications)) and set the new one",
      },
    ]);
    assert.ok(!JSON.stringify(r).includes('not-the-secret'), 'the secret is never repeated');
  });

  it('names a client ID Forgejo does not know', async () => {
    const r = await checkForgejo({ ...good, clientId: 'no-such-app' });
    assert.equal(r.problems.length, 1);
    assert.match(
      r.problems[0]!.problem,
      /^Forgejo has no OAuth2 application with FORGEJO_CLIENT_ID no-such-app \(invalid_client: cannot load client/,
    );
    assert.match(r.problems[0]!.fix, /^copy the client ID/);
  });

  it('says when Forgejo cannot be reached, and stops there', async () => {
    const r = await checkForgejo({ ...good, forgejoUrl: `http://127.0.0.1:${await freePort()}` });
    assert.deepEqual(r.passed, []);
    assert.equal(r.problems.length, 1);
    assert.match(
      r.problems[0]!.problem,
      /^cannot reach Forgejo at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/,
    );
    assert.match(r.problems[0]!.fix, /^check FORGEJO_URL/);
  });

  it('says when FORGEJO_URL is not the root of a Forgejo', async () => {
    const other: Server = createServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
      const r = await checkForgejo({ ...good, forgejoUrl: url });
      assert.equal(r.problems.length, 1);
      assert.equal(
        r.problems[0]!.problem,
        `${url}/.well-known/openid-configuration answered 404 without an OpenID discovery document: ${url} is not the root of a Forgejo with OAuth2 enabled`,
      );
      // A path below the root is the usual mistake.
      const below = await checkForgejo({ ...good, forgejoUrl: `${emulator.url}/explore` });
      assert.match(below.problems[0]!.problem, /is not the root of a Forgejo/);
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('warns when Forgejo names itself by another URL, and still checks the credentials', async () => {
    const viaLocalhost = emulator.url.replace('127.0.0.1', 'localhost');
    const r = await checkForgejo({ ...good, forgejoUrl: viaLocalhost });
    assert.deepEqual(
      r.problems.map((p) => [p.severity, p.problem]),
      [['warn', `Forgejo calls itself ${emulator.url}, not FORGEJO_URL ${viaLocalhost}`]],
    );
    assert.equal(r.passed.length, 2);
  });
});
