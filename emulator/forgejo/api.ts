// The few /api/v1 routes the broker and forgejo-mcp use, with Forgejo's authentication, scope
// checks (tokenRequiresScopes per route group) and error bodies.
import { type Incoming, json, type Reply } from './http.ts';
import { avatarUrl, basicCredentials, checkAccessToken, headerToken, secretEqual } from './oauth.ts';
import {
  hasScope,
  type ScopeCategory,
  type ScopeLevel,
  type TokenScope,
  tokenScopeOfGrant,
} from './scopes.ts';
import {
  addIssue,
  type Issue,
  isoTime,
  type Repo,
  type User,
  userById,
  userByLogin,
  type World,
} from './state.ts';

type Caller =
  | { kind: 'anonymous' }
  | { kind: 'invalid'; message: string }
  | { kind: 'token'; user: User; scope: TokenScope }
  | { kind: 'password'; user: User };

/** Every /api/v1 request authenticates first; a credential that fails is a 401 on any route. */
function authenticate(world: World, header: string | undefined): Caller {
  const bearer = headerToken(header);
  if (bearer !== undefined) {
    const found = checkAccessToken(world, bearer);
    return found
      ? { kind: 'token', user: found.user, scope: tokenScopeOfGrant(found.grant.scope) }
      : { kind: 'invalid', message: 'user does not exist [uid: 0, name: ]' };
  }
  const basic = basicCredentials(header);
  if (basic === undefined) return { kind: 'anonymous' };
  if (basic === 'malformed') return { kind: 'invalid', message: 'user does not exist [uid: 0, name: ]' };
  // Forgejo's Basic method: the token is the username (empty or x-oauth-basic password) or the
  // password; failing that, the pair is a login and password.
  const [name, password] = basic;
  const usernameIsToken = password === '' || password === 'x-oauth-basic';
  const found = checkAccessToken(world, usernameIsToken ? name : password);
  if (found) return { kind: 'token', user: found.user, scope: tokenScopeOfGrant(found.grant.scope) };
  if (usernameIsToken) return { kind: 'invalid', message: 'user does not exist [uid: 0, name: ]' };
  const user = userByLogin(world, name);
  if (!user) return { kind: 'invalid', message: `user does not exist [uid: 0, name: ${name}]` };
  if (!secretEqual(password, user.password)) {
    return { kind: 'invalid', message: `user's password is invalid [uid: ${user.id}, name: ${user.login}]` };
  }
  return { kind: 'password', user };
}

const apiError = (world: World, status: number, message: string): Reply =>
  json(status, { message, url: `${world.url}/api/swagger` });

const notFound = (world: World): Reply =>
  json(404, { errors: [], message: "The target couldn't be found.", url: `${world.url}/api/swagger` });

/** tokenRequiresScopes: only OAuth/API tokens are limited; the HTTP method picks read or write. */
function scopeProblem(
  world: World,
  caller: Caller,
  method: string,
  category: ScopeCategory,
): Reply | undefined {
  if (caller.kind !== 'token') return undefined;
  const level: ScopeLevel = method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  if (hasScope(caller.scope, level, category)) return undefined;
  return apiError(
    world,
    403,
    `token does not have at least one of required scope(s): [${level}:${category}]`,
  );
}

export function apiRoute(world: World, req: Incoming): Reply {
  const caller = authenticate(world, req.headers.authorization);
  if (caller.kind === 'invalid') return apiError(world, 401, caller.message);
  const login = caller.kind === 'anonymous' ? undefined : caller.user.login;
  const reply = route(world, req, caller);
  return { ...reply, user: login };
}

function route(world: World, req: Incoming, caller: Caller): Reply {
  const path = req.path.replace(/\/+$/, '');
  const m = req.method;
  const signedIn = caller.kind === 'token' || caller.kind === 'password' ? caller.user : undefined;
  const needToken = (): Reply => apiError(world, 401, 'token is required');

  if (path === '/api/v1/version') {
    if (m !== 'GET') return methodNotAllowed();
    return json(200, { version: world.version });
  }
  if (path === '/api/v1/user' || path === '/api/v1/user/repos') {
    if (m !== 'GET') return methodNotAllowed();
    const problem = scopeProblem(world, caller, m, 'user');
    if (problem) return problem;
    if (!signedIn) return needToken();
    if (path === '/api/v1/user') return json(200, userJson(world, signedIn, true));
    const repoProblem = scopeProblem(world, caller, m, 'repository');
    if (repoProblem) return repoProblem;
    const publicOnly = caller.kind === 'token' && caller.scope.publicOnly;
    const mine = world.repos.filter((r) => r.ownerId === signedIn.id && !(publicOnly && r.private));
    return paged(req, mine, (r) => repoJson(world, r, signedIn));
  }
  const repoRoute = /^\/api\/v1\/repos\/([^/]+)\/([^/]+)(\/issues(?:\/([0-9]+))?)?$/.exec(path);
  if (repoRoute) {
    const [, owner = '', name = '', issuesPart, index] = repoRoute;
    const listOrCreate = issuesPart !== undefined && index === undefined;
    if (m !== 'GET' && !(m === 'POST' && listOrCreate)) return methodNotAllowed();
    // Repository routes sit in a group needing the repository scope, issue routes in one needing issue.
    const problem = scopeProblem(world, caller, m, issuesPart === undefined ? 'repository' : 'issue');
    if (problem) return problem;
    const repo = findRepo(world, pathSegment(owner), pathSegment(name));
    if (!repo || (repo.private && repo.ownerId !== signedIn?.id)) return notFound(world);
    if (repo.private && caller.kind === 'token' && caller.scope.publicOnly) {
      return apiError(world, 403, 'token scope is limited to public repos');
    }
    if (issuesPart === undefined) return json(200, repoJson(world, repo, signedIn));
    if (index !== undefined) {
      const issue = repo.issues.find((i) => i.number === Number(index));
      return issue ? json(200, issueJson(world, repo, issue)) : notFound(world);
    }
    if (m === 'GET') return listIssues(world, req, repo);
    if (!signedIn) return needToken();
    return createIssue(world, req, repo, signedIn);
  }
  return notFound(world);
}

function pathSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // malformed escapes name no repository
  }
}

const methodNotAllowed = (): Reply => ({ status: 405, headers: { 'content-type': 'text/plain' }, body: '' });

function findRepo(world: World, owner: string, name: string): Repo | undefined {
  const user = userByLogin(world, owner);
  return user
    ? world.repos.find((r) => r.ownerId === user.id && r.name.toLowerCase() === name.toLowerCase())
    : undefined;
}

/** Forgejo's ListOptions: page from 1, limit defaults to 30 and is capped at 50. */
function paged<T>(req: Incoming, items: T[], view: (item: T) => unknown): Reply {
  const page = Math.max(1, Number.parseInt(req.query.get('page') ?? '', 10) || 1);
  let limit = Number.parseInt(req.query.get('limit') ?? '', 10) || 0;
  if (limit <= 0) limit = 30;
  limit = Math.min(limit, 50);
  const slice = items.slice((page - 1) * limit, page * limit);
  return json(200, slice.map(view), { 'x-total-count': String(items.length) });
}

function listIssues(world: World, req: Incoming, repo: Repo): Reply {
  const state = req.query.get('state') ?? 'open';
  const type = req.query.get('type') ?? '';
  const selected =
    type === 'pulls'
      ? []
      : repo.issues.filter((i) => state === 'all' || i.state === (state === 'closed' ? 'closed' : 'open'));
  const newestFirst = [...selected].sort((a, b) => b.created - a.created || b.number - a.number);
  return paged(req, newestFirst, (i) => issueJson(world, repo, i));
}

function createIssue(world: World, req: Incoming, repo: Repo, author: User): Reply {
  const body = req.json as { title?: unknown; body?: unknown; closed?: unknown } | undefined;
  const title = typeof body?.title === 'string' ? body.title.trim() : '';
  if (title === '') return apiError(world, 422, '[Title]: Required');
  if (title.length > 255) return apiError(world, 422, '[Title]: MaxSize');
  const issue = addIssue(
    world,
    repo,
    author.id,
    title,
    typeof body?.body === 'string' ? body.body : '',
    body?.closed === true ? 'closed' : 'open',
  );
  return json(201, issueJson(world, repo, issue));
}

export function userJson(world: World, user: User, self: boolean): Record<string, unknown> {
  return {
    id: user.id,
    login: user.login,
    login_name: '',
    source_id: 0,
    full_name: user.fullName,
    email: self ? user.email : `${user.login.toLowerCase()}@noreply.localhost`,
    avatar_url: avatarUrl(world, user),
    html_url: `${world.url}/${user.login}`,
    language: self ? 'en-US' : '',
    is_admin: user.isAdmin,
    last_login: isoTime(user.created),
    created: isoTime(user.created),
    restricted: false,
    active: true,
    prohibit_login: false,
    location: '',
    pronouns: '',
    website: '',
    description: '',
    visibility: 'public',
    followers_count: 0,
    following_count: 0,
    starred_repos_count: 0,
    username: user.login,
  };
}

function repoJson(world: World, repo: Repo, viewer: User | undefined): Record<string, unknown> {
  const owner = userById(world, repo.ownerId)!;
  const fullName = `${owner.login}/${repo.name}`;
  const isOwner = viewer?.id === owner.id;
  return {
    id: repo.id,
    owner: userJson(world, owner, isOwner),
    name: repo.name,
    full_name: fullName,
    description: repo.description,
    empty: false,
    private: repo.private,
    fork: false,
    template: false,
    parent: null,
    mirror: false,
    size: 0,
    language: '',
    languages_url: `${world.url}/api/v1/repos/${fullName}/languages`,
    html_url: `${world.url}/${fullName}`,
    url: `${world.url}/api/v1/repos/${fullName}`,
    link: '',
    ssh_url: `ssh://git@${new URL(world.url).host}/${fullName}.git`,
    clone_url: `${world.url}/${fullName}.git`,
    original_url: '',
    website: '',
    stars_count: 0,
    forks_count: 0,
    watchers_count: 1,
    open_issues_count: repo.issues.filter((i) => i.state === 'open').length,
    open_pr_counter: 0,
    release_counter: 0,
    default_branch: 'main',
    archived: false,
    created_at: isoTime(repo.created),
    updated_at: isoTime(repo.created),
    archived_at: '1970-01-01T00:00:00Z',
    permissions: { admin: isOwner, push: isOwner, pull: true },
    has_issues: true,
    has_wiki: true,
    has_pull_requests: true,
    has_projects: true,
    has_releases: true,
    has_packages: true,
    has_actions: true,
    internal: false,
    object_format_name: 'sha1',
    topics: [],
  };
}

function issueJson(world: World, repo: Repo, issue: Issue): Record<string, unknown> {
  const owner = userById(world, repo.ownerId)!;
  const author = userById(world, issue.authorId)!;
  const fullName = `${owner.login}/${repo.name}`;
  return {
    id: issue.id,
    url: `${world.url}/api/v1/repos/${fullName}/issues/${issue.number}`,
    html_url: `${world.url}/${fullName}/issues/${issue.number}`,
    number: issue.number,
    user: userJson(world, author, false),
    original_author: '',
    original_author_id: 0,
    title: issue.title,
    body: issue.body,
    ref: '',
    assets: [],
    labels: [],
    milestone: null,
    assignee: null,
    assignees: null,
    state: issue.state,
    is_locked: false,
    comments: 0,
    created_at: isoTime(issue.created),
    updated_at: isoTime(issue.updated),
    closed_at: issue.closed === undefined ? null : isoTime(issue.closed),
    due_date: null,
    pull_request: null,
    repository: { id: repo.id, name: repo.name, owner: owner.login, full_name: fullName },
    pin_order: 0,
  };
}
