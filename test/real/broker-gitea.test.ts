// The whole broker against a real Gitea (Forgejo cannot be built here; emulator/README.md) with the
// project's forgejo-mcp stand-in as each user's child (the real forgejo-mcp cannot be had from the
// Go module proxy). Headless Chromium signs in through Gitea's real login form and authorize page
// for the Claude.ai, Claude Code, Cursor and VS Code client shapes with SDK v1 and v2 clients; the
// children answer with what Gitea's API returns for that user; Gitea's single-use refresh tokens
// rotate under 30 s of calls; the user revokes the broker in Gitea's settings page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  auth as authV2,
  Client as ClientV2,
  type OAuthDiscoveryState as DiscoveryV2,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { type OAuthDiscoveryState, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { ChromiumOAuthProvider, type ClientShape } from '../support/chromium-oauth.ts';
import { walkForge } from '../support/forge-walk.ts';
import { type BrokerHarness, freePort, startBrokerInProcess } from '../support/oauth-harness.ts';
import { type GiteaUser, type RealGitea, SEED, startRealGitea } from '../support/real-gitea.ts';
import { selfSignedCert, startHttpsServer } from '../support/tls.ts';
import { UserAgent } from '../support/user-agent.ts';
import { waitFor } from '../support/wait.ts';

type AnyProvider = ChromiumOAuthProvider<unknown, { access_token: string; refresh_token?: string }, unknown>;
type ToolClient = {
  callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
  listTools(): Promise<{ tools: { name: string }[] }>;
  close(): Promise<void>;
};
type Connected = { client: ToolClient; provider: AnyProvider; user: GiteaUser; label: string };

/** Gitea access tokens live this long here, so the broker rotates several times within 30 s. */
const GITEA_ACCESS_TTL_S = 10;

let gitea: RealGitea;
let broker: BrokerHarness;
let browser: Browser;
let cimd: Awaited<ReturnType<typeof startHttpsServer>>;
let claudeCodeId = '';
const contexts: BrowserContext[] = [];
const connected: Connected[] = [];

const resultOf = (r: unknown) => {
  const content = (r as { content: { type: string; text: string }[] }).content;
  return (JSON.parse(content[0]?.text ?? '') as { Result: unknown }).Result;
};
const fullNames = (r: unknown) => (resultOf(r) as { full_name: string }[]).map((x) => x.full_name).sort();

let nextPort = 0;
function shapes(clientMetadataUrl: string): Record<string, () => ClientShape> {
  return {
    'Claude.ai': () => ({
      name: 'Claude',
      redirectUrl: 'https://claude.ai/api/mcp/auth_callback',
      metadata: {
        client_name: 'Claude',
        redirect_uris: [
          'https://claude.ai/api/mcp/auth_callback',
          'https://claude.com/api/mcp/auth_callback',
        ],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        scope: 'claudeai',
      },
    }),
    'Claude Code': () => ({
      name: 'Claude Code',
      redirectUrl: `http://localhost:${nextPort++}/callback`,
      metadata: {
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback'],
        token_endpoint_auth_method: 'none',
      },
      clientMetadataUrl,
    }),
    Cursor: () => ({
      name: 'Cursor',
      redirectUrl: 'cursor://anysphere.cursor-mcp/oauth/callback',
      metadata: {
        client_name: 'Cursor',
        redirect_uris: ['cursor://anysphere.cursor-mcp/oauth/callback'],
        token_endpoint_auth_method: 'none',
      },
    }),
    'VS Code': () => ({
      name: 'Visual Studio Code',
      redirectUrl: `http://127.0.0.1:${nextPort++}/`,
      metadata: {
        client_name: 'Visual Studio Code',
        redirect_uris: [
          'https://vscode.dev/redirect',
          'https://insiders.vscode.dev/redirect',
          'http://127.0.0.1/',
          'http://127.0.0.1:33418/',
        ],
        token_endpoint_auth_method: 'none',
      },
    }),
  };
}

/** A fresh browser profile whose every request outside the broker and Gitea lands on a blank page. */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.route(
    (u) => !u.href.startsWith(broker.url) && !u.href.startsWith(gitea.url),
    (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<p>the client got the redirect</p>' }),
  );
  contexts.push(context);
  return context;
}

function provider(shape: ClientShape, user: GiteaUser): AnyProvider {
  return new ChromiumOAuthProvider({
    shape,
    who: { login: user.login, password: user.password },
    brokerUrl: broker.url,
    context: newContext,
  });
}

async function connectV1(shape: ClientShape, user: GiteaUser): Promise<Connected> {
  const p = provider(shape, user);
  const v1 = p as unknown as ChromiumOAuthProvider<
    OAuthClientInformationMixed,
    OAuthTokens,
    OAuthDiscoveryState
  >;
  const mcp = new URL(`${broker.url}/mcp`);
  const first = new StreamableHTTPClientTransport(mcp, { authProvider: v1 });
  await assert.rejects(new Client({ name: shape.name, version: '1' }).connect(first), UnauthorizedError);
  assert.equal(p.callback?.searchParams.get('iss'), broker.url, 'RFC 9207 iss');
  await first.finishAuth(p.code());
  const client = new Client({ name: shape.name, version: '1' });
  await client.connect(new StreamableHTTPClientTransport(mcp, { authProvider: v1 }));
  return { client, provider: p, user, label: `${shape.name} v1` };
}

async function connectV2(shape: ClientShape, user: GiteaUser): Promise<Connected> {
  const p = provider(shape, user);
  const v2 = p as unknown as ChromiumOAuthProvider<
    StoredOAuthClientInformation,
    StoredOAuthTokens,
    DiscoveryV2
  >;
  const mcp = new URL(`${broker.url}/mcp`);
  assert.equal(await authV2(v2, { serverUrl: mcp }), 'REDIRECT');
  const iss = p.callback?.searchParams.get('iss') ?? undefined;
  assert.equal(iss, broker.url, 'RFC 9207 iss');
  assert.equal(await authV2(v2, { serverUrl: mcp, authorizationCode: p.code(), iss }), 'AUTHORIZED');
  const client = new ClientV2(
    { name: shape.name, version: '2' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(new TransportV2(mcp, { authProvider: v2 }));
  return { client, provider: p, user, label: `${shape.name} v2` };
}

/** The user's Gitea repositories as Gitea's API lists them for that user. */
async function giteaRepos(user: GiteaUser): Promise<string[]> {
  const r = await gitea.api('GET', '/user/repos?page=1&limit=100', { as: user });
  assert.equal(r.status, 200);
  return (r.body as { full_name: string }[]).map((x) => x.full_name).sort();
}

/** The forgejo-mcp-broker entries on the user's "Authorized OAuth2 Applications" settings page. */
async function authorizedApps(user: GiteaUser): Promise<number> {
  const ua = new UserAgent();
  await walkForge(ua, `${gitea.url}/user/login`, user, () => false).catch(() => undefined);
  const page = await ua.get(`${gitea.url}/user/settings/applications`);
  assert.equal(page.status, 200);
  return (
    page.body.match(new RegExp(`/user/settings/applications/oauth2/${gitea.app.id}/revoke/`, 'g'))?.length ??
    0
  );
}

before(async () => {
  const tls = selfSignedCert();
  cimd = await startHttpsServer(tls, {
    '/oauth/claude-code-client-metadata': () => ({
      body: JSON.stringify({
        client_id: claudeCodeId,
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    }),
  });
  claudeCodeId = `${cimd.origin}/oauth/claude-code-client-metadata`;
  const port = await freePort();
  gitea = await startRealGitea({
    redirectUris: [`http://127.0.0.1:${port}/oauth/callback`],
    accessTokenTtlSeconds: GITEA_ACCESS_TTL_S,
  });
  broker = await startBrokerInProcess({
    port,
    forgejoUrl: gitea.url,
    env: {
      FORGEJO_CLIENT_ID: gitea.app.clientId,
      FORGEJO_CLIENT_SECRET: gitea.app.clientSecret,
      FORGEJO_REFRESH_MARGIN: '5s',
      BROKER_CIMD_ALLOW_PRIVATE_HOSTS: 'localhost',
    },
    cimdExtraCa: [tls.cert],
  });
  browser = await launchChromium();
  nextPort = 40_000 + Math.floor(Math.random() * 20_000);
});

after(async () => {
  for (const c of connected) await c.client.close().catch(() => {});
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await broker?.close();
  await gitea?.close();
  await cimd?.close();
});

describe(`the broker on a real Gitea, with the forgejo-mcp stand-in as child (real forgejo-mcp unavailable)`, () => {
  it('sign-in through Gitea’s real login form and authorize page in Chromium: Claude.ai, Claude Code, Cursor, VS Code × SDK v1, v2', async () => {
    const make = shapes(claudeCodeId);
    const plan: [string, 'v1' | 'v2', GiteaUser][] = [
      ['Claude.ai', 'v1', gitea.alice],
      ['Claude.ai', 'v2', gitea.bob],
      ['Claude Code', 'v1', gitea.bob],
      ['Claude Code', 'v2', gitea.alice],
      ['Cursor', 'v1', gitea.alice],
      ['Cursor', 'v2', gitea.bob],
      ['VS Code', 'v1', gitea.bob],
      ['VS Code', 'v2', gitea.alice],
    ];
    const signedInBefore = new Set<string>();
    for (const [shapeName, sdk, user] of plan) {
      const shape = (make[shapeName] as () => ClientShape)();
      const c = sdk === 'v1' ? await connectV1(shape, user) : await connectV2(shape, user);
      connected.push(c);
      // Gitea's authorize page only the first time a user authorizes the broker (confidential app
      // with an existing grant: no second consent); the broker's own consent page every time.
      const expected = signedInBefore.has(user.login)
        ? ['broker consent', 'forge login']
        : ['broker consent', 'forge login', 'forge authorize'];
      assert.deepEqual(c.provider.steps, expected, `${c.label} (${user.login})`);
      signedInBefore.add(user.login);
      if (shape.clientMetadataUrl)
        assert.equal((c.provider.info as { client_id?: string }).client_id, shape.clientMetadataUrl);
      else assert.match(String((c.provider.info as { client_id?: string }).client_id), /./);
      const me = resultOf(await c.client.callTool({ name: 'get_my_user_info', arguments: {} })) as {
        login: string;
        id: number;
      };
      assert.equal(me.login, user.login, c.label);
      assert.equal(me.id, user.id, c.label);
    }
    assert.equal(connected.length, 8);
  });

  it('each child answers with what Gitea’s API returns for that user; alice cannot see bob’s private repository', async () => {
    const alice = connected.find((c) => c.user.login === 'alice') as Connected;
    const bob = connected.find((c) => c.user.login === 'bob') as Connected;
    const aliceRepos: string[] = fullNames(
      await alice.client.callTool({ name: 'list_my_repos', arguments: {} }),
    );
    const bobRepos: string[] = fullNames(await bob.client.callTool({ name: 'list_my_repos', arguments: {} }));
    assert.deepEqual(aliceRepos, await giteaRepos(gitea.alice));
    assert.deepEqual(bobRepos, await giteaRepos(gitea.bob));
    assert.deepEqual(aliceRepos.join(), [...SEED.aliceRepos].sort().join());
    assert.ok(bobRepos.includes(SEED.bobPrivate));
    assert.ok(!aliceRepos.includes(SEED.bobPrivate));

    const [owner, repo] = SEED.bobPrivate.split('/') as [string, string];
    const bobIssues = resultOf(
      await bob.client.callTool({ name: 'list_repo_issues', arguments: { owner, repo, state: 'all' } }),
    ) as { title: string }[];
    const api = await gitea.api('GET', `/repos/${SEED.bobPrivate}/issues?state=all&type=issues`, {
      as: gitea.bob,
    });
    assert.deepEqual(
      bobIssues.map((i) => i.title),
      (api.body as { title: string }[]).map((i) => i.title),
    );
    assert.deepEqual(
      bobIssues.map((i) => i.title),
      ['Only bob sees this'],
    );
    // alice through the broker: Gitea answers 404 for a private repository she cannot see.
    await assert.rejects(
      alice.client.callTool({ name: 'list_repo_issues', arguments: { owner, repo } }),
      /404/,
    );
    const notes = resultOf(
      await alice.client.callTool({
        name: 'list_repo_issues',
        arguments: { owner: 'alice', repo: 'alice-notes', state: 'all' },
      }),
    ) as { title: string; pull_request?: unknown }[];
    const notesApi = await gitea.api('GET', '/repos/alice/alice-notes/issues?state=all&limit=20', {
      as: gitea.alice,
    });
    assert.deepEqual(
      notes.map((i) => i.title),
      (notesApi.body as { title: string }[]).map((i) => i.title),
    );
    assert.ok(
      notes.some((i) => i.pull_request),
      'the seeded pull request is listed with the issues',
    );
  });

  it('rotation with Gitea’s single-use refresh tokens: 30 s of calls from several grants, zero errors, one Gitea credential per user', async (t) => {
    const mine = connected.filter((c) => c.user.login === 'alice');
    assert.equal(mine.length, 4, 'alice holds four broker grants');
    const tokens = new Set<string>();
    const grants = new Set<number>();
    const pids = new Set<number>();
    const sample = async () => {
      const cred = await broker.broker.store.getCredential(gitea.alice.id);
      if (cred) {
        tokens.add(cred.accessToken);
        grants.add(
          (
            JSON.parse(Buffer.from(cred.accessToken.split('.')[1] ?? '', 'base64url').toString()) as {
              gnt: number;
            }
          ).gnt,
        );
      }
      for (const c of broker.broker.supervisor.children()) if (c.name === 'alice') pids.add(c.pid);
    };
    const errors: string[] = [];
    let calls = 0;
    const until = Date.now() + 30_000;
    const sampler = setInterval(() => void sample(), 200);
    await Promise.all(
      mine.map(async (c) => {
        while (Date.now() < until) {
          try {
            const names = fullNames(await c.client.callTool({ name: 'list_my_repos', arguments: {} }));
            calls++;
            if (names.length !== SEED.aliceRepos.length) errors.push(`${c.label}: ${names}`);
          } catch (e) {
            errors.push(`${c.label}: ${(e as Error).message}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }),
    );
    clearInterval(sampler);
    await sample();
    t.diagnostic(
      `${calls} calls, ${errors.length} errors, ${tokens.size} Gitea access tokens, ${pids.size} children, ${grants.size} Gitea grant(s)`,
    );
    assert.deepEqual(errors, [], `${calls} calls`);
    assert.ok(calls > 40, `${calls} calls`);
    assert.ok(tokens.size >= 3, `${tokens.size} Gitea access tokens in 30 s (several rotations)`);
    assert.ok(pids.size >= 3, `${pids.size} children in turn`);
    assert.equal(grants.size, 1, 'every token came from the one Gitea grant of the broker app');
    assert.equal(await authorizedApps(gitea.alice), 1, 'Gitea shows the broker once in alice’s settings');
  });

  it('bob revokes the broker in Gitea’s settings page: the broker notices, revokes his grants, the client is asked to sign in again once, nothing loops', async (t) => {
    const bobs = connected.filter((c) => c.user.login === 'bob');
    const last = bobs.at(-1) as Connected;
    const page = last.provider.page;
    assert.ok(page, 'bob’s browser tab, signed in to Gitea');
    await page.goto(`${gitea.url}/user/settings/applications`);
    const revoke = page.locator(`[data-url*="/user/settings/applications/oauth2/${gitea.app.id}/revoke/"]`);
    assert.equal(await revoke.count(), 1, 'the broker is listed once among bob’s authorized applications');
    const target = (await revoke.getAttribute('data-url')) as string;
    // What the button's confirmation does (Gitea's front end is not compiled into this build).
    const status = await page.evaluate(async (u) => (await fetch(u, { method: 'POST' })).status, target);
    assert.ok(status < 400, `revoke answered ${status}`);
    await page.reload();
    assert.equal(await revoke.count(), 0, 'the broker is gone from bob’s settings');

    for (const c of bobs) c.provider.refuse = true;
    const before = bobs.map((c) => c.provider.redirects);
    const failed = new Set<string>();
    let toolErrors = 0;
    const seenErrors = new Set<string>();
    const revokedAt = Date.now();
    const deadline = Date.now() + 3 * GITEA_ACCESS_TTL_S * 1000;
    while (failed.size < bobs.length && Date.now() < deadline) {
      for (const c of bobs) {
        if (failed.has(c.label)) continue;
        // Until the broker notices (its next refresh of bob's Gitea token), the child's calls fail
        // with Gitea's 401 as tool errors; then the broker refuses the client, whose refresh is
        // refused too, and the SDK sends the user to sign in again (which this user declines).
        await c.client.callTool({ name: 'list_my_repos', arguments: {} }).catch((e: Error) => {
          if (/declined to sign in again/.test(e.message)) failed.add(c.label);
          else {
            toolErrors++;
            seenErrors.add(`${c.label}: ${e.message.slice(0, 160)}`);
          }
        });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(
      failed.size,
      bobs.length,
      `every bob client was asked to sign in again: ${[...failed]}; errors: ${[...seenErrors].join('\n')}`,
    );
    t.diagnostic(`noticed within ${Date.now() - revokedAt} ms; ${toolErrors} tool errors before that`);
    bobs.forEach((c, i) => {
      assert.equal(
        c.provider.redirects - (before[i] as number),
        1,
        `${c.label} was sent to sign in exactly once`,
      );
    });
    assert.equal(
      await broker.broker.store.getCredential(gitea.bob.id),
      undefined,
      'bob’s Gitea credential is gone',
    );
    for (const c of bobs) {
      const v = await broker.broker.auth.verifyBearer(`Bearer ${c.provider.stored?.access_token}`);
      assert.equal(v.ok, false, `${c.label}'s broker token is revoked`);
    }
    const deadLines = () =>
      broker.logs
        .lines()
        .filter(
          (l) =>
            l['msg'] === 'Forgejo credential is dead; revoking the user’s grants' &&
            l['userId'] === gitea.bob.id,
        ).length;
    assert.equal(deadLines(), 1);
    await waitFor(() => !broker.broker.supervisor.children().some((c) => c.name === 'bob'), {
      what: 'bob’s child to stop',
      timeoutMs: 10_000,
    });
    // Nothing loops: another 2 s later nobody has refreshed or spawned for bob again.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(deadLines(), 1);
    assert.ok(!broker.broker.supervisor.children().some((c) => c.name === 'bob'));
    // alice is untouched.
    const alice = connected.find((c) => c.user.login === 'alice') as Connected;
    assert.deepEqual(
      fullNames(await alice.client.callTool({ name: 'list_my_repos', arguments: {} })),
      [...SEED.aliceRepos].sort(),
    );
  });
});
