// Seeds for the emulator: `demoSeed` backs `make demo` and the CLI's `--seed demo`; `demoSeedFor`
// is the same world with the broker app's redirect URI changed.
import type { EmulatorOptions } from './emulator.ts';

export const DEMO_CLIENT_ID = 'forgejo-mcp-broker-demo';
export const DEMO_CLIENT_SECRET = 'demo-secret-not-for-production';
/** Not 3000, Forgejo's own default: the demo must also start on a machine that runs a Forgejo. */
export const EMULATOR_DEFAULT_PORT = 8081;
export const DEMO_REDIRECT_URI = 'http://127.0.0.1:8080/oauth/callback';

export type Seed = Pick<EmulatorOptions, 'users' | 'apps'>;

export function demoSeedFor(redirectUri: string): Seed {
  return {
    users: [
      {
        id: 1,
        login: 'alice',
        password: 'alice-password',
        fullName: 'Alice Liddell',
        email: 'alice@example.com',
        orgs: [{ name: 'wonderland', teams: ['Owners', 'tea-party'] }],
        repos: [
          {
            name: 'looking-glass',
            description: 'Notes from the other side of the mirror',
            issues: [
              { title: 'Everything is reversed', body: 'Text reads right to left.' },
              { title: 'Red Queen keeps running', body: 'It takes all the running you can do.' },
              { title: 'Jabberwocky translation', state: 'closed' },
            ],
          },
          {
            name: 'rabbit-hole',
            description: 'Private diary',
            private: true,
            issues: [{ title: 'Falling for a very long time' }],
          },
        ],
      },
      {
        id: 2,
        login: 'bob',
        password: 'bob-password',
        fullName: 'Bob Builder',
        email: 'bob@example.com',
        repos: [
          {
            name: 'toolbox',
            description: 'Can we fix it?',
            issues: [{ title: 'Hammer handle is loose' }, { title: 'Order more nails', body: 'Size 3.' }],
          },
        ],
      },
    ],
    apps: [
      {
        clientId: DEMO_CLIENT_ID,
        clientSecret: DEMO_CLIENT_SECRET,
        name: 'forgejo-mcp-broker (demo)',
        redirectUris: [redirectUri],
      },
    ],
  };
}

export const demoSeed: Seed = demoSeedFor(DEMO_REDIRECT_URI);
