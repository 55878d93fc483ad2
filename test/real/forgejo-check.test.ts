// The Forgejo check (src/forgejo/check.ts: startup, `forgejo-mcp-broker check`, `admin check`)
// against a real Gitea, not only the emulator: its test code exchange must be answered differently
// there for good credentials, a wrong secret, an unknown client ID and an unlisted redirect URI, and
// the check must tell each apart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { checkForgejo, type ForgejoCheckOptions, testCodeExchange } from '../../src/forgejo/check.ts';
import { runCheck } from '../../src/main/check.ts';
import { testBrokerEnv } from '../support/oauth-harness.ts';
import { type RealGitea, startRealGitea } from '../support/real-gitea.ts';
import { STANDIN_COMMAND } from '../support/standin.ts';

const PUBLIC = 'http://127.0.0.1:8080';
const REDIRECT = `${PUBLIC}/oauth/callback`;
const WRONG_SECRET = 'gto_not-the-secret-0123456789abcdef';

let gitea: RealGitea;
let good: ForgejoCheckOptions;
before(async () => {
  gitea = await startRealGitea({ redirectUris: [REDIRECT] });
  good = {
    forgejoUrl: gitea.url,
    clientId: gitea.app.clientId,
    clientSecret: gitea.app.clientSecret,
    redirectUri: REDIRECT,
  };
});
after(() => gitea?.close());

/** Gitea's own answer to the check's very request. */
async function exchange(o: ForgejoCheckOptions): Promise<string> {
  const res = await testCodeExchange(o);
  const body = (await res.json()) as { error?: string; error_description?: string };
  return `${res.status} ${body.error}: ${body.error_description}`;
}

describe('the Forgejo check against a real Gitea', () => {
  it('Gitea answers the test code exchange differently for each case', async () => {
    const answers = {
      good: await exchange(good),
      wrongSecret: await exchange({ ...good, clientSecret: WRONG_SECRET }),
      unknownId: await exchange({ ...good, clientId: '00000000-0000-4000-8000-000000000000' }),
      unlistedRedirect: await exchange({ ...good, redirectUri: 'http://127.0.0.1:9/oauth/callback' }),
    };
    assert.deepEqual(answers, {
      good: '400 unauthorized_client: client is not authorized',
      wrongSecret: '400 unauthorized_client: invalid client secret',
      unknownId:
        "400 invalid_client: cannot load client with client id: '00000000-0000-4000-8000-000000000000'",
      unlistedRedirect: '400 unauthorized_client: unexpected redirect URI',
    });
  });

  it('passes with the right client ID and secret', async () => {
    const r = await checkForgejo(good);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.passed, [
      `Forgejo's discovery document at ${gitea.url}/.well-known/openid-configuration`,
      `FORGEJO_CLIENT_ID and FORGEJO_CLIENT_SECRET accepted by ${gitea.url}/login/oauth/access_token`,
    ]);
  });

  it('names a wrong client secret, without repeating it', async () => {
    const r = await checkForgejo({ ...good, clientSecret: WRONG_SECRET });
    assert.deepEqual(
      r.problems.map((p) => [p.severity, p.problem]),
      [
        [
          'error',
          `Forgejo refuses FORGEJO_CLIENT_SECRET for the application ${gitea.app.clientId} (unauthorized_client: invalid client secret)`,
        ],
      ],
    );
    assert.match(r.problems[0]?.fix ?? '', /^copy the secret again, or regenerate it/);
    assert.ok(!JSON.stringify(r).includes(WRONG_SECRET));
  });

  it('names a client ID Gitea does not know, apart from a wrong secret', async () => {
    const r = await checkForgejo({ ...good, clientId: 'no-such-app' });
    assert.equal(r.problems.length, 1);
    assert.match(
      r.problems[0]?.problem ?? '',
      /^Forgejo has no OAuth2 application with FORGEJO_CLIENT_ID no-such-app \(invalid_client: cannot load client/,
    );
    assert.match(r.problems[0]?.fix ?? '', /^copy the client ID/);
  });

  it('names a redirect URI the Gitea app does not list', async () => {
    const r = await checkForgejo({ ...good, redirectUri: 'http://127.0.0.1:9/oauth/callback' });
    assert.equal(r.problems.length, 1);
    assert.match(
      r.problems[0]?.problem ?? '',
      /does not accept the redirect URI http:\/\/127\.0\.0\.1:9\/oauth\/callback \(unauthorized_client: unexpected redirect URI\)/,
    );
  });

  it('`forgejo-mcp-broker check`: all passed with the right settings, exit 1 naming the secret with a wrong one', async () => {
    const run = async (secret: string) => {
      const loaded = loadConfig(
        {
          // The check opens no database and starts no child: neither needs to exist.
          ...testBrokerEnv({ publicUrl: PUBLIC, forgejoUrl: gitea.url, dir: '/nonexistent' }),
          BROKER_CHILD_COMMAND: STANDIN_COMMAND,
          FORGEJO_CLIENT_ID: gitea.app.clientId,
          FORGEJO_CLIENT_SECRET: secret,
        },
        [],
      );
      assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
      const lines: string[] = [];
      return { code: await runCheck(loaded.config, (l) => lines.push(l)), lines };
    };
    const ok = await run(gitea.app.clientSecret);
    assert.equal(ok.code, 0, ok.lines.join('\n'));
    assert.equal(ok.lines.at(-1), 'all checks passed');
    const bad = await run(WRONG_SECRET);
    assert.equal(bad.code, 1);
    assert.ok(
      bad.lines.some((l) => l.startsWith('FAIL  Forgejo refuses FORGEJO_CLIENT_SECRET')),
      bad.lines.join('\n'),
    );
  });
});
