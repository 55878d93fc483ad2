// The real-server tests' Gitea (scripts/real-gitea.ts): admin, alice and bob; alice's public and
// private repositories, an organisation with a team and a repository, issues and a pull request;
// bob's public repository and a private one with an issue only he can see.
import {
  type RealGitea as Gitea,
  type GiteaUser,
  type RealGiteaOptions,
  seedWorld,
  startRealGitea as start,
} from '../../scripts/real-gitea.ts';

export { type ApiResult, type GiteaUser, giteaBuild } from '../../scripts/real-gitea.ts';

export type RealGitea = Gitea & { alice: GiteaUser; bob: GiteaUser };

/** What the seed creates, for tests to compare against. */
export const SEED = {
  aliceRepos: ['alice/alice-notes', 'alice/alice-site', 'wonderland/tea-recipes'],
  bobRepos: ['bob/bob-secrets', 'bob/bob-tools'],
  bobPrivate: 'bob/bob-secrets',
  org: 'wonderland',
  team: 'tea-party',
} as const;

export async function startRealGitea(opts: Omit<RealGiteaOptions, 'users' | 'seed'>): Promise<RealGitea> {
  const g = await start({
    ...opts,
    users: [
      { login: 'alice', password: 'alice-Pw-2026!' },
      { login: 'bob', password: 'bob-Pw-2026!' },
    ],
    seed: (api, users) =>
      seedWorld(api, users, {
        orgs: [{ name: SEED.org, by: 'alice', teams: [{ name: SEED.team, members: ['alice'] }] }],
        repos: [
          {
            owner: 'alice',
            name: 'alice-notes',
            issues: [
              { title: 'First note', body: 'First note.' },
              { title: 'Second note', body: 'Second note.' },
            ],
          },
          { owner: 'alice', name: 'alice-site', private: true },
          { owner: SEED.org, name: 'tea-recipes' },
          { owner: 'bob', name: 'bob-tools' },
          { owner: 'bob', name: 'bob-secrets', private: true, issues: [{ title: 'Only bob sees this' }] },
        ],
        pulls: [
          {
            owner: 'alice',
            repo: 'alice-notes',
            by: 'alice',
            branch: 'idea',
            file: 'notes/idea.md',
            title: 'Add an idea',
          },
        ],
      }),
  });
  return { ...g, alice: g.users['alice'] as GiteaUser, bob: g.users['bob'] as GiteaUser };
}
