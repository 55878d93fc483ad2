// The emulator's in-memory world: users, OAuth apps, grants, codes, browser sessions, repos, issues.
import { randomBytes } from 'node:crypto';
import type { EmulatorApp, EmulatorOptions, EmulatorUser } from './emulator.ts';
import { newSigningKey, type SigningKey } from './jwt.ts';

export type User = Required<Pick<EmulatorUser, 'id' | 'login' | 'password'>> & {
  fullName: string;
  email: string;
  isAdmin: boolean;
  orgs: { name: string; teams: string[] }[];
  created: number;
};

export type Issue = {
  id: number;
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  authorId: number;
  created: number;
  updated: number;
  closed: number | undefined;
};

export type Repo = {
  id: number;
  ownerId: number;
  name: string;
  description: string;
  private: boolean;
  issues: Issue[];
  created: number;
};

/** One grant per (user, app): Forgejo's oauth2_grant row with its refresh counter. */
export type Grant = {
  id: number;
  userId: number;
  clientId: string;
  scope: string;
  counter: number;
  nonce: string;
};

export type AuthCode = {
  grantId: number;
  redirectUri: string;
  challenge: string;
  challengeMethod: string;
};

/** What the consent form must echo back (Forgejo keeps it in the session). */
export type PendingConsent = {
  clientId: string;
  redirectUri: string;
  state: string;
  challenge: string;
  challengeMethod: string;
};

export type Session = { id: string; csrf: string; userId?: number; pending?: PendingConsent };

export type World = {
  url: string;
  version: string;
  accessTtl: number;
  refreshTtl: number;
  now: () => number;
  key: SigningKey;
  users: User[];
  apps: Map<string, EmulatorApp>;
  grants: Map<number, Grant>;
  codes: Map<string, AuthCode>;
  sessions: Map<string, Session>;
  repos: Repo[];
  nextId: { grant: number; repo: number; issue: number };
};

/** Sessions and unused codes kept at most; the oldest go first (a Map keeps insertion order). */
export const MAX_ENTRIES = 10_000;

export function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= MAX_ENTRIES) break;
    map.delete(oldest);
  }
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

export function createWorld(options: EmulatorOptions, now: () => number): World {
  const t = now();
  const world: World = {
    url: '',
    version: options.version ?? '16.0.1+gitea-1.22.0',
    accessTtl: options.accessTokenTtlSeconds ?? 3600,
    refreshTtl: options.refreshTokenTtlSeconds ?? 730 * 3600,
    now,
    key: newSigningKey(),
    users: [],
    apps: new Map(),
    grants: new Map(),
    codes: new Map(),
    sessions: new Map(),
    repos: [],
    nextId: { grant: 1, repo: 1, issue: 1 },
  };
  for (const app of options.apps) {
    if (world.apps.has(app.clientId)) throw new Error(`duplicate OAuth app client id ${app.clientId}`);
    world.apps.set(app.clientId, { ...app, redirectUris: [...app.redirectUris] });
  }
  for (const u of options.users) {
    if (world.users.some((o) => o.id === u.id || o.login.toLowerCase() === u.login.toLowerCase())) {
      throw new Error(`duplicate user ${u.login} / id ${u.id}`);
    }
    world.users.push({
      id: u.id,
      login: u.login,
      password: u.password,
      fullName: u.fullName ?? '',
      email: u.email ?? `${u.login.toLowerCase()}@example.com`,
      isAdmin: u.isAdmin ?? false,
      orgs: (u.orgs ?? []).map((o) => ({ name: o.name, teams: o.teams ?? [] })),
      created: t,
    });
  }
  for (const u of options.users) {
    for (const r of u.repos ?? []) {
      const repo: Repo = {
        id: world.nextId.repo++,
        ownerId: u.id,
        name: r.name,
        description: r.description ?? '',
        private: r.private ?? false,
        issues: [],
        created: t,
      };
      for (const i of r.issues ?? []) addIssue(world, repo, u.id, i.title, i.body ?? '', i.state ?? 'open');
      world.repos.push(repo);
    }
  }
  return world;
}

export function addIssue(
  world: World,
  repo: Repo,
  authorId: number,
  title: string,
  body: string,
  state: 'open' | 'closed',
): Issue {
  const t = world.now();
  const issue: Issue = {
    id: world.nextId.issue++,
    number: repo.issues.length + 1,
    title,
    body,
    state,
    authorId,
    created: t,
    updated: t,
    closed: state === 'closed' ? t : undefined,
  };
  repo.issues.push(issue);
  return issue;
}

export const userById = (world: World, id: number): User | undefined => world.users.find((u) => u.id === id);

export const userByLogin = (world: World, login: string): User | undefined =>
  world.users.find((u) => u.login.toLowerCase() === login.toLowerCase());

export function grantOf(world: World, userId: number, clientId: string): Grant | undefined {
  for (const g of world.grants.values()) if (g.userId === userId && g.clientId === clientId) return g;
  return undefined;
}

/** The user revokes the app in their settings: the grant row goes, and its codes with it. */
export function deleteGrant(world: World, grantId: number): void {
  world.grants.delete(grantId);
  for (const [code, c] of world.codes) if (c.grantId === grantId) world.codes.delete(code);
}

export const seconds = (ms: number): number => Math.floor(ms / 1000);

/** Forgejo's JSON time format: RFC 3339 in UTC without fractional seconds. */
export const isoTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
