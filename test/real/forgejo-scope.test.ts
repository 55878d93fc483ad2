// FORGEJO_SCOPE against a real Gitea (Forgejo cannot be built here): with the default scope the
// user's token may do what every forgejo-mcp tool needs (issues, repositories under /user, org
// labels); a read-only installation (BROKER_TOOLS=read with read: scopes) also gets a token that
// Gitea itself refuses for writes, while the broker lists only read tools and refuses write calls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { walkForge } from '../support/forge-walk.ts';
import {
  type BrokerHarness,
  freePort,
  pkce,
  registerClient,
  startBrokerInProcess,
} from '../support/oauth-harness.ts';
import { authorizeUrl, tokenRequest } from '../support/oauth-stack.ts';
import { type GiteaUser, type RealGitea, startRealGitea } from '../support/real-gitea.ts';
import { UserAgent } from '../support/user-agent.ts';

const READ_ONLY_SCOPE = 'read:repository read:issue read:notification read:organization read:user read:misc';
const REDIRECT = 'http://127.0.0.1:47399/cb';

let gitea: RealGitea;
let full: BrokerHarness;
let readOnly: BrokerHarness;

before(async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  gitea = await startRealGitea({
    redirectUris: [`http://127.0.0.1:${p1}/oauth/callback`, `http://127.0.0.1:${p2}/oauth/callback`],
  });
  const env = { FORGEJO_CLIENT_ID: gitea.app.clientId, FORGEJO_CLIENT_SECRET: gitea.app.clientSecret };
  full = await startBrokerInProcess({ port: p1, forgejoUrl: gitea.url, env });
  readOnly = await startBrokerInProcess({
    port: p2,
    forgejoUrl: gitea.url,
    env: { ...env, BROKER_TOOLS: 'read', FORGEJO_SCOPE: READ_ONLY_SCOPE },
  });
});
after(async () => {
  await full?.close();
  await readOnly?.close();
  await gitea?.close();
});

/** Signs `user` in through the broker and Gitea's real login and authorize pages; the broker token. */
async function signIn(b: BrokerHarness, user: GiteaUser): Promise<string> {
  const c = await registerClient(b.url, {
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
  });
  const { verifier, challenge } = pkce();
  const walk = await walkForge(
    new UserAgent(),
    authorizeUrl(b.url, { clientId: c.client_id, redirectUri: REDIRECT, challenge }),
    user,
    (u) => u.href.startsWith(`${REDIRECT}?`),
  );
  const t = await tokenRequest(b.url, {
    grant_type: 'authorization_code',
    code: walk.location.searchParams.get('code') as string,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: c.client_id,
  });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  return t.body['access_token'] as string;
}

async function forgejoToken(b: BrokerHarness, user: GiteaUser): Promise<string> {
  const cred = await b.broker.store.getCredential(user.id);
  assert.ok(cred, `${user.login} has a stored credential`);
  return cred.accessToken;
}

describe('the Forgejo scope the broker asks for, on a real Gitea', () => {
  it('the default scope lets the token do what the tools need: issues, a repository under /user, org labels', async () => {
    await signIn(full, gitea.alice);
    const token = await forgejoToken(full, gitea.alice);
    const issue = await gitea.api('POST', '/repos/alice/alice-notes/issues', {
      token,
      body: { title: 'scoped' },
    });
    assert.equal(issue.status, 201, JSON.stringify(issue.body));
    const repo = await gitea.api('POST', '/user/repos', { token, body: { name: 'made-by-scope-test' } });
    assert.equal(repo.status, 201, JSON.stringify(repo.body));
    const label = await gitea.api('POST', '/orgs/wonderland/labels', {
      token,
      body: { name: 'scoped', color: '#00aabb' },
    });
    assert.equal(label.status, 201, JSON.stringify(label.body));
  });

  it('a read-only installation: Gitea refuses the token for writes, and the broker offers only reads', async () => {
    const brokerToken = await signIn(readOnly, gitea.bob);
    const token = await forgejoToken(readOnly, gitea.bob);
    const read = await gitea.api('GET', '/repos/bob/bob-tools/issues', { token });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const write = await gitea.api('POST', '/repos/bob/bob-tools/issues', { token, body: { title: 'no' } });
    assert.equal(write.status, 403, JSON.stringify(write.body));
    assert.match(JSON.stringify(write.body), /token does not have at least one of required scope/);

    const client = new Client({ name: 'read-only install', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${readOnly.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${brokerToken}` } },
      }),
    );
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [
      'get_forgejo_mcp_server_version',
      'get_my_user_info',
      'list_my_repos',
      'list_repo_issues',
    ]);
    await assert.rejects(
      client.callTool({ name: 'create_issue', arguments: { owner: 'bob', repo: 'bob-tools', title: 'no' } }),
      /tool 'create_issue' not found/,
    );
    const repos = await client.callTool({ name: 'list_my_repos', arguments: {} });
    assert.notEqual((repos as { isError?: boolean }).isError, true);
    await client.close();
  });
});
