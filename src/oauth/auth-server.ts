// The authorization server in one object: what src/http routes to and what the gateway consumes.
import type { CredentialManager } from '../forgejo/credentials.ts';
import { account, accountAction, accountLogin } from './account.ts';
import { authorize, consent } from './authorize.ts';
import { createBearerVerifier, type VerifyBearer } from './bearer.ts';
import { callback } from './callback.ts';
import { deleteClient, readClient, updateClient } from './client-management.ts';
import type { AuthContext } from './context.ts';
import { authorizationServerMetadata, protectedResourceMetadata, resourceUrl } from './metadata.ts';
import { register } from './register.ts';
import type { OAuthRequest, OAuthResponse } from './respond.ts';
import { revoke, token } from './token.ts';

export type AuthServer = {
  protectedResourceMetadata: Record<string, unknown>;
  authorizationServerMetadata: Record<string, unknown>;
  register(req: OAuthRequest): Promise<OAuthResponse>;
  /** RFC 7592 on `/oauth/register/:clientId`. */
  readClient(req: OAuthRequest): Promise<OAuthResponse>;
  updateClient(req: OAuthRequest): Promise<OAuthResponse>;
  deleteClient(req: OAuthRequest): Promise<OAuthResponse>;
  authorize(req: OAuthRequest): Promise<OAuthResponse>;
  consent(req: OAuthRequest): Promise<OAuthResponse>;
  callback(req: OAuthRequest): Promise<OAuthResponse>;
  token(req: OAuthRequest): Promise<OAuthResponse>;
  revoke(req: OAuthRequest): Promise<OAuthResponse>;
  /** The connected-apps page: GET /account, GET /account/login, POST /account/{revoke,revoke-all,logout}. */
  account(req: OAuthRequest): Promise<OAuthResponse>;
  accountLogin(req: OAuthRequest): Promise<OAuthResponse>;
  accountAction(req: OAuthRequest, action: 'revoke' | 'revoke-all' | 'logout'): Promise<OAuthResponse>;
  /** For /mcp: bearer → principal, or why not. */
  verifyBearer: VerifyBearer;
  /** For /mcp: the user's Forgejo token and the `tokenChanged`/`userRevoked`/`grantRevoked` events. */
  credentials: CredentialManager;
  /** Deletes expired rows and stale registrations; returns how many. */
  purge(now?: number): Promise<number>;
};

export function createAuthServer(
  ctx: AuthContext,
  credentials: CredentialManager,
  unusedClientTtlMs: number,
): AuthServer {
  return {
    protectedResourceMetadata: protectedResourceMetadata(ctx.publicUrl),
    authorizationServerMetadata: authorizationServerMetadata(ctx.publicUrl),
    register: (req) => register(ctx.store, ctx.publicUrl, req.body),
    readClient: (req) => readClient(ctx, req),
    updateClient: (req) => updateClient(ctx, req),
    deleteClient: (req) => deleteClient(ctx, req),
    authorize: (req) => authorize(ctx, req),
    consent: (req) => consent(ctx, req),
    callback: (req) => callback(ctx, req),
    token: (req) => token(ctx, req),
    revoke: (req) => revoke(ctx, req),
    account: (req) => account(ctx, req),
    accountLogin: (req) => accountLogin(ctx, req),
    accountAction: (req, action) => accountAction(ctx, req, action),
    verifyBearer: createBearerVerifier(ctx.store, resourceUrl(ctx.publicUrl)),
    credentials,
    purge: (now = Date.now()) => ctx.store.purgeExpired(now, now - unusedClientTtlMs),
  };
}
