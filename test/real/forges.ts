// The two Forgejo sides the differential test drives with the same requests: the emulator and a
// real Gitea, each with alice (in an organisation with a team), the broker's confidential app and a
// second confidential app registered for the same redirect URIs.
import { startForgejoEmulator } from '../../emulator/forgejo/emulator.ts';
import { startRealGitea } from '../support/real-gitea.ts';
import type { Login } from '../support/scripted-oauth.ts';
import type { UserAgent } from '../support/user-agent.ts';

export const REDIRECTS = ['http://127.0.0.1:9/cb-one', 'http://127.0.0.1:9/cb-two'] as const;

export type ForgeApp = { clientId: string; clientSecret: string };

export type Forge = {
  name: 'emulator' | 'gitea';
  url: string;
  who: Login;
  userId: number;
  app: ForgeApp;
  otherApp: ForgeApp;
  /** The user revokes `app` in their settings (the UA is the user's signed-in browser). */
  revoke(ua: UserAgent, grantId: number): Promise<void>;
  close(): Promise<void>;
};

export async function emulatorForge(): Promise<Forge> {
  const app = { clientId: 'diff-app', clientSecret: 'gto_diff-app-secret-0123456789' };
  const otherApp = { clientId: 'diff-other', clientSecret: 'gto_diff-other-secret-0123456789' };
  const who = { login: 'alice', password: 'alice-pw' };
  const emulator = await startForgejoEmulator({
    users: [
      {
        id: 1001,
        ...who,
        email: 'alice@example.com',
        orgs: [{ name: 'wonderland', teams: ['Owners', 'tea-party'] }],
      },
    ],
    apps: [
      { ...app, name: 'diff app', redirectUris: [...REDIRECTS] },
      { ...otherApp, name: 'diff other', redirectUris: [...REDIRECTS] },
    ],
  });
  return {
    name: 'emulator',
    url: emulator.url,
    who,
    userId: 1001,
    app,
    otherApp,
    revoke: async () => emulator.revokeGrant('alice', app.clientId),
    close: () => emulator.close(),
  };
}

export async function giteaForge(): Promise<Forge> {
  const g = await startRealGitea({ redirectUris: [...REDIRECTS] });
  const other = await g.api('POST', '/user/applications/oauth2', {
    as: g.admin,
    body: { name: 'diff other', confidential_client: true, redirect_uris: [...REDIRECTS] },
  });
  if (other.status !== 201) throw new Error(`second app: ${other.status} ${JSON.stringify(other.body)}`);
  const o = other.body as { client_id: string; client_secret: string };
  return {
    name: 'gitea',
    url: g.url,
    who: { login: g.alice.login, password: g.alice.password },
    userId: g.alice.id,
    app: { clientId: g.app.clientId, clientSecret: g.app.clientSecret },
    otherApp: { clientId: o.client_id, clientSecret: o.client_secret },
    // What the Revoke button of /user/settings/applications posts (its confirmation modal is
    // front-end code, absent from a build without the compiled front end).
    revoke: async (ua, grantId) => {
      const res = await ua.fetch(`${g.url}/user/settings/applications/oauth2/${g.app.id}/revoke/${grantId}`, {
        method: 'POST',
        headers: { origin: g.url },
      });
      await res.body?.cancel();
      if (res.status >= 400) throw new Error(`revoke: ${res.status}`);
    },
    close: () => g.close(),
  };
}
