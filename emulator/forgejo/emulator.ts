// A Forgejo stand-in that behaves as the real one does for everything the broker touches (OAuth2
// provider, userinfo, a few API routes), quirks included. Used by tests and by the demo mode.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { apiRoute } from './api.ts';
import {
  authScheme,
  BodyError,
  type Incoming,
  parseBody,
  parseCookies,
  type Reply,
  readBody,
  redactQuery,
  text,
} from './http.ts';
import {
  authorize,
  discovery,
  grantSubmit,
  home,
  jwks,
  loginForm,
  loginSubmit,
  logout,
  token,
  userinfo,
} from './oauth.ts';
import { createWorld, deleteGrant, grantOf, userByLogin, type World } from './state.ts';

export type EmulatorIssue = { title: string; body?: string; state?: 'open' | 'closed' };
export type EmulatorRepo = {
  name: string;
  description?: string;
  private?: boolean;
  issues?: EmulatorIssue[];
};
export type EmulatorUser = {
  id: number;
  login: string;
  password: string;
  fullName?: string;
  email?: string;
  isAdmin?: boolean;
  /** → userinfo groups: "org" and "org:team" */
  orgs?: { name: string; teams?: string[] }[];
  /** owned by this user */
  repos?: EmulatorRepo[];
};
export type EmulatorApp = {
  clientId: string;
  /** no secret → public client */
  clientSecret?: string;
  name: string;
  redirectUris: string[];
};
export type EmulatorOptions = {
  users: EmulatorUser[];
  apps: EmulatorApp[];
  /** default 127.0.0.1 */
  host?: string;
  /** default 0 (free port) */
  port?: number;
  /** default 3600 */
  accessTokenTtlSeconds?: number;
  /** default 730 h */
  refreshTokenTtlSeconds?: number;
  /** default "16.0.1+gitea-1.22.0" */
  version?: string;
  /** The emulator's clock in ms (default Date.now): tests move it to expire tokens or date them ahead. */
  now?: () => number;
};
export type EmulatorRequest = {
  method: string;
  path: string;
  /** query string with the values of secret-bearing parameters removed */
  query: string;
  status: number;
  /** scheme used, never the credential itself */
  auth: 'token' | 'bearer' | 'basic' | 'none';
  /** login the credential or browser session resolved to, if any */
  user?: string;
  /** the token endpoint's grant_type (authorization_code, refresh_token), not any secret */
  grantType?: string;
  at: number;
};
export interface ForgejoEmulator {
  /** root URL, no trailing slash, e.g. http://127.0.0.1:40123 */
  url: string;
  /** append-only request log (bounded: the last 10,000) */
  requests: EmulatorRequest[];
  /** the user revokes the app in their settings: the grant and all its tokens and codes die */
  revokeGrant(login: string, clientId: string): void;
  /** the grant's refresh counter, or undefined without a grant */
  grantCount(login: string, clientId: string): number | undefined;
  /** A token request is being answered, or was answered within the last `withinMs` (wall clock). */
  tokenEndpointBusy(withinMs: number): boolean;
  /**
   * Replaces an app's registered redirect URIs, as its owner can in Forgejo's settings: a test can
   * start the emulator first and register the broker's callback once the broker has its port.
   */
  setRedirectUris(clientId: string, redirectUris: string[]): void;
  close(): Promise<void>;
}

const LOG_LIMIT = 10_000;

type Handler = (world: World, req: Incoming) => Reply;

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/': { GET: home },
  '/user/login': { GET: loginForm, POST: loginSubmit },
  '/user/logout': { GET: logout, POST: logout },
  '/login/oauth/authorize': { GET: authorize, POST: authorize },
  '/login/oauth/grant': { POST: grantSubmit },
  '/login/oauth/access_token': { POST: token },
  '/login/oauth/userinfo': { GET: userinfo, POST: userinfo },
  '/login/oauth/keys': { GET: (w) => jwks(w) },
  '/.well-known/openid-configuration': { GET: (w) => discovery(w) },
};

function dispatch(world: World, req: Incoming): Reply {
  if (req.path === '/api/v1' || req.path.startsWith('/api/v1/')) return apiRoute(world, req);
  const methods = ROUTES[req.path];
  if (!methods) return text(404, 'Not found.');
  const handler = methods[req.method] ?? (req.method === 'HEAD' ? methods['GET'] : undefined);
  return handler ? handler(world, req) : text(405, 'Method Not Allowed');
}

export async function startForgejoEmulator(options: EmulatorOptions): Promise<ForgejoEmulator> {
  const now = options.now ?? Date.now;
  const world = createWorld(options, now);
  const requests: EmulatorRequest[] = [];
  const tokenCalls = { inFlight: 0, lastAnsweredAt: 0 };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const rawQuery = url.search.slice(1);
    const tokenRequest = url.pathname === '/login/oauth/access_token';
    if (tokenRequest) tokenCalls.inFlight++;
    try {
      await answer(req, res, url, rawQuery);
    } finally {
      if (tokenRequest) {
        tokenCalls.inFlight--;
        tokenCalls.lastAnsweredAt = Date.now();
      }
    }
  }

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    rawQuery: string,
  ): Promise<void> {
    let reply: Reply;
    let grantType: string | undefined;
    try {
      const body = req.method === 'GET' || req.method === 'HEAD' ? '' : await readBody(req);
      const { form, json } = parseBody(req.headers['content-type'], body);
      if (url.pathname === '/login/oauth/access_token') grantType = form.get('grant_type') ?? undefined;
      reply = dispatch(world, {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        rawQuery,
        headers: req.headers,
        cookies: parseCookies(req.headers.cookie),
        form,
        json,
      });
    } catch (err) {
      // Never a stack trace to a client.
      reply = err instanceof BodyError ? text(err.status, err.message) : text(500, 'Internal Server Error');
    }
    res.writeHead(reply.status, { 'cache-control': 'no-store', ...reply.headers });
    res.end(req.method === 'HEAD' ? undefined : reply.body);
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: redactQuery(rawQuery),
      status: reply.status,
      auth: authScheme(req.headers.authorization),
      ...(reply.user === undefined ? {} : { user: reply.user }),
      ...(grantType === undefined ? {} : { grantType }),
      at: now(),
    });
    if (requests.length > LOG_LIMIT) requests.splice(0, requests.length - LOG_LIMIT);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('emulator has no TCP address');
  world.url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;

  const grantFor = (login: string, clientId: string) => {
    const user = userByLogin(world, login);
    return user ? grantOf(world, user.id, clientId) : undefined;
  };

  return {
    url: world.url,
    requests,
    revokeGrant(login, clientId) {
      const grant = grantFor(login, clientId);
      if (grant) deleteGrant(world, grant.id);
    },
    grantCount: (login, clientId) => grantFor(login, clientId)?.counter,
    tokenEndpointBusy: (withinMs) =>
      tokenCalls.inFlight > 0 || Date.now() - tokenCalls.lastAnsweredAt < withinMs,
    setRedirectUris(clientId, redirectUris) {
      const app = world.apps.get(clientId);
      if (!app) throw new Error(`no OAuth app with client id ${clientId}`);
      world.apps.set(clientId, { ...app, redirectUris: [...redirectUris] });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
