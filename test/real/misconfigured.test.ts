// A broker set up wrongly against a real Gitea: a wrong client secret, a redirect URI the Gitea app
// does not list, and Gitea gone before the broker exchanges the code. Each gives the user a page
// that names the cause; where the broker can see the cause, the operator gets a log line naming it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { walkForge } from '../support/forge-walk.ts';
import {
  type BrokerHarness,
  freePort,
  pkce,
  registerClient,
  startBrokerInProcess,
} from '../support/oauth-harness.ts';
import { authorizeUrl } from '../support/oauth-stack.ts';
import { type RealGitea, startRealGitea } from '../support/real-gitea.ts';
import { decodeEntities, UserAgent } from '../support/user-agent.ts';

const CLIENT_CB = 'http://127.0.0.1:9/client-callback';

let gitea: RealGitea;
/** One broker port per case, each registered in Gitea's app (a closed broker's port may linger). */
let ports: number[] = [];
const callbackOf = (port: number) => `http://127.0.0.1:${port}/oauth/callback`;
const brokers: BrokerHarness[] = [];

before(async () => {
  ports = [await freePort(), await freePort(), await freePort()];
  gitea = await startRealGitea({ redirectUris: ports.map(callbackOf) });
});
after(async () => {
  for (const b of brokers) await b.close();
  await gitea?.close();
});

/** A broker on the case's port with these settings, and a public client of it. */
async function brokerWith(
  port: number,
  env: Record<string, string>,
): Promise<{ b: BrokerHarness; clientId: string }> {
  const b = await startBrokerInProcess({
    port,
    forgejoUrl: gitea.url,
    env: { FORGEJO_CLIENT_ID: gitea.app.clientId, FORGEJO_CLIENT_SECRET: gitea.app.clientSecret, ...env },
  });
  brokers.push(b);
  const c = await registerClient(b.url, { redirect_uris: [CLIENT_CB], token_endpoint_auth_method: 'none' });
  return { b, clientId: c.client_id };
}

async function stop(b: BrokerHarness): Promise<void> {
  await b.close();
  brokers.splice(brokers.indexOf(b), 1);
}

const start = (b: BrokerHarness, clientId: string) =>
  authorizeUrl(b.url, { clientId, redirectUri: CLIENT_CB, challenge: pkce().challenge, state: 'mis-1' });

describe('a misconfigured broker on a real Gitea', () => {
  it('a wrong client secret: the user sees that Forgejo refused this server’s credentials; the operator’s log names it', async () => {
    const { b, clientId } = await brokerWith(ports[0] as number, {
      FORGEJO_CLIENT_SECRET: 'gto_not-the-secret-0123456789abcdef',
    });
    const ua = new UserAgent();
    // Gitea checks the secret only at the token endpoint: the browser gets through login and consent.
    const stopAt = (u: URL) => u.href.startsWith(`${CLIENT_CB}?`);
    const page = await ua.get(start(b, clientId), { stop: stopAt });
    let p = await ua.submit(page, 'consent-form', { button: 'consent-approve', stop: stopAt });
    p = await ua.submit(p, (f) => f.action.includes('/user/login'), {
      fields: { user_name: gitea.alice.login, password: gitea.alice.password },
      stop: stopAt,
    });
    if (p.body.includes('/login/oauth/grant'))
      p = await ua.submit(p, (f) => f.action.endsWith('/login/oauth/grant'), {
        button: (x) => x.name === 'granted' && x.value === 'true',
        stop: stopAt,
      });
    assert.equal(p.status, 502, p.body.slice(0, 300));
    assert.match(
      decodeEntities(p.body),
      /Forgejo refused this server's own credentials \(unauthorized_client: invalid client secret\)\. The operator must correct FORGEJO_CLIENT_ID or FORGEJO_CLIENT_SECRET/,
    );
    const line = b.logs.lines().find((l) => l['msg'] === 'Forgejo login failed');
    assert.equal(line?.['level'], 'warn');
    assert.match(
      String(line?.['cause']),
      /client credentials \(unauthorized_client: invalid client secret\)/,
    );
    assert.ok(!b.logs.text().includes('gto_not-the-secret'), 'the wrong secret is not logged either');
    await stop(b);
  });

  it('a redirect URI the Gitea app does not list: Gitea’s own page names it, and no code reaches anyone', async () => {
    const { b, clientId } = await brokerWith(ports[1] as number, {});
    await gitea.setRedirectUris(ports.filter((p) => p !== ports[1]).map(callbackOf));
    try {
      const ua = new UserAgent();
      const page = await ua.get(start(b, clientId));
      const p = await ua.submit(page, 'consent-form', { button: 'consent-approve' });
      const signedIn = await ua.submit(p, (f) => f.action.includes('/user/login'), {
        fields: { user_name: gitea.alice.login, password: gitea.alice.password },
      });
      assert.equal(signedIn.status, 400);
      assert.ok(signedIn.url.startsWith(`${gitea.url}/login/oauth/authorize?`), signedIn.url);
      assert.match(signedIn.body, /Unregistered Redirect URI/);
      assert.ok(!b.logs.lines().some((l) => l['msg'] === 'authorization granted'));
    } finally {
      await gitea.setRedirectUris(ports.map(callbackOf));
      await stop(b);
    }
  });

  it('Gitea unreachable when the broker exchanges the code: the user sees that Forgejo could not be reached; the operator’s log names it', async () => {
    const { b, clientId } = await brokerWith(ports[2] as number, {});
    const ua = new UserAgent();
    const callback = `${b.url}/oauth/callback?`;
    // The browser gets Gitea's code; then Gitea goes away before the broker can exchange it.
    const walk = await walkForge(ua, start(b, clientId), gitea.alice, (u) => u.href.startsWith(callback));
    await gitea.close();
    const page = await ua.get(walk.location, { stop: (u) => u.href.startsWith(`${CLIENT_CB}?`) });
    assert.equal(page.status, 502);
    assert.match(
      decodeEntities(page.body),
      new RegExp(`could not reach Forgejo at ${gitea.url.replace(/[.]/g, '\\.')} to complete your sign-in`),
    );
    const line = b.logs.lines().find((l) => l['msg'] === 'Forgejo login failed');
    assert.match(String(line?.['cause']), /is unreachable \(ECONNREFUSED\)/);
    await stop(b);
  });
});
