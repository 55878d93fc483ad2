// The Claude.ai simulator (test/support/claude-ai.ts) against the broker in front of a real Gitea:
// discovery, two registrations with client_secret_post (each answer carrying
// registration_client_uri), the broker's consent, Gitea's real login form and authorize page through
// 302/303 only, the code exchange, server/discover on 2026-07-28, and tool calls that return what
// Gitea's API says of the signed-in user. Then an access token that really expires (the shortest
// BROKER_ACCESS_TOKEN_TTL allowed) and is refreshed without the browser.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoNames, STANDIN_TOOLS, textOf } from '../e2e/support.ts';
import {
  CLAUDE_AI_OPENING,
  CLAUDE_MCP_UA,
  CLAUDE_OAUTH_UA,
  ClaudeAi,
  MODERN,
  openingOf,
} from '../support/claude-ai.ts';
import { type BrokerHarness, freePort, startBrokerInProcess } from '../support/oauth-harness.ts';
import { type GiteaUser, giteaRepos, type RealGitea, startRealGitea } from '../support/real-gitea.ts';

/** The shortest access-token lifetime the settings allow (src/config/settings.ts). */
const SHORT_TTL_MS = 60_000;

let gitea: RealGitea;
let broker: BrokerHarness;
let shortLived: BrokerHarness;

before(async () => {
  const ports = [await freePort(), await freePort()];
  gitea = await startRealGitea({ redirectUris: ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`) });
  const env = { FORGEJO_CLIENT_ID: gitea.app.clientId, FORGEJO_CLIENT_SECRET: gitea.app.clientSecret };
  broker = await startBrokerInProcess({ port: ports[0], forgejoUrl: gitea.url, env });
  shortLived = await startBrokerInProcess({
    port: ports[1],
    forgejoUrl: gitea.url,
    env: { ...env, BROKER_ACCESS_TOKEN_TTL: '1m' },
  });
});
after(async () => {
  await broker?.close();
  await shortLived?.close();
  await gitea?.close();
});

const connector = (b: BrokerHarness, user: GiteaUser) =>
  new ClaudeAi({ url: `${b.url}/mcp`, login: { login: user.login, password: user.password } });

const mcpCalls = (c: ClaudeAi, b: BrokerHarness) =>
  c.sent
    .filter((r) => r.url === `${b.url}/mcp` && r.headers['authorization'])
    .map((r) => `${r.headers['mcp-method']} ${r.headers['mcp-protocol-version']} ${r.status}`);

describe('Claude.ai (simulated) against the broker on a real Gitea', () => {
  it('discovers, registers twice, signs in through Gitea’s login and authorize pages by 302/303, and works over server/discover on 2026-07-28', async () => {
    const c = connector(broker, gitea.alice);
    await c.connect();

    assert.deepEqual(openingOf(c), CLAUDE_AI_OPENING);
    assert.ok(c.sent.slice(1).every((r) => r.headers['user-agent'] === CLAUDE_OAUTH_UA));
    assert.equal(c.registrations.length, 2);
    for (const r of c.registrations) {
      assert.equal(r['token_endpoint_auth_method'], 'client_secret_post');
      assert.equal(r['registration_client_uri'], `${broker.url}/oauth/register/${r['client_id']}`);
    }
    assert.equal(c.authorizations, 1);
    // The browser went through Gitea itself: its login form, then (first time) its authorize page.
    assert.ok(c.redirects.length >= 4, `redirects followed: ${c.redirects}`);
    assert.ok(
      c.redirects.every((code) => code === 302 || code === 303),
      `${c.redirects}`,
    );
    const p = await broker.broker.auth.verifyBearer(`Bearer ${c.tokens?.access}`);
    assert.ok(p.ok);
    assert.equal(p.principal.login, 'alice');
    assert.equal(p.principal.clientId, c.client?.id, 'the second registration is the one in use');

    assert.deepEqual((await c.listTools()).sort(), STANDIN_TOOLS);
    assert.equal(c.era, 'modern', 'no fallback to initialize: the broker answers server/discover');
    const me = JSON.parse(textOf(await c.callTool('get_my_user_info'))) as {
      Result: Record<string, unknown>;
    };
    const fromGitea = await gitea.api('GET', '/user', { as: gitea.alice });
    assert.equal(me.Result['login'], 'alice');
    assert.equal(me.Result['id'], (fromGitea.body as { id: number }).id, 'Gitea’s own user record');
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), await giteaRepos(gitea, gitea.alice));
    assert.deepEqual(mcpCalls(c, broker), [
      `server/discover ${MODERN} 200`,
      `tools/list ${MODERN} 200`,
      `tools/call ${MODERN} 200`,
      `tools/call ${MODERN} 200`,
    ]);
    assert.ok(
      c.sent
        .filter((r) => r.url === `${broker.url}/mcp`)
        .every((r) => r.headers['user-agent'] === CLAUDE_MCP_UA),
    );
  });

  it(`an access token that expires (BROKER_ACCESS_TOKEN_TTL=1m) is refreshed with client_secret_post, without the browser`, async () => {
    const c = connector(shortLived, gitea.bob);
    await c.connect();
    const issuedBy = Date.now() + SHORT_TTL_MS;
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), await giteaRepos(gitea, gitea.bob));
    const first = c.tokens?.access;
    // Wall-clock expiry, not load: sleep until the token's lifetime has surely run out.
    await sleep(Math.max(0, issuedBy - Date.now()) + 2_000);
    assert.deepEqual(repoNames(await c.callTool('list_my_repos')), await giteaRepos(gitea, gitea.bob));
    assert.deepEqual(c.grants, ['authorization_code', 'refresh_token']);
    assert.equal(c.authorizations, 1, 'no second trip through the browser');
    assert.notEqual(c.tokens?.access, first);
    assert.deepEqual(mcpCalls(c, shortLived).slice(-2), [
      `tools/call ${MODERN} 401`,
      `tools/call ${MODERN} 200`,
    ]);
    const p = await shortLived.broker.auth.verifyBearer(`Bearer ${c.tokens?.access}`);
    assert.ok(p.ok && p.principal.login === 'bob');
  });
});
